import { countChanges, type ChangeAction, type OutputChange, type ResourceChange } from "../../src/plans/changes.js";
import { renderPlanComment } from "../../src/render/plan-comment.js";
import type { PlanReport, ProjectResult } from "../../src/render/plan-report.js";
import { loadTemplates, type Templates } from "../../src/render/templates.js";
import { referenceRenderPlanComment } from "../support/plan-comment-reference.js";

/**
 * renderPlanComment was made cheaper for reports of hundreds of projects; it
 * must still give exactly the strings the earlier algorithm gave (kept as
 * test code in test/support/plan-comment-reference.ts) for every report,
 * limit and part count, and with operators' templates that are not the
 * built-in ones.
 */

let t: Templates;
beforeAll(async () => {
  t = await loadTemplates();
});

/** A small seeded generator, so a failing case can be rerun. */
function random(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)]!;
  return { next, int, pick };
}
type Random = ReturnType<typeof random>;

const ACTIONS: ChangeAction[] = ["delete", "replace", "update", "create", "move", "import", "forget", "read"];
const TYPES = ["aws_s3_bucket", "aws_iam_role", "aws_instance", "aws_security_group", "aws_lambda_function", "terraform_data", "aws_sqs_queue", "google_storage_bucket", "azurerm_resource_group"];

/** A resource's attributes: a name, and now and then a long policy or script so its diff runs to many lines. */
function attrs(r: Random, i: number, version: number, long: boolean): Record<string, unknown> {
  const base: Record<string, unknown> = { name: `res-${i}`, version, tags: { team: "platform", env: r.pick(["prod", "dev"]) } };
  if (long) {
    base.user_data = `#!/bin/sh\nset -eu\necho "service ${i} revision ${version}"\n${"x".repeat(100 + r.int(2000))}\n`;
    base.policy = JSON.stringify({ Statement: Array.from({ length: 1 + r.int(8) }, (_, k) => ({ Effect: "Allow", Action: [`s3:Get${k}`], Resource: `arn:aws:s3:::b-${i}-${k}/v${version}` })) });
  }
  return base;
}

function resource(r: Random, i: number, action: ChangeAction, longShare: number, prefix: string): ResourceChange {
  const type = r.pick(TYPES);
  const long = r.next() < longShare;
  const hostile = r.int(50) === 0 ? `["@acme/team [x](https://evil.example) www.example.com | \u202e"]` : `[${i}]`;
  return {
    address: `${prefix}${type}.${action}_${i}${hostile}`,
    ...(action === "move" ? { previousAddress: `${prefix}${type}.old_${i}` } : {}),
    ...(action === "import" ? { imported: { id: `id-${i}` } } : {}),
    type,
    action,
    actions: action === "replace" ? ["delete", "create"] : [action],
    before: action === "create" ? null : attrs(r, i, 1, long),
    after: action === "delete" ? null : attrs(r, i, 2, long),
    ...(action === "replace" ? { replacePaths: [["user_data"], ["name"]] } : {}),
  };
}

interface Shape {
  /** Resources per project: up to this many. */
  maxResources: number;
  /** Share of resources with long diffs. */
  longShare: number;
  /** Relative weight of each action. */
  weights: Partial<Record<ChangeAction, number>>;
}

function project(r: Random, p: number, shape: Shape): ProjectResult {
  const name = r.int(40) === 0 ? `apps/@team-${p} [x](https://evil.example)` : `projects/p${p}`;
  const workspace = r.int(10) === 0 ? `ws-${r.int(3)}` : "default";
  const roll = r.int(100);
  if (roll < 2) return { name, workspace, status: "failed", failure: { tool: "terraform", stage: "plan", message: "terraform plan failed", output: `Error: boom ${p}\n${"detail ".repeat(r.int(200))}` } };
  if (roll < 4) return { name, workspace, status: "succeeded", changes: { resources: [], counts: countChanges([]) } };
  const total = Object.values(shape.weights).reduce((a, b) => a + b, 0);
  const draw = (): ChangeAction => {
    let x = r.next() * total;
    for (const [action, weight] of Object.entries(shape.weights) as [ChangeAction, number][]) if ((x -= weight) < 0) return action;
    return "update";
  };
  const n = 1 + r.int(shape.maxResources);
  const drawn = Array.from({ length: n }, (_, i) => resource(r, i, draw(), shape.longShare, r.int(3) === 0 ? `module.m${r.int(4)}.` : ""));
  // Terraform lists changes grouped by action, as the renderer expects (destroys first).
  const resources = ACTIONS.flatMap((a) => drawn.filter((c) => c.action === a));
  const outputs: OutputChange[] | undefined = r.int(4) === 0 ? Array.from({ length: 1 + r.int(5) }, (_, k) => ({ name: `out_${k}`, action: "update" as const, before: `a${k}`, after: `b${k}` })) : undefined;
  const drift = r.int(6) === 0 ? Array.from({ length: 1 + r.int(4) }, (_, k) => resource(r, 1000 + k, "update", shape.longShare, "")) : undefined;
  return { name, workspace, status: "succeeded", changes: { resources, counts: countChanges(resources), ...(outputs ? { outputs } : {}), ...(drift ? { drift } : {}) } };
}

