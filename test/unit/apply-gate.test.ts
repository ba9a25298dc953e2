import type { StoredPlan } from "../../src/db/plans.js";
import type { Run } from "../../src/db/runs.js";
import type { ResourceChange } from "../../src/plans/changes.js";
import type { ApprovalStatus } from "../../src/worker/approval/approval-status.js";
import { applyGate, type GateInput, type GateMode } from "../../src/worker/apply/apply-gate.js";
import type { Unit } from "../../src/worker/apply/apply-units.js";

/** The apply gate's every decision, from the facts a merge, an /apply or a merge queue hands it (no database, no GitHub). */

const CHANGE: ResourceChange = { address: "terraform_data.a", type: "terraform_data", action: "create", actions: ["create"], before: null, after: { input: "x" } };

let nextRun = 1;
/** A reviewed plan of `project`: with a change unless `changes` is false; spent when `consumedBy` is given. */
function unit(project: string, options: { changes?: boolean; consumedBy?: string } = {}): Unit {
  const resources = options.changes === false ? [] : [CHANGE];
  const plan: StoredPlan = {
    run_id: nextRun,
    plan_file: Buffer.alloc(0),
    changes: { resources, counts: { add: resources.length, change: 0, destroy: 0, replace: 0 } },
    fingerprint: "f".repeat(64),
    consumed_at: options.consumedBy ? new Date(0) : null,
    consumed_by: options.consumedBy ?? null,
  };
  const run = { id: nextRun++, project, workspace: "default" } as Run;
  return { run, plan, baseProject: project, rules: { approvals: { required: 1, teams: [], users: [] }, apply: "both", env: [], depends_on: [] } };
}

const APPROVED: ApprovalStatus = { met: true, approvers: ["reviewer"], missing: [], failed: false, selfApproved: [], unplanned: [], pending: false };

const gate = (over: Partial<GateInput> & { mode: GateMode }) => applyGate({ planned: true, everPlanned: true, status: APPROVED, units: [unit("app")], ...over });
const MODES: GateMode[] = ["merge", "command", "queue"];

