import type { Refusal } from "../../db/run-groups.js";
import { failureMessage } from "../../engines/terraform.js";
import type { Compared } from "../../run/project-runs.js";
import type { ApprovalStatus } from "../approval/approval-status.js";
import type { Unit } from "./apply-units.js";

/** Who asks to apply: a merge, a `/apply` comment, or a merge queue checking its commit. */
export type GateMode = "merge" | "command" | "queue";

/** One unit the gate lets through; `verify`: plan afresh and apply only if the fingerprint equals the approved one. */
export interface Admitted {
  unit: Unit;
  verify: boolean;
}

/** Allowed: the units to apply, and the reviewers whose approvals let them through (an apply token's `approvers`). */
export type GateDecision = { allow: true; units: Admitted[]; approvers: string[] } | { allow: false; refusal: Refusal };

export interface GateInput {
  mode: GateMode;
  /** Whether the head that is merged (or commented on) was planned; `everPlanned`: any head of the PR was. */
  planned: boolean;
  everPlanned: boolean;
  status?: ApprovalStatus;
  /** The reviewed plans this mode may apply (apply mode and selection already applied), spent ones included. */
  units: Unit[];
}

const spentBy = (unit: Unit) => unit.plan.consumed_by ?? "";
const interrupted = (unit: Unit) => spentBy(unit).startsWith("interrupted:");
const refuse = (refusal: Refusal): GateDecision => ({ allow: false, refusal });

/**
 * The one apply gate: whether the reviewed plans may be applied now, and how.
 * A merge always plans afresh and compares fingerprints (DESIGN.md section 3);
 * so does any apply after an interrupted one, whose state is unknown.
 */
export function applyGate(input: GateInput): GateDecision {
  const { mode, status } = input;
  if (!input.planned || !status) return refuse(input.everPlanned ? { code: "head-not-planned" } : { code: "never-planned", neutral: true });
  if (status.pending) return refuse({ code: "plan-pending" });
  if (status.failed) return refuse({ code: "plan-failed" });
  if (status.unplanned.length) return refuse({ code: "unplanned", message: status.unplanned.map((u) => u.name).join(", ") });
  if (!status.met) return refuse({ code: "not-approved", missing: status.missing.map((m) => ({ project: m.project, have: m.have, needed: m.needed })) });
  const withChanges = input.units.filter((u) => u.plan.changes.resources.length > 0);
  if (!withChanges.length) return refuse(mode === "command" && !input.units.length ? { code: "no-command-projects", neutral: true } : { code: "no-changes", neutral: true });
  const open = withChanges.filter((u) => !u.plan.consumed_at || interrupted(u));
  if (!open.length) {
    const applied = withChanges.some((u) => spentBy(u).startsWith("apply:"));
    return refuse(applied ? { code: "already-applied", neutral: true } : { code: "discarded", neutral: mode === "command" });
  }
  return { allow: true, units: open.map((unit) => ({ unit, verify: mode !== "command" || interrupted(unit) })), approvers: status.approvers };
}

/**
 * The merge queue looks at the changes ahead of a PR in its queue commit
 * only when the gate would let it through, or have nothing to say (neutral):
 * a refusal stands whatever is ahead.
 */
export const queueLooksAhead = (gate: GateDecision): boolean => gate.allow || !!gate.refusal.neutral;

/** The merge queue's verdict before it plans: the gate's, unless a change ahead in the queue commit is unaccounted for. */
export const queueVerdict = (gate: GateDecision, ahead: Refusal | undefined): GateDecision => (ahead ? refuse(ahead) : gate);

/** How much of terraform's output a refusal keeps to say why a fresh plan failed (the run page has the rest). */
export const REFUSAL_OUTPUT_LIMIT = 8_000;

/** One unit planned afresh, compared with its approved plan. */
export interface FreshResult {
  unit: Unit;
  compared: Compared;
}

/**
 * The verdict on fresh plans (an apply's verification, the merge queue's
 * plans): the first that failed refuses, naming it with the end of its
 * output; else every plan that is not the approved change is listed, its
 * fingerprints cut to 12 characters; else nothing stands in the way.
 */
export function freshVerdict(results: FreshResult[], mask: (text: string) => string): Refusal | undefined {
  const failed = results.find((r) => !r.compared.fresh.ok);
  if (failed && !failed.compared.fresh.ok) {
    const fresh = failed.compared.fresh;
    return { code: "fresh-plan-failed", message: mask(`${failed.unit.run.project}: ${failureMessage(fresh)}`), output: mask(fresh.output).trim().slice(-REFUSAL_OUTPUT_LIMIT) }; // masked before it is cut: no secret is cut in half
  }
  const mismatches = results.flatMap(({ unit, compared }) =>
    compared.fresh.ok && !compared.matches ? [{ project: unit.run.project, approved: unit.plan.fingerprint.slice(0, 12), fresh: compared.fresh.fingerprint().slice(0, 12) }] : [],
  );
  return mismatches.length ? { code: "fingerprint-mismatch", mismatches } : undefined;
}
