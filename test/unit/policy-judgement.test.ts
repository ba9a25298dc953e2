import { countChanges, type PlanChanges, type ResourceChange } from "../../src/plans/changes.js";
import { isBlocking, isOwner, judgePlan, overruled, type GivenOverride } from "../../src/plans/policy-judgement.js";
import type { PolicyConfig } from "../../src/settings/repo-config.js";
import { loadTemplates } from "../../src/render/templates.js";
import { policyResultsView } from "../../src/render/policy-text.js";

const change = (address: string, action: ResourceChange["action"], after: Record<string, unknown> | null = {}): ResourceChange => ({
  address,
  type: address.split(".")[0]!,
  action,
  actions: action === "replace" ? ["delete", "create"] : [action],
  before: null,
  after,
});
const plan = (...resources: ResourceChange[]): PlanChanges => ({ resources, counts: countChanges(resources) });
const context = {
  project: { name: "app", dir: "app", workspace: "default", engine: "terraform" },
  pull_request: { number: 7, author: "mallory", labels: ["infra"], base: "main", head_sha: "a".repeat(40) },
};
const key = { project: "app", workspace: "default", fingerprint: "f1" };
const owners = { teams: ["security"], users: ["carol"] };

const POLICIES: PolicyConfig[] = [
  { name: "no-public", rule: 'resource.type == "aws_s3_bucket" && resource.after.acl == "public-read"', effect: "deny", message: "No public buckets.", owners },
  { name: "temp", rule: 'resource.address.contains("temp")', effect: "warn" },
  { name: "big", scope: "plan", rule: "plan.add >= 2", effect: "require_approval", owners: { teams: ["platform"], users: [] } },
  { name: "labelled", scope: "plan", rule: '"danger" in pull_request.labels' },
  { deny: "destroy", resource_types: ["aws_db_*"] },
] as PolicyConfig[];

const given = (over: Partial<GivenOverride> = {}): GivenOverride => ({ policy: "no-public", project: "app", workspace: "default", fingerprint: "f1", actor: "carol", reason: "ok", ...over });

describe("judging a plan", () => {
  const p = plan(change("aws_s3_bucket.logs", "create", { acl: "public-read" }), change("terraform_data.temp_1", "create"));

  test("each effect: a deny blocks, a warn and a require_approval do not; each outcome carries its owners", () => {
    const j = judgePlan(POLICIES, p, context);
    expect(j.blocked).toBe(true);
    expect(j.violations).toEqual([]);
    expect(j.policy.outcomes.map((o) => [o.policy, o.effect, o.addresses, isBlocking(o)])).toEqual([
      ["no-public", "deny", ["aws_s3_bucket.logs"], true],
      ["temp", "warn", ["terraform_data.temp_1"], false],
      ["big", "require_approval", [], false],
    ]);
    expect(j.policy.outcomes[0]).toMatchObject({ owners, source: "repository", message: "No public buckets." });
    expect(j.policy.outcomes[2]).toMatchObject({ approvals: 1, owners: { teams: ["platform"] } });
  });

  test("rules read the pull request's labels", () => {
    const j = judgePlan(POLICIES, plan(change("terraform_data.x", "update")), { ...context, pull_request: { ...context.pull_request, labels: ["danger"] } });
    expect(j.policy.outcomes.map((o) => o.policy)).toEqual(["labelled"]);
    expect(j.blocked).toBe(true);
  });

  test("a short-form violation blocks as before, and cannot be overridden", () => {
    const j = overruled(judgePlan(POLICIES, plan(change("aws_db_instance.main", "delete", null)), context), key, [given({ policy: "0" })]);
    expect(j.violations).toHaveLength(1);
    expect(j.blocked).toBe(true);
  });

  test("an override given on this plan's fingerprint lets it through; one given on another plan is voided and says by whom", () => {
    const judged = judgePlan(POLICIES, p, context);
    const through = overruled(judged, key, [given()]);
    expect(through.blocked).toBe(false);
    expect(through.policy.outcomes[0]).toMatchObject({ overridden: { actor: "carol", reason: "ok" } });
    const stale = overruled(judged, key, [given({ fingerprint: "f0", actor: "dave" })]);
    expect(stale.blocked).toBe(true);
    expect(stale.policy.outcomes[0]).toMatchObject({ voided: { actor: "dave" } });
    expect(stale.policy.outcomes[0]!.overridden).toBeUndefined();
  });

  test("an override holds only for its own project, workspace and policy", () => {
    const judged = judgePlan(POLICIES, p, context);
    for (const other of [given({ project: "other" }), given({ workspace: "prod" }), given({ policy: "temp" })]) expect(overruled(judged, key, [other]).blocked).toBe(true);
  });

  test("a rule that fails on a resource fails closed, naming the resource; an owner may override it", () => {
    const failing = [{ name: "bad", rule: "int(resource.after.acl) > 0", owners } as PolicyConfig];
    const j = judgePlan(failing, p, context);
    expect(j.blocked).toBe(true);
    expect(j.policy.outcomes[0]!.error).toMatch(/^failed on aws_s3_bucket\.logs: /);
    expect(overruled(j, key, [given({ policy: "bad" })]).blocked).toBe(false);
  });

  test("organisation policies say where they come from", () => {
    const org = [{ ...POLICIES[0], source: "organisation" } as PolicyConfig];
    expect(judgePlan(org, p, context).policy.outcomes[0]!.source).toBe("organisation");
  });
});

describe("owners", () => {
  test("a listed user (any case) or a member of a listed team; teams asked only until one says yes", async () => {
    const asked: string[] = [];
    const member = async (team: string, user: string) => {
      asked.push(team);
      return team === "security" && user === "dave";
    };
    expect(await isOwner(owners, "Carol", member)).toBe(true);
    expect(asked).toEqual([]);
    expect(await isOwner(owners, "dave", member)).toBe(true);
    expect(await isOwner(owners, "alice", member)).toBe(false);
  });
});

describe("how results read", () => {
  test("a 10,000-address match lists 10 and counts the rest", async () => {
    await loadTemplates();
    const many = plan(...Array.from({ length: 10_000 }, (_, i) => change(`terraform_data.temp_${i}`, "create")));
    const [temp] = policyResultsView(judgePlan([POLICIES[1]!], many, context).policy.outcomes);
    expect(temp).toMatchObject({ matched: 10_000, more: 9_990 });
    expect(temp!.shown).toHaveLength(10);
  });
});
