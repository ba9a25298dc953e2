import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { ENGINES } from "../../src/engines/registry.js";
import { parsePlanChanges } from "../../src/plans/changes.js";
import { policyResults } from "../../src/plans/policy-results.js";
import { loadRepoConfig } from "../../src/settings/load-repo-config.js";
import { loadPolicyFile } from "../../src/settings/policy-file.js";

/**
 * docs/policies.md cannot drift: each of its examples is loaded with the
 * real config loader and judged, as `plangate policy test` judges, against
 * the real terraform plans in test/fixtures/policies/<example>/ — it must
 * match the resource changes the doc names in match.json and nothing in
 * nomatch.json.
 */

const DOC = readFileSync("docs/policies.md", "utf8");
const FIXTURES = "test/fixtures/policies";

/** `<!-- example: NAME; matches: ADDRESS, … -->` followed by a yaml block. */
const examples = [...DOC.matchAll(/<!-- example: ([\w-]+); matches: ([^>]*?) -->\n```yaml\n([\s\S]*?)```/g)].map((m) => ({
  name: m[1]!,
  matches: m[2]!.trim() === "(plan)" ? [] : m[2]!.split(",").map((a) => a.trim()),
  yaml: m[3]!,
}));

const context = { project: { name: "app", dir: "app", workspace: "default", engine: "terraform" }, pull_request: { number: 7, author: "dev", labels: [], base: "main", head_sha: "a".repeat(40) } };
const plan = (example: string, kind: string) => parsePlanChanges(JSON.parse(readFileSync(path.join(FIXTURES, example, `${kind}.json`), "utf8")));

describe("docs/policies.md", () => {
  test("has ten examples, one for each fixture folder, each a block of its own", () => {
    const folders = readdirSync(FIXTURES, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    expect(examples.map((e) => e.name).sort()).toEqual(folders);
    expect(examples).toHaveLength(10);
    // Every yaml block of the page is an example, the organisation file or the one at the top: none is left untested by accident.
    expect(DOC.match(/```yaml/g)).toHaveLength(examples.length + 2);
  });

  test("its organisation policy file sample loads as a .plangate-policies.yml", () => {
    const yaml = /<!-- organisation policy file -->\n```yaml\n([\s\S]*?)```/.exec(DOC)?.[1];
    expect(yaml).toBeDefined();
    const file = loadPolicyFile(yaml!, ".plangate-policies.yml");
    expect(file.ok && file.policies.map((p) => p.name ?? p.deny)).toEqual(["no-public-buckets", "destroy"]);
  });

  describe.each(examples)("$name", ({ name, matches, yaml }) => {
    const loaded = loadRepoConfig(`version: 1\n${yaml}`, ENGINES.names);
    if (!loaded.ok) throw new Error(`${name}: ${JSON.stringify(loaded.problems)}`);
    const policies = loaded.config.policies;

    test("loads as .plangate.yml and as a .plangate-policies.yml, one named policy", () => {
      expect(policies.map((p) => p.name)).toEqual([name]);
      const file = loadPolicyFile(yaml, ".plangate-policies.yml");
      expect(file.ok && file.policies).toEqual(policies);
    });

    test("matches the changes the doc names in the matching plan", () => {
      const [result] = policyResults(policies, plan(name, "match"), context);
      expect(result).toMatchObject({ name, status: "match", effect: policies[0]!.effect ?? "deny" });
      expect([...result!.addresses].sort()).toEqual([...matches].sort());
    });

    test("matches nothing in the other plan", () => {
      const changes = plan(name, "nomatch");
      expect(changes.resources.length).toBeGreaterThan(0);
      expect(policyResults(policies, changes, context)).toEqual([expect.objectContaining({ name, status: "pass", addresses: [] })]);
    });
  });
});
