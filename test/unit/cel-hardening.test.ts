import { evaluateCelPolicies, COST_LIMIT, MAX_ADDRESSES, type CelPolicy, type PolicyContext } from "../../src/plans/cel-policy.js";
import { parsePlanChanges, countChanges, type PlanChanges, type ResourceChange } from "../../src/plans/changes.js";
import { compileRule, isProblem } from "../../src/settings/cel-rules.js";

/** CEL policies under hostile or heavy input: linear regexes, null pull requests, cost limits, big plans, addresses as data. */

const project = { name: "app", dir: "app", workspace: "default", engine: "terraform" };
const onPull: PolicyContext = { project, pull_request: { number: 4, author: "dev", labels: ["db-migration"], base: "main", head_sha: "a".repeat(40) } };
const drift: PolicyContext = { project, pull_request: null };
const all = () => true;

const change = (address: string, after: unknown = {}, extra: Partial<ResourceChange> = {}): ResourceChange => ({ address, type: address.split(".")[0]!, action: "create", actions: ["create"], before: null, after, ...extra });
const planOf = (resources: ResourceChange[]): PlanChanges => ({ resources, counts: countChanges(resources) });
const deny = (name: string, rule: string, extra: Partial<CelPolicy> = {}): CelPolicy => ({ name, rule, effect: "deny", ...extra });

describe("matches() runs RE2: linear time whatever the pattern", () => {
  test("a pattern that backtracks for ever in JavaScript answers at once", () => {
    // JavaScript's RegExp takes exponential time on (a|aa)* before a mismatch: 5,000 characters would not finish this year.
    const long = "a".repeat(5_000);
    const plan = planOf([change(`x.t["${long}b"]`, { name: `${long}b` }), change("x.ok", { name: long })]);
    const outcomes = evaluateCelPolicies(
      [deny("anchored", 'resource.after.name.matches("^(a|aa)*$")'), deny("unanchored", 'resource.address.matches("(a|aa)*c$")')],
      plan,
      onPull,
      all,
    );
    expect(outcomes).toEqual([expect.objectContaining({ policy: "anchored", addresses: ["x.ok"], matched: 1 })]);
  });

  test("RE2's syntax: (?i) works; backreferences and lookaround are refused when the rule is compiled", () => {
    expect(evaluateCelPolicies([deny("ci", 'resource.address.matches("(?i)^X\\\\.PROD")')], planOf([change("x.prod")]), onPull, all)).toHaveLength(1);
    expect(compileRule('resource.address.matches(r"(a)\\1")', "resource")).toMatchObject({ message: expect.stringContaining("invalid escape sequence") });
    expect(compileRule('resource.address.matches("(?=a)")', "resource")).toMatchObject({ message: expect.stringContaining("invalid or unsupported Perl syntax") });
    expect(compileRule("resource.address.matches(resource.name)", "resource")).toMatchObject({ message: "matches() takes a literal pattern" });
  });

  test("matches() on a value that is not a string fails closed, naming matches() as the rule wrote it", () => {
    const [outcome] = evaluateCelPolicies([deny("size-pattern", 'resource.after.size.matches("1")')], planOf([change("x.v", { size: 5 })]), onPull, all);
    expect(outcome).toMatchObject({ policy: "size-pattern", error: expect.stringMatching(/^failed on x\.v: .*matches/) });
    expect(outcome!.error).not.toContain("matches_re2");
  });
});

describe("pull_request is null in a drift check", () => {
  const plan = planOf([change("x.a")]);
  test.each([
    ["pull_request == null", false, true],
    ["pull_request != null", true, false],
    ["null == pull_request", false, true],
    ['pull_request != null && "db-migration" in pull_request.labels', true, false],
    ['pull_request == null || pull_request.author == "dev"', true, true],
  ])("%s", (rule, onPullMatches, inDriftMatches) => {
    expect(isProblem(compileRule(rule, "resource"))).toBe(false);
    expect(evaluateCelPolicies([deny("p", rule)], plan, onPull, all).length).toBe(onPullMatches ? 1 : 0);
    expect(evaluateCelPolicies([deny("p", rule)], plan, drift, all).length).toBe(inDriftMatches ? 1 : 0);
    expect(evaluateCelPolicies([deny("p", rule, { scope: "plan" })], plan, drift, all).length).toBe(inDriftMatches ? 1 : 0);
  });

  test("reading a field of the missing pull request fails closed, naming the policy", () => {
    expect(evaluateCelPolicies([deny("by-author", 'pull_request.author == "dev"')], plan, drift, all)).toEqual([
      expect.objectContaining({ policy: "by-author", effect: "deny", error: "failed on x.a: No such key: author" }),
    ]);
  });
});

