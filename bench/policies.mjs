// The cost of judging a plan by its policies: 20 realistic policies (the ten
// of docs/policies.md, seven more CEL rules and three of the short form) over
// a 10,000-resource plan, next to the cost of parsing that plan's JSON
// (JSON.parse + plans/changes.ts), which every plan pays anyway. Medians of
// fresh processes (cold: each parses, compiles and evaluates once) and of
// warm runs in one process.
// Run: npm run bench:policies   (RUNS=7 fresh processes, WARM=15 warm runs;
// KEEP=DIR keeps plan.json and .plangate.yml there, to profile one fresh run:
// node --cpu-prof bench/policies.mjs --child DIR/plan.json DIR/.plangate.yml)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const { parsePlanChanges } = await import("../dist/plans/changes.js");
const { judgePlan } = await import("../dist/plans/policy-judgement.js");
const { loadRepoConfig } = await import("../dist/settings/load-repo-config.js");
const { ENGINES } = await import("../dist/engines/registry.js");

const here = path.dirname(fileURLToPath(import.meta.url));
const RESOURCES = Number(process.env.RESOURCES ?? 10_000);
const context = { project: { name: "prod-network", dir: "infra/network", workspace: "default", engine: "terraform" }, pull_request: { number: 42, author: "dev", labels: ["infra"], base: "main", head_sha: "f".repeat(40) } };

const MORE_POLICIES = `
  - name: no-open-ssh
    rule: >-
      resource.type == "aws_security_group" && has(resource.after.ingress) &&
      resource.after.ingress.exists(r, r.from_port <= 22 && r.to_port >= 22 && "0.0.0.0/0" in r.cidr_blocks)
  - name: encrypted-volumes
    rule: resource.type == "aws_ebs_volume" && has(resource.after.encrypted) && resource.after.encrypted == false
  - name: private-databases
    rule: resource.type == "aws_db_instance" && has(resource.after.publicly_accessible) && resource.after.publicly_accessible
  - name: deletion-protection
    rule: resource.type == "aws_db_instance" && has(resource.after.deletion_protection) && !resource.after.deletion_protection
    effect: warn
  - name: lambda-runtimes
    rule: >-
      resource.type == "aws_lambda_function" && has(resource.after.runtime) &&
      resource.after.runtime.matches(r'^(python3\\.[0-8]|nodejs1[0-6]\\.x)$')
  - name: prod-label
    scope: plan
    rule: pull_request != null && !("prod-change" in pull_request.labels) && plan.add + plan.change + plan.destroy > 0
    effect: require_approval
    owners: { teams: [sre] }
    projects: ["prod-*"]
  - name: resource-names
    rule: resource.mode == "managed" && !resource.name.matches(r'^[a-z0-9_]+$')
    effect: warn
  - deny: destroy
    resource_types: [aws_kms_key, aws_route53_zone]
  - max_changes: 20000
  - require_approvals: 2
    resource_types: ["aws_iam_*"]
`;

/** The ten policies of docs/policies.md, and ten more. */
function configText() {
  const doc = readFileSync(path.join(here, "..", "docs", "policies.md"), "utf8");
  const blocks = [...doc.matchAll(/<!-- example: [^>]*-->\n```yaml\npolicies:\n([\s\S]*?)```/g)].map((m) => m[1]);
  if (blocks.length !== 10) throw new Error(`docs/policies.md: ${blocks.length} examples, expected 10`);
  return `version: 1\npolicies:\n${blocks.join("")}${MORE_POLICIES}`;
}

