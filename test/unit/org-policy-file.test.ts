import { ENGINES } from "../../src/engines/registry.js";
import { loadRepoConfig } from "../../src/settings/load-repo-config.js";
import { loadOrgPolicyFile } from "../../src/settings/org-policy-file.js";
import type { PolicyConfig, RepoConfig } from "../../src/settings/repo-config.js";
import { effectivePolicies, type BaseRules } from "../../src/settings/rules.js";
import { readSettings } from "../../src/settings/settings.js";

/** The organisation's `.plangate-policies.yml` (DESIGN.md section 2): read like `.plangate.yml`'s policies, added to every repository's, never weakened by them. */

const configOf = (text: string): RepoConfig => {
  const loaded = loadRepoConfig(text, ENGINES.names);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  return loaded.config;
};
const orgOf = (text: string): PolicyConfig[] => {
  const loaded = loadOrgPolicyFile(text);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  return loaded.policies;
};
const base = (text: string): BaseRules => ({ sha: "b".repeat(40), state: "file", config: configOf(text) });

const ORG = `version: 1
policies:
  - name: no-public-buckets
    rule: resource.type == "aws_s3_bucket_public_access_block" && "delete" in resource.actions
    message: Public access blocks are never removed by a pull request.
    owners: { teams: [security] }
  - deny: destroy
    resource_types: [aws_db_instance]
`;

describe("reading .plangate-policies.yml", () => {
  test("the same policies: list as .plangate.yml, each marked as the organisation's", () => {
    const policies = orgOf(ORG);
    expect(policies).toEqual([
      expect.objectContaining({ name: "no-public-buckets", source: "organisation", owners: { teams: ["security"], users: [] } }),
      { deny: "destroy", resource_types: ["aws_db_instance"], source: "organisation" },
    ]);
    expect(orgOf("policies: []\n")).toEqual([]);
  });

  test("a CEL error is reported at .plangate-policies.yml's line and column, inside the rule", () => {
    const loaded = loadOrgPolicyFile('policies:\n  - name: broken\n    rule: resource.type == 42 &&\n');
    expect(loaded).toEqual({ ok: false, problems: [expect.objectContaining({ line: 3, message: expect.stringMatching(/^policies\[0\]\.rule: /) })] });
    expect((loaded as { problems: { column: number }[] }).problems[0]!.column).toBeGreaterThan(11);
  });

  test("YAML errors, unknown keys, a missing list and a name given twice are problems, not throws", () => {
    expect(loadOrgPolicyFile("policies: [\n")).toMatchObject({ ok: false, problems: [{ line: expect.any(Number) }] });
    expect(loadOrgPolicyFile("policy: []\n")).toMatchObject({ ok: false, problems: expect.arrayContaining([expect.objectContaining({ line: 1, message: 'policy: unknown key "policy"' })]) });
    expect(loadOrgPolicyFile("version: 1\n")).toMatchObject({ ok: false, problems: [{ message: "policies: must be a list of policies (the same as .plangate.yml's policies:)" }] });
    const twice = "policies:\n  - { name: a, rule: 'true' }\n  - { name: a, rule: 'false' }\n";
    expect(loadOrgPolicyFile(twice)).toMatchObject({ ok: false, problems: [{ line: 3, message: 'policies[1].name: policy "a" is defined twice' }] });
  });

  test("a repository's .plangate.yml cannot mark a policy as the organisation's", () => {
    const loaded = loadRepoConfig("version: 1\npolicies:\n  - name: mine\n    rule: 'false'\n    source: organisation\n", ENGINES.names);
    expect(loaded).toMatchObject({ ok: false, problems: [{ line: 5, message: 'policies[0].source: unknown key "source"' }] });
  });
});

describe("the organisation's policies among a plan's", () => {
  const org = orgOf(ORG);

  test("they come first, then the default branch's, then what the PR adds", () => {
    const baseText = "version: 1\npolicies:\n  - max_changes: 10\n";
    const pr = configOf("version: 1\npolicies:\n  - max_changes: 10\n  - deny: create\n");
    expect(effectivePolicies(base(baseText), pr, org)).toEqual([...org, { max_changes: 10 }, { deny: "create" }]);
    expect(effectivePolicies(base(baseText), configOf("version: 1\n"))).toEqual([{ max_changes: 10 }]);
  });

  test("a repository policy named like one of the organisation's neither replaces it nor lends it its owners: it is judged too, as NAME.2", () => {
    const permissive = "version: 1\npolicies:\n  - name: no-public-buckets\n    rule: 'false'\n    effect: warn\n    owners: { users: [mallory] }\n";
    for (const [b, pr] of [[base(permissive), configOf("version: 1\n")], [base("version: 1\n"), configOf(permissive)]] as const) {
      const policies = effectivePolicies(b, pr, org);
      const named = policies.filter((p) => p.name === "no-public-buckets");
      expect(named).toEqual([org[0]]);
      expect(policies).toContainEqual({ name: "no-public-buckets.2", rule: "false", effect: "warn", owners: { teams: [], users: ["mallory"] } });
      expect(policies.filter((p) => p.source === "organisation")).toEqual(org);
    }
  });

  test("a PR's policy named like the default branch's is renamed too, past names already taken", () => {
    const baseText = "version: 1\npolicies:\n  - { name: p, rule: 'true' }\n  - { name: p.2, rule: 'true' }\n";
    const pr = configOf("version: 1\npolicies:\n  - { name: p, rule: 'false', effect: warn, owners: { users: [mallory] } }\n");
    const names = effectivePolicies(base(baseText), pr).map((p) => p.name);
    expect(names).toEqual(["p", "p.2", "p.3"]);
  });
});

describe("PLANGATE_POLICY_REPO", () => {
  test("owner/name, or unset", () => {
    expect(readSettings({}).policyRepo).toBeUndefined();
    expect(readSettings({ PLANGATE_POLICY_REPO: " acme/platform.policies " }).policyRepo).toEqual({ owner: "acme", name: "platform.policies" });
  });

  test.each(["acme", "acme/", "/policies", "acme/policies/extra", "acme/..", "-acme/policies", "https://github.com/acme/policies"])("%j is refused, naming the setting", (value) => {
    expect(() => readSettings({ PLANGATE_POLICY_REPO: value })).toThrow(/^PLANGATE_POLICY_REPO must be a repository as owner\/name/);
  });
});
