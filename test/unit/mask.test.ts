import { createMasker, maskDeep, secretVariants } from "../../src/plans/mask.js";

const SECRET = "s3cr3t-Value-42";

describe("masking", () => {
  test("passed values and operator patterns become ***; short values are left alone", () => {
    const mask = createMasker(["hunter2-pw", "tok_123456", "ab"], [/AKIA[0-9A-Z]{16}/]);
    expect(mask("pw=hunter2-pw token=tok_123456 key=AKIAABCDEFGHIJKLMNOP ab")).toBe("pw=*** token=*** key=*** ab");
  });

  test("the longest secret is masked first, so one containing another leaves nothing behind", () => {
    expect(createMasker(["secret", "secret-extended"])("x secret-extended y")).toBe("x *** y");
  });

  test("every string inside plan changes", () => {
    const mask = createMasker(["s3cr3t"]);
    expect(maskDeep({ a: ["s3cr3t", 1, { b: "pre-s3cr3t-post" }], c: null }, mask)).toEqual({ a: ["***", 1, { b: "pre-***-post" }], c: null });
    // A map keyed by a secret does not show it either; "__proto__" stays a plain key, never the prototype.
    expect(maskDeep({ "key-s3cr3t": 1 }, mask)).toEqual({ "key-***": 1 });
    const hostile = maskDeep(JSON.parse('{"__proto__": {"polluted": "s3cr3t"}}'), mask) as Record<string, unknown>;
    expect(Object.keys(hostile)).toEqual(["__proto__"]);
    expect((hostile as { polluted?: string }).polluted).toBeUndefined();
    expect(Object.getOwnPropertyDescriptor(hostile, "__proto__")?.value).toEqual({ polluted: "***" });
  });

  test.each([
    ["reversed", [...SECRET].reverse().join("")],
    ["hex", Buffer.from(SECRET).toString("hex")],
    ["HEX", Buffer.from(SECRET).toString("hex").toUpperCase()],
    ["URL-encoded", encodeURIComponent(`${SECRET}/+&`)],
  ])("a %s copy is masked", (_, encoded) => {
    const mask = createMasker([SECRET, `${SECRET}/+&`]);
    expect(mask(`leak:${encoded}:end`)).toBe("leak:***:end");
  });

  test.each(["", "x", "xy", "xyz", "abcd"])("base64 and base64url of the value behind a %j prefix leave no decodable copy", (prefix) => {
    const mask = createMasker([SECRET]);
    const bytes = Buffer.concat([Buffer.from(prefix), Buffer.from(SECRET), Buffer.from("tail!")]);
    for (const encoding of ["base64", "base64url"] as const) {
      const shown = mask(`data=${bytes.toString(encoding)}`);
      expect(shown).toContain("***");
      // What is left decodes to at most a few bytes of the secret, never the secret.
      const left = Buffer.from(shown.replace("data=", "").split("***").join(""), encoding).toString("latin1");
      expect(left).not.toContain(SECRET);
      expect(left).not.toContain(SECRET.slice(2, -2));
    }
  });

  test("a value's variants include its encodings but nothing shorter than six characters besides the value", () => {
    expect(secretVariants("abcd")).toContain("abcd");
    expect(secretVariants("abcd").every((v) => v === "abcd" || v.length >= 6)).toBe(true);
  });
});
