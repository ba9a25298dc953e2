import type { StoredPlan } from "../../src/db/plans.js";
import type { Run } from "../../src/db/runs.js";
import type { Compared } from "../../src/run/project-runs.js";
import { freshVerdict, queueLooksAhead, queueVerdict, REFUSAL_OUTPUT_LIMIT, type GateDecision } from "../../src/worker/apply/apply-gate.js";
import type { Unit } from "../../src/worker/apply/apply-units.js";

/** The merge queue's verdict and the verdict on fresh plans (an apply's verification, the queue's plans): pure decisions. */

const APPROVED_FP = "a".repeat(64);
const unit = (project: string): Unit => ({
  run: { id: 1, project, workspace: "default" } as Run,
  plan: { fingerprint: APPROVED_FP } as StoredPlan,
  baseProject: project,
  rules: { approvals: { required: 1, teams: [], users: [] }, apply: "on_merge", env: [], depends_on: [] },
});
const captured = (fingerprint: string): Compared => {
  const fresh = { ok: true as const, fingerprint: () => fingerprint, changes: () => ({ resources: [], counts: { add: 0, change: 0, destroy: 0, replace: 0 } }), sealed: () => Buffer.alloc(0), output: () => "" };
  return { fresh, matches: fingerprint === APPROVED_FP };
};
const failed = (output: string): Compared => ({ fresh: { ok: false, tool: "terraform", stage: "plan", output, timedOut: false, problems: [] }, matches: false });
const noMask = (text: string) => text;

describe("the merge queue's verdict", () => {
  const allowed: GateDecision = { allow: true, units: [], approvers: [] };
  const neutral: GateDecision = { allow: false, refusal: { code: "never-planned", neutral: true } };
  const refused: GateDecision = { allow: false, refusal: { code: "not-approved", missing: [] } };

  test("the changes ahead are looked at only when the gate allows or has nothing to say", () => {
    expect([allowed, neutral, refused].map(queueLooksAhead)).toEqual([true, true, false]);
  });

  test("an unaccounted change ahead refuses, whatever the gate said; without one the gate's decision stands", () => {
    const ahead = { code: "queue-unaccounted" as const, message: "#7 changes app" };
    expect(queueVerdict(allowed, ahead)).toEqual({ allow: false, refusal: ahead });
    expect(queueVerdict(neutral, ahead)).toEqual({ allow: false, refusal: ahead });
    expect(queueVerdict(allowed, undefined)).toBe(allowed);
    expect(queueVerdict(neutral, undefined)).toBe(neutral);
  });
});

describe("the verdict on fresh plans", () => {
  test("every fresh plan is the approved change: nothing stands in the way", () => {
    expect(freshVerdict([{ unit: unit("a"), compared: captured(APPROVED_FP) }, { unit: unit("b"), compared: captured(APPROVED_FP) }], noMask)).toBeUndefined();
    expect(freshVerdict([], noMask)).toBeUndefined();
  });

  test("plans of another change are all listed, fingerprints cut to 12 characters", () => {
    const verdict = freshVerdict([{ unit: unit("a"), compared: captured("b".repeat(64)) }, { unit: unit("ok"), compared: captured(APPROVED_FP) }, { unit: unit("c"), compared: captured("c".repeat(64)) }], noMask);
    expect(verdict).toEqual({
      code: "fingerprint-mismatch",
      mismatches: [
        { project: "a", approved: "aaaaaaaaaaaa", fresh: "bbbbbbbbbbbb" },
        { project: "c", approved: "aaaaaaaaaaaa", fresh: "cccccccccccc" },
      ],
    });
  });

  test("a failed fresh plan refuses before any mismatch, naming the project, with the masked end of its output", () => {
    const long = `${"x".repeat(REFUSAL_OUTPUT_LIMIT)}\nError: secret-token refused\n`;
    const cut = `secret-token ${"x".repeat(REFUSAL_OUTPUT_LIMIT - 10)}`; // the secret straddles where the output is cut
    const mask = (text: string) => text.replaceAll("secret-token", "***");
    const verdict = freshVerdict([{ unit: unit("a"), compared: captured("b".repeat(64)) }, { unit: unit("db"), compared: failed(long) }], mask);
    expect(verdict).toMatchObject({ code: "fresh-plan-failed", message: "db: terraform plan failed" });
    expect(verdict?.output).toHaveLength(REFUSAL_OUTPUT_LIMIT);
    expect(verdict?.output?.endsWith("Error: *** refused")).toBe(true);
    const straddling = freshVerdict([{ unit: unit("db"), compared: failed(cut) }], mask);
    expect(straddling?.output).not.toMatch(/token/);
  });
});
