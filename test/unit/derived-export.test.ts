import { attributesProblem, parseTreeChanges, underivable } from "../../src/git/derived-export.js";

describe("which .gitattributes a derived export may be made under", () => {
  test("attributes git archive leaves alone (end of line LF, binary, diff, merge, LFS's filter, linguist) do not stop it", () => {
    const text = "# comment\n\n* text=auto eol=lf\n*.png binary\n*.zip filter=lfs diff=lfs merge=lfs -text\n*.tf linguist-language=HCL whitespace=trailing-space\n*.sh -crlf\n";
    expect(attributesProblem(text)).toBeUndefined();
  });

  test.each([
    ["secret.tf export-ignore", "export-ignore"],
    ["stamp.txt export-subst", "export-subst"],
    ["id.tf ident", "ident"],
    ["*.txt text eol=crlf", "eol=crlf"],
    ["*.txt working-tree-encoding=UTF-16", "working-tree-encoding"],
    ["*.txt !eol", "!eol"],
    ["[attr]hidden export-ignore", "[attr]"],
    ['"quoted name" export-ignore', "quoted"],
    ["*.tf something-new", "something-new"],
  ])("%s stops it (%s)", (line) => {
    expect(attributesProblem(`* text=auto\n${line}\n`)).toMatch(/^a \.gitattributes (line|attribute) archive may act on: /);
  });

  test("a change to a .gitattributes stops it, even one whose words are inert", () => {
    const changes = parseTreeChanges(`:100644 100644 ${"a".repeat(40)} ${"b".repeat(40)} M\0.gitattributes\0`);
    expect(underivable(changes, [".gitattributes"], ["* text=auto\n"])).toBe("a .gitattributes changes");
    expect(underivable(parseTreeChanges(`:100644 100644 ${"a".repeat(40)} ${"b".repeat(40)} M\0main.tf\0`), [".gitattributes", "main.tf"], ["* text=auto\n"])).toBeUndefined();
    expect(underivable(parseTreeChanges(`:100644 100644 ${"a".repeat(40)} ${"b".repeat(40)} M\0main.tf\0`), [".gitattributes", "main.tf"], ["main.tf export-subst\n"])).toMatch(/export-subst/);
  });
});