/** A deterministic plan of `n` resource changes, shaped as `terraform show -json` writes one. */
function planJson(n) {
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const tags = (i) => (random() < 0.9 ? { owner: "team-" + (i % 7), "cost-center": "cc-" + (i % 13) } : { owner: "team-x" });
  const types = [
    ["aws_instance", 20, (i) => ({ ami: "ami-0123456789abcdef0", instance_type: pick(["t3.micro", "t3.small", "m5.large"]), tags: tags(i), tags_all: { ...tags(i), managed_by: "terraform" }, root_block_device: [{ volume_size: 20, encrypted: true }], user_data_replace_on_change: false })],
    ["aws_s3_bucket", 10, (i) => ({ bucket: `acme-${i}`, force_destroy: false, tags: tags(i), tags_all: tags(i) })],
    ["aws_s3_bucket_acl", 5, () => ({ acl: pick(["private", "private", "public-read"]), expected_bucket_owner: null })],
    ["aws_iam_policy", 8, (i) => ({ name: `p${i}`, path: "/", policy: JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: pick([["s3:GetObject"], "iam:*", ["sqs:SendMessage", "sqs:ReceiveMessage"]]), Resource: "*" }] }), tags: tags(i), tags_all: tags(i) })],
    ["aws_security_group", 10, (i) => ({ name: `sg-${i}`, description: "managed", ingress: [{ from_port: pick([22, 443, 5432]), to_port: pick([22, 443, 5432]), protocol: "tcp", cidr_blocks: [pick(["10.0.0.0/8", "0.0.0.0/0"])], description: "", ipv6_cidr_blocks: [], prefix_list_ids: [], security_groups: [], self: false }], tags: tags(i), tags_all: tags(i) })],
    ["aws_db_instance", 2, (i) => ({ identifier: `db-${i}`, engine: "postgres", instance_class: "db.t3.medium", allocated_storage: 50, publicly_accessible: random() < 0.1, deletion_protection: random() < 0.8, tags: tags(i), tags_all: tags(i) })],
    ["aws_ebs_volume", 5, (i) => ({ availability_zone: "eu-west-1a", size: 100, encrypted: random() < 0.95, type: "gp3", tags: tags(i), tags_all: tags(i) })],
    ["aws_sqs_queue", 10, (i) => ({ name: `q-${i}`, delay_seconds: 0, message_retention_seconds: 345600, tags: tags(i), tags_all: tags(i) })],
    ["aws_lambda_function", 5, (i) => ({ function_name: `fn-${i}`, runtime: pick(["python3.12", "nodejs20.x", "python3.8"]), handler: "index.handler", memory_size: 128, timeout: 30, environment: [{ variables: { STAGE: "prod" } }], tags: tags(i), tags_all: tags(i) })],
    ["terraform_data", 25, (i) => ({ input: `v${i}`, triggers_replace: null })],
  ];
  const weighted = types.flatMap((t) => Array(t[1]).fill(t));
  const modules = Array.from({ length: 100 }, (_, m) => ({ name: `m${m}`, source: m % 10 === 9 ? "example-org/thing/aws" : `./modules/m${m % 10}` }));
  const resource_changes = [];
  const moduleResources = new Map([["", new Map()], ...modules.map((m) => [m.name, new Map()])]);
  for (let i = 0; i < n; i++) {
    const [type, , values] = pick(weighted);
    const module = random() < 0.8 ? pick(modules) : undefined;
    const name = random() < 0.98 ? `r${i % 50}` : `Bad-Name-${i}`;
    const address = `${module ? `module.${module.name}.` : ""}${type}.${name}[${i}]`;
    const roll = random();
    const actions = roll < 0.7 ? ["create"] : roll < 0.85 ? ["update"] : roll < 0.95 ? ["delete"] : ["delete", "create"];
    const after = values(i);
    const before = actions[0] === "create" ? null : { ...after, id: `id-${i}` };
    resource_changes.push({
      address,
      ...(module ? { module_address: `module.${module.name}` } : {}),
      mode: "managed",
      type,
      name,
      index: i,
      provider_name: type === "terraform_data" ? "terraform.io/builtin/terraform" : "registry.terraform.io/hashicorp/aws",
      change: { actions, before, after: actions[0] === "delete" && actions.length === 1 ? null : after, after_unknown: { id: true, arn: true }, before_sensitive: {}, after_sensitive: {} },
    });
    const block = { address: `${type}.${name}`, mode: "managed", type, name, provider_config_key: type === "terraform_data" ? "terraform" : "aws", expressions: {}, schema_version: 0, ...(type === "terraform_data" && i % 9 === 0 ? { provisioners: [{ type: "local-exec", expressions: { command: { constant_value: "echo hi" } } }] } : {}) };
    moduleResources.get(module?.name ?? "").set(block.address, block);
  }
  return {
    format_version: "1.2",
    terraform_version: "1.11.4",
    resource_changes,
    configuration: {
      provider_config: { aws: { name: "aws", full_name: "registry.terraform.io/hashicorp/aws", version_constraint: "~> 5.100" }, terraform: { name: "terraform", full_name: "terraform.io/builtin/terraform" } },
      root_module: { resources: [...moduleResources.get("").values()], module_calls: Object.fromEntries(modules.map((m) => [m.name, { source: m.source, module: { resources: [...moduleResources.get(m.name).values()] } }])) },
    },
  };
}

/** One measurement: parse the plan, compile the policies, evaluate them. */
function measure(planText, yaml) {
  let t = performance.now();
  const changes = parsePlanChanges(JSON.parse(planText));
  const parseMs = performance.now() - t;
  t = performance.now();
  const loaded = loadRepoConfig(yaml, ENGINES.names);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  const compileMs = performance.now() - t;
  t = performance.now();
  const judged = judgePlan(loaded.config.policies, changes, context);
  const evaluateMs = performance.now() - t;
  return { parseMs, compileMs, evaluateMs, policies: loaded.config.policies.length, changes: changes.resources.length, matched: judged.policy.outcomes.map((o) => `${o.policy}:${o.matched}${o.error ? "!" : ""}`).concat(judged.violations.map((v) => `#${v.policy + 1}:${v.addresses.length || v.count}`)) };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const round = (ms) => +ms.toFixed(1);

if (process.argv[2] === "--child") {
  console.log(JSON.stringify(measure(readFileSync(process.argv[3], "utf8"), readFileSync(process.argv[4], "utf8"))));
} else {
  const dir = process.env.KEEP ?? mkdtempSync(path.join(os.tmpdir(), "plangate-bench-policies-"));
  try {
    const planFile = path.join(dir, "plan.json");
    const configFile = path.join(dir, ".plangate.yml");
    writeFileSync(planFile, JSON.stringify(planJson(RESOURCES)));
    writeFileSync(configFile, configText());
    const fresh = Array.from({ length: Number(process.env.RUNS ?? 7) }, () => JSON.parse(execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--child", planFile, configFile], { encoding: "utf8" })));
    const planText = readFileSync(planFile, "utf8");
    const yaml = readFileSync(configFile, "utf8");
    for (let i = 0; i < 3; i++) measure(planText, yaml);
    const warm = Array.from({ length: Number(process.env.WARM ?? 15) }, () => measure(planText, yaml));
    const summary = (runs) => ({ parseMs: round(median(runs.map((r) => r.parseMs))), compileMs: round(median(runs.map((r) => r.compileMs))), evaluateMs: round(median(runs.map((r) => r.evaluateMs))) });
    console.log(
      JSON.stringify(
        {
          plan: { resourceChanges: fresh[0].changes, jsonMB: +(planText.length / 1e6).toFixed(1) },
          policies: fresh[0].policies,
          matched: fresh[0].matched,
          fresh: { runs: fresh.length, ...summary(fresh) },
          warm: { runs: warm.length, ...summary(warm) },
        },
        null,
        2,
      ),
    );
  } finally {
    if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
  }
}