describe("the apply gate refuses, saying why", () => {
  test.each(MODES)("%s: a PR never planned is neutral (nothing to apply); a head not planned when an older one was is a failure", (mode) => {
    expect(gate({ mode, planned: false, everPlanned: false, status: undefined, units: [] })).toEqual({ allow: false, refusal: { code: "never-planned", neutral: true } });
    expect(gate({ mode, planned: false, everPlanned: true, status: undefined, units: [] })).toEqual({ allow: false, refusal: { code: "head-not-planned" } });
  });

  test("a planned head without an approval status (its rules could not be evaluated) is not applied", () => {
    expect(gate({ mode: "merge", status: undefined })).toEqual({ allow: false, refusal: { code: "head-not-planned" } });
  });

  test("a plan still running, then a failed plan, refuse before approvals are looked at", () => {
    const notApproved = { ...APPROVED, met: false, missing: [{ project: "app", needed: 1, have: 0, from: [] }] };
    expect(gate({ mode: "merge", status: { ...notApproved, pending: true, failed: true } })).toEqual({ allow: false, refusal: { code: "plan-pending" } });
    expect(gate({ mode: "merge", status: { ...notApproved, failed: true } })).toEqual({ allow: false, refusal: { code: "plan-failed" } });
  });

  test("changed projects no plan covers are named, even when approved", () => {
    const unplanned = [
      { name: "legacy", dir: "legacy", workspace: "default", plannable: false },
      { name: "net", dir: "net", workspace: "default", plannable: true },
    ];
    expect(gate({ mode: "command", status: { ...APPROVED, unplanned } })).toEqual({ allow: false, refusal: { code: "unplanned", message: "legacy, net" } });
  });

  test("missing approvals say, per project, how many there are and how many are needed", () => {
    const missing = [
      { project: "app", needed: 2, have: 1, from: ["team infra"] },
      { project: "db", needed: 1, have: 0, from: [] },
    ];
    expect(gate({ mode: "merge", status: { ...APPROVED, met: false, missing } })).toEqual({
      allow: false,
      refusal: { code: "not-approved", missing: [{ project: "app", have: 1, needed: 2 }, { project: "db", have: 0, needed: 1 }] },
    });
  });

  test("plans without changes leave nothing to apply (neutral); /apply selecting no project says so", () => {
    expect(gate({ mode: "merge", units: [unit("app", { changes: false })] })).toEqual({ allow: false, refusal: { code: "no-changes", neutral: true } });
    expect(gate({ mode: "merge", units: [] })).toEqual({ allow: false, refusal: { code: "no-changes", neutral: true } });
    expect(gate({ mode: "command", units: [unit("app", { changes: false })] })).toEqual({ allow: false, refusal: { code: "no-changes", neutral: true } });
    expect(gate({ mode: "command", units: [] })).toEqual({ allow: false, refusal: { code: "no-command-projects", neutral: true } });
  });

  test.each(MODES)("%s: plans already applied are not applied twice (neutral)", (mode) => {
    expect(gate({ mode, units: [unit("app", { consumedBy: "apply:7" })] })).toEqual({ allow: false, refusal: { code: "already-applied", neutral: true } });
    // One applied, one discarded: what was reviewed has been applied.
    expect(gate({ mode, units: [unit("app", { consumedBy: "closed" }), unit("db", { consumedBy: "apply:7" })] })).toEqual({ allow: false, refusal: { code: "already-applied", neutral: true } });
  });

  test("discarded plans (/unlock, a closed PR) are a failure on merge, neutral for /apply", () => {
    expect(gate({ mode: "merge", units: [unit("app", { consumedBy: "unlock:alice" })] })).toEqual({ allow: false, refusal: { code: "discarded", neutral: false } });
    expect(gate({ mode: "queue", units: [unit("app", { consumedBy: "closed" })] })).toEqual({ allow: false, refusal: { code: "discarded", neutral: false } });
    expect(gate({ mode: "command", units: [unit("app", { consumedBy: "unlock:alice" })] })).toEqual({ allow: false, refusal: { code: "discarded", neutral: true } });
  });
});

describe("the apply gate lets through the open plans with changes, and says which to plan afresh", () => {
  test("a merge and a merge queue always plan afresh and compare fingerprints; /apply applies the reviewed plan file", () => {
    const units = [unit("app"), unit("db")];
    for (const mode of ["merge", "queue"] as const) expect(gate({ mode, units })).toEqual({ allow: true, units: units.map((u) => ({ unit: u, verify: true })), approvers: ["reviewer"] });
    expect(gate({ mode: "command", units })).toEqual({ allow: true, units: units.map((u) => ({ unit: u, verify: false })), approvers: ["reviewer"] });
  });

  test("plans without changes and spent plans are left out; the rest keep their order", () => {
    const open = [unit("zeta"), unit("alpha")];
    const units = [unit("empty", { changes: false }), open[0]!, unit("done", { consumedBy: "apply:3" }), open[1]!];
    expect(gate({ mode: "command", units })).toEqual({ allow: true, units: open.map((u) => ({ unit: u, verify: false })), approvers: ["reviewer"] });
  });

  test("a plan whose apply was interrupted is open again, and even /apply plans it afresh (its state is unknown)", () => {
    const interrupted = unit("app", { consumedBy: "interrupted:12" });
    const fresh = unit("db");
    expect(gate({ mode: "command", units: [interrupted, fresh] })).toEqual({ allow: true, units: [{ unit: interrupted, verify: true }, { unit: fresh, verify: false }], approvers: ["reviewer"] });
    expect(gate({ mode: "merge", units: [interrupted] })).toEqual({ allow: true, units: [{ unit: interrupted, verify: true }], approvers: ["reviewer"] });
  });
});
