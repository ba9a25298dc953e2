import { readFileSync } from "node:fs";
import { ENGINES } from "../../src/engines/registry.js";
import { loadRepoConfig } from "../../src/settings/load-repo-config.js";
import { repoConfigJsonSchema } from "../../src/settings/repo-config.js";

const problems = (text: string) => {
  const result = loadRepoConfig(text, ENGINES.names);
  if (result.ok) throw new Error("expected problems");
  return result.problems.map((p) => `${p.line}:${p.column} ${p.message}`);
};

describe(".plangate.yml", () => {
  test("the design's example is valid and gets the defaults", () => {
    const result = loadRepoConfig(`version: 1
projects:
  - name: network
    dir: infra/network
    engine: terraform
    workspace: default
    autoplan:
      enabled: true
      when_modified: ["**/*.tf", "**/*.tfvars", "../modules/**"]
    apply: on_merge
    depends_on: []
    approvals:
      required: 1
      teams: [infra]
      users: []
      destroy_required: 2
    env: [AWS_REGION]
  - name: app
    dir: cdk
    engine: cdktf
    stacks: [dev]
policies:
  - deny: destroy
    resource_types: [aws_db_instance]
`, ENGINES.names);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.projects.map((p) => [p.name, p.dir, p.engine, p.workspace, p.apply])).toEqual([
      ["network", "infra/network", "terraform", "default", "on_merge"],
      ["app", "cdk", "cdktf", "default", "on_merge"],
    ]);
    expect(result.config.projects[1]).toMatchObject({ autoplan: { enabled: true }, approvals: { required: 1, teams: [], users: [] }, env: [], depends_on: [], stacks: ["dev"] });
    expect(result.config.policies).toEqual([{ deny: "destroy", resource_types: ["aws_db_instance"] }]);
  });

  test("the name defaults to the dir", () => {
    const result = loadRepoConfig("version: 1\nprojects:\n  - dir: infra/db\n", ENGINES.names);
    expect(result.ok && result.config.projects[0]!.name).toBe("infra/db");
  });

  test("YAML syntax errors name the line and column", () => {
    expect(problems("version: 1\nprojects:\n  - dir: [unclosed\n")[0]).toMatch(/^4:1 /);
    expect(problems("version: 1\nversion: 1\n")[0]).toMatch(/^2:1 Map keys must be unique/);
  });

  test("schema errors name the offending key's line", () => {
    expect(problems("version: 1\nprojects:\n  - dir: infra\n    engin: terraform\n")).toEqual(['4:5 projects[0].engin: unknown key "engin"']);
    expect(problems("version: 1\nprojects:\n  - dir: infra\n    approvals:\n      required: two\n")).toEqual([
      "5:17 projects[0].approvals.required: Invalid input: expected number, received string",
    ]);
    expect(problems("version: 2\n")).toEqual(["1:10 version: must be 1"]);
    expect(problems("version: 1\nprojects:\n  - dir: a\n    engine: pulumi\n")[0]).toMatch(/^4:13 projects\[0\]\.engine: Invalid option/);
  });

  test("a dir that escapes the repository is a config error", () => {
    expect(problems("version: 1\nprojects:\n  - dir: ../../etc\n")).toEqual(['3:10 projects[0].dir: dir must stay inside the repository (no ".." escaping it)']);
    expect(problems("version: 1\nprojects:\n  - dir: /etc\n")).toEqual(["3:10 projects[0].dir: dir must be relative to the repository root"]);
    expect(loadRepoConfig("version: 1\nprojects:\n  - dir: infra/../infra\n", ENGINES.names).ok).toBe(true);
  });

  test("duplicate projects and unknown depends_on are reported", () => {
    expect(problems("version: 1\nprojects:\n  - dir: a\n  - dir: a\n")).toEqual(['4:10 projects[1].dir: project "a" (workspace default) is defined twice']);
    expect(problems("version: 1\nprojects:\n  - dir: a\n    depends_on: [b]\n")).toEqual(['4:18 projects[0].depends_on[0]: depends_on names unknown project "b"']);
  });

  test("a policy needs exactly one rule", () => {
    expect(problems("version: 1\npolicies:\n  - resource_types: [x]\n")).toEqual(["3:5 policies[0]: a policy needs a rule, or exactly one of deny, max_changes or require_approvals"]);
  });

  test("a CEL rule that does not compile or type-check is an error at its line and column, naming the problem", () => {
    const config = `version: 1
policies:
  - name: typo
    rule: resource.typo == "x"
  - name: block
    rule: |
      resource.type == "aws_s3_bucket" &&
        resource.after.acl ==
  - name: types
    rule: "resource.type == 1"
  - name: backreference
    rule: resource.address.matches(r"(a)\\1$")
  - name: typo
    rule: resource.after.x.all(a, resource.after.x.all(b, resource.after.x.all(c, true)))
  - rule: "true"
  - deny: destroy
    effect: warn
  - name: approvers
    rule: "true"
    effect: require_approval
`;
    expect(problems(config)).toEqual([
      "4:20 policies[0].rule: No such key: typo",
      "9:7 policies[1].rule: Unexpected token: EOF",
      "10:12 policies[2].rule: no such overload: string == int",
      "12:36 policies[3].rule: matches(): error parsing regexp: invalid escape sequence: `\\1`",
      "13:11 policies[4].name: policy \"typo\" is defined twice",
      "14:11 policies[4].rule: nests comprehensions 3 deep: at most 2 (its cost would grow as the plan's size to that power)",
      "15:11 policies[5].rule: a policy with a rule needs a name",
      "17:13 policies[6].effect: effect goes with rule",
      "18:5 policies[7].owners: require_approval needs owners (teams or users) to approve",
    ]);
  });

  test("an empty file or a non-mapping is refused clearly", () => {
    expect(problems("")).toEqual(["1:1 version: must be 1"]);
    expect(problems("- just\n- a list\n")[0]).toMatch(/^1:1 Invalid input: expected object, received array/);
  });

  test("the committed JSON Schema is generated from the schema", () => {
    const committed = JSON.parse(readFileSync("plangate.schema.json", "utf8"));
    expect(committed).toEqual(JSON.parse(JSON.stringify(repoConfigJsonSchema(ENGINES.names))));
  });
});