describe("cost", () => {
  test("a rule whose work explodes with the plan stops at its cost limit and fails closed, naming the policy", () => {
    const items = Array.from({ length: 3_000 }, (_, i) => i);
    const plan = planOf([change("x.big", { items })]);
    const rule = "resource.after.items.exists(a, resource.after.items.exists(b, a + b < 0))";
    expect(isProblem(compileRule(rule, "resource"))).toBe(false);
    const [outcome] = evaluateCelPolicies([deny("quadratic", rule, { effect: "warn" })], plan, onPull, all);
    expect(outcome).toMatchObject({ policy: "quadratic", effect: "warn", error: `exceeded its cost limit (${COST_LIMIT.toLocaleString("en")}) after 0 of 1 resource changes` });
  });

  test("a list the rule writes counts too: two comprehensions over it on every resource change stop at the limit", () => {
    const list = `[${Array.from({ length: 400 }, (_, i) => i).join(", ")}]`;
    const rule = `${list}.exists(a, ${list}.exists(b, a + b < 0))`;
    const plan = planOf(Array.from({ length: 1_000 }, (_, i) => change(`x.r[${i}]`)));
    const [outcome] = evaluateCelPolicies([deny("literal", rule)], plan, onPull, all);
    expect(outcome).toMatchObject({ policy: "literal", error: expect.stringMatching(/^exceeded its cost limit \(50,000,000\) after \d+ of 1000 resource changes$/) });
  });

  test("a comprehension that swallows the cost limit's error still fails closed", () => {
    // exists() is true when any element is, errors of the others notwithstanding: the limit must hold anyway.
    const plan = planOf([change("x.big", { items: Array.from({ length: 3_000 }, (_, i) => i) })]);
    const rule = "[1, 2].exists(x, x == 2 || resource.after.items.exists(a, a < 0 - x))";
    expect(evaluateCelPolicies([deny("swallowed", rule, { effect: "warn" })], plan, onPull, all)).toEqual([expect.objectContaining({ policy: "swallowed", effect: "warn", error: expect.stringContaining("exceeded its cost limit") })]);
  });

  test("comprehensions nested three deep are refused when the rule is compiled", () => {
    expect(compileRule("resource.actions.all(a, resource.actions.all(b, resource.actions.all(c, a == b)))", "resource")).toMatchObject({ message: expect.stringContaining("nests comprehensions 3 deep") });
  });
});

describe("a 10,000-resource plan", () => {
  const resources = Array.from({ length: 10_000 }, (_, i) =>
    change(`module.m${i % 100}.aws_instance.web[${i}]`, { instance_type: i % 10 ? "t3.micro" : "m5.large", tags: { owner: "a" } }, { type: "aws_instance", provider: "registry.terraform.io/hashicorp/aws" }),
  );
  const plan = planOf(resources);

  test("evaluates every policy: matches counted in full, addresses kept up to MAX_ADDRESSES", () => {
    const outcomes = evaluateCelPolicies(
      [
        deny("big", 'resource.after.instance_type != "t3.micro"'),
        deny("everything", 'resource.type == "aws_instance"', { effect: "warn" }),
        deny("untagged", '!("owner" in resource.after.tags)'),
        deny("many", "plan.add > 9999", { scope: "plan", effect: "require_approval" }),
      ],
      plan,
      onPull,
      all,
    );
    expect(outcomes.map((o) => [o.policy, o.matched, o.addresses.length, o.error])).toEqual([
      ["big", 1_000, 200, undefined],
      ["everything", 10_000, MAX_ADDRESSES, undefined],
      ["many", 1, 0, undefined],
    ]);
    expect(outcomes[0]!.addresses.slice(0, 2)).toEqual(["module.m0.aws_instance.web[0]", "module.m10.aws_instance.web[10]"]);
  });
});