function report(r: Random, projects: number, shape: Shape): PlanReport {
  return {
    repo: "acme/infra",
    sha: "0123456789abcdef0123456789abcdef01234567",
    runUrl: r.int(4) === 0 ? undefined : `https://plangate.example.com/runs/${r.int(1000)}`,
    applyModes: [r.pick(["on_merge", "command", "both"] as const)],
    projects: Array.from({ length: projects }, (_, p) => project(r, p, shape)),
  };
}

const MIXED: Shape["weights"] = { delete: 2, replace: 2, update: 10, create: 10, move: 1, import: 1, forget: 1, read: 1 };
const DESTROYING: Shape["weights"] = { delete: 10, replace: 6, update: 3, create: 1 };
const QUIET: Shape["weights"] = { update: 10, create: 3 };

function expectSame(templates: Templates, rep: PlanReport, options: { limit?: number; maxParts?: number }) {
  const expected = referenceRenderPlanComment(templates, rep, options);
  const actual = renderPlanComment(templates, rep, options);
  expect(actual.length).toBe(expected.length);
  actual.forEach((part, i) => expect(part === expected[i]).toBe(true));
}

describe("renderPlanComment gives the strings the earlier algorithm gave", () => {
  test.each([
    [500, 1, QUIET, 0, {}],
    [500, 3, MIXED, 0.3, { maxParts: 2 }],
    [500, 4, DESTROYING, 0.5, { maxParts: 1 }],
    [2000, 7, QUIET, 0, { maxParts: 3 }],
    [2000, 10, MIXED, 0.1, { maxParts: 2, limit: 30_000 }],
  ] as const)("%i projects (seed %i)", (projects, seed, weights, longShare, options) => {
    const r = random(seed);
    expectSame(t, report(r, projects, { maxResources: 12, longShare, weights }), options);
  });

  test("80 generated reports of 1 to 60 projects, limits 6,000 to 65,536, 1 to 3 parts", () => {
    for (let seed = 100; seed < 180; seed++) {
      const r = random(seed);
      const shape: Shape = { maxResources: r.pick([3, 20, 120]), longShare: r.pick([0, 0.2, 0.8]), weights: r.pick([MIXED, DESTROYING, QUIET]) };
      const rep = report(r, 1 + r.int(60), shape);
      expectSame(t, rep, { maxParts: 1 + r.int(3), limit: r.pick([6_000, 9_000, 16_000, 40_000, 65_536]) });
    }
  });

  test("operators' templates: a summary note and a table whose length is not a sum of rows", () => {
    // Lengths that jump with the counts' parity and shrink as rows are added: nothing the renderer may assume about the built-in templates holds.
    const odd: Templates = {
      render(name, data) {
        const d = data as { omitted?: number; rows?: unknown[]; tableRows?: unknown[]; tableMore?: number };
        if (name === "plan-truncated") return `\n> not all shown: ${d.omitted}${"!".repeat(((d.omitted ?? 0) % 7) * 900)}${d.rows?.length ? "~".repeat(Math.max(0, 5000 - 40 * d.rows.length)) : ""}\n`;
        if (name === "plan-table") return `${t.render(name, data)}${"=".repeat(((d.tableRows?.length ?? 0) % 5) * 300 + (d.tableMore ?? 0) * 3)}\n`;
        return t.render(name, data);
      },
    };
    for (let seed = 500; seed < 560; seed++) {
      const r = random(seed);
      const rep = report(r, 1 + r.int(r.pick([5, 40, 400])), { maxResources: r.pick([5, 40]), longShare: 0.3, weights: r.pick([MIXED, DESTROYING]) });
      expectSame(odd, rep, { maxParts: 1 + r.int(3), limit: r.pick([9_000, 20_000, 65_536]) });
    }
  });
});