describe("hostile .plangate.yml (found by bench/fuzz.mjs)", () => {
  const problemOf = (text: string) => {
    const result = loadRepoConfig(text, ENGINES.names);
    expect(result.ok).toBe(false);
    return result.ok ? undefined : result.problems[0];
  };

  test("an unresolved alias is a problem, not a crash", () => {
    expect(problemOf("version: *a\n")?.message).toMatch(/alias|anchor/i);
  });

  test("alias fan-out is refused as a problem", () => {
    const fanOut = `a: &a [x]\nb: &b [${Array(10).fill("*a").join(", ")}]\nc: [${Array(10).fill("*b").join(", ")}]\nd: [${Array(10).fill("*b").join(", ")}]\n`;
    expect(problemOf(fanOut)?.message).toMatch(/alias/i);
  });

  test("a YAML 1.1 merge key whose value is not a map is a problem", () => {
    expect(problemOf("%YAML 1.1\n---\n<<: 0\n")?.message).toMatch(/merge/i);
  });

  test("deep nesting, as values or as keys, is refused before YAML converts it", () => {
    expect(problemOf("{".repeat(225) + "1" + "}".repeat(225))).toMatchObject({ line: 1, message: "nested more than 32 levels deep" });
    expect(problemOf("version: 1\nprojects: " + "[{".repeat(150) + "1" + "}]".repeat(150))).toMatchObject({ line: 2, message: "nested more than 32 levels deep" });
  });
});