describe("a rule that tests resource.type in a top-level && term skips other types unevaluated", () => {
  const plan = planOf([change("a.one", { x: { y: 1 } }), change("b.two", {}), change("c.three", { x: { y: 1 } })]);
  test.each([
    // Reading x.y of b.two would fail: skipping it is what CEL says anyway (false && error is false).
    ['resource.type == "a" && resource.after.x.y == 1', ["a.one"], undefined],
    // The type term may come last: CEL's && is false when any term is, whatever errors the others raise.
    ['resource.after.x.y == 1 && ["a", "c"].exists(t, t == "a") && resource.type in ["a", "c"]', ["a.one", "c.three"], undefined],
    ['"c" == resource.type && resource.after.x.y == 1', ["c.three"], undefined],
    // Not a top-level && term: every resource change is evaluated.
    ['resource.type == "a" || resource.after.x.y == 1', ["a.one"], "failed on b.two: No such key: x"],
    ['!(resource.type == "a") && resource.after.x.y == 1', [], "failed on b.two: No such key: x"],
  ])("%s", (rule, addresses, error) => {
    const [outcome] = evaluateCelPolicies([deny("p", rule)], plan, onPull, all);
    expect(outcome ?? { addresses: [] }).toMatchObject({ addresses, ...(error ? { error } : {}) });
    if (!error) expect(outcome?.error).toBeUndefined();
  });
});

describe("addresses are data", () => {
  test("markdown, mentions, links, escape sequences and right-to-left text come back exactly as the plan gave them", () => {
    const addresses = [
      'aws_s3_bucket.b["@octocat please [merge](https://evil.example) ![x](https://evil.example/i.png)"]',
      'aws_s3_bucket.b["**bold** <img src=x> | table |"]',
      'aws_s3_bucket.b["txt.\u202eexe \u200b"]',
      'aws_s3_bucket.b["שלום עולם"]',
      'aws_s3_bucket.b["\u001b[2J\u001b]8;;https://evil.example\u0007link"]',
    ];
    const [outcome] = evaluateCelPolicies([deny("all", "true")], planOf(addresses.map((a) => change(a, {}, { type: "aws_s3_bucket" }))), onPull, all);
    expect([...outcome!.addresses].sort()).toEqual([...addresses].sort());
  });
});

describe("what a plan's configuration adds to a resource", () => {
  const plan = parsePlanChanges({
    format_version: "1.2",
    resource_changes: [
      { address: 'module.net["eu"].module.sub[0].aws_vpc.main', module_address: 'module.net["eu"].module.sub[0]', mode: "managed", type: "aws_vpc", name: "main", provider_name: "registry.terraform.io/hashicorp/aws", change: { actions: ["create"], before: null, after: {} } },
      { address: "terraform_data.run[1]", mode: "managed", type: "terraform_data", name: "run", provider_name: "terraform.io/builtin/terraform", change: { actions: ["delete"], before: {}, after: null } },
    ],
    configuration: {
      provider_config: { aws: { name: "aws", full_name: "registry.terraform.io/hashicorp/aws", version_constraint: "~> 5.100" }, terraform: { name: "terraform" } },
      root_module: {
        resources: [{ address: "terraform_data.run", mode: "managed", type: "terraform_data", provider_config_key: "terraform", provisioners: [{ type: "local-exec", expressions: {} }, { type: "file", expressions: {} }] }],
        module_calls: { net: { source: "./modules/net", module: { module_calls: { sub: { source: "acme/sub/aws", module: { resources: [{ address: "aws_vpc.main", provider_config_key: "aws" }] } } } } } },
      },
    },
  });
  test("module_source (the innermost call's, instance keys and all), provider_version_constraint and provisioners", () => {
    const facts = (rule: string) => evaluateCelPolicies([deny("p", rule)], plan, onPull, all)[0]?.addresses ?? [];
    expect(facts('resource.module_source == "acme/sub/aws"')).toEqual(['module.net["eu"].module.sub[0].aws_vpc.main']);
    expect(facts('resource.provider_version_constraint == "~> 5.100"')).toEqual(['module.net["eu"].module.sub[0].aws_vpc.main']);
    expect(facts('resource.module_source == "" && resource.provider_version_constraint == ""')).toEqual(["terraform_data.run[1]"]);
    expect(facts('resource.provisioners == ["local-exec", "file"]')).toEqual(["terraform_data.run[1]"]);
  });
});
