import type { StoredPlan } from "../../src/db/plans.js";
import type { Run } from "../../src/db/runs.js";
import { orderUnits, type Unit } from "../../src/worker/apply/apply-units.js";

/** The order in which reviewed plans are applied: `depends_on` first, a cdktf program's stacks in synth order. */

/** A unit of `project` (a stack of program `program` when given) planned as run `id`, depending on `dependsOn`. */
function unit(id: number, project: string, dependsOn: string[] = [], program = project): Unit {
  const run = { id, project, workspace: "default" } as Run;
  const plan = { run_id: id } as StoredPlan;
  return { run, plan, baseProject: program, rules: { approvals: { required: 1, teams: [], users: [] }, apply: "on_merge", env: [], depends_on: dependsOn } };
}

const order = (units: Unit[]) => orderUnits(units).map((u) => u.run.project);

describe("apply order", () => {
  test("without depends_on, projects apply in name order, whatever order they were planned in", () => {
    expect(order([unit(1, "web"), unit(2, "app"), unit(3, "db")])).toEqual(["app", "db", "web"]);
  });

  test("a project applies after the projects it depends on, transitively", () => {
    // app -> db -> network: the reverse of name order.
    expect(order([unit(1, "app", ["db"]), unit(2, "db", ["network"]), unit(3, "network")])).toEqual(["network", "db", "app"]);
    expect(order([unit(3, "network"), unit(1, "app", ["db", "network"]), unit(2, "db", ["network"])])).toEqual(["network", "db", "app"]);
  });

  test("a dependency that is not being applied is skipped, not waited for", () => {
    expect(order([unit(1, "app", ["not-in-this-pr"]), unit(2, "zeta")])).toEqual(["app", "zeta"]);
  });

  test("a cycle does not hang: every unit applies exactly once, and a project depending on the cycle comes after it", () => {
    const ordered = order([unit(1, "a", ["b"]), unit(2, "b", ["a"]), unit(3, "after", ["a", "b"])]);
    expect([...ordered].sort()).toEqual(["a", "after", "b"]);
    expect(ordered[2]).toBe("after");
    expect(order([unit(1, "self", ["self"])])).toEqual(["self"]);
  });

  test("a cdktf program's stacks stay together in synth order (run id), not name order", () => {
    const stacks = [unit(8, "cdk/alpha", [], "cdk"), unit(7, "cdk/zeta", [], "cdk"), unit(9, "cdk/mid", [], "cdk")];
    expect(order([unit(1, "net"), ...stacks, unit(2, "aaa")])).toEqual(["aaa", "cdk/zeta", "cdk/alpha", "cdk/mid", "net"]);
  });

  test("depends_on names the program: a project depending on it applies after all its stacks, and its stacks after what it depends on", () => {
    const stacks = [unit(5, "cdk/dev", ["network"], "cdk"), unit(6, "cdk/prod", ["network"], "cdk")];
    expect(order([unit(1, "app", ["cdk"]), ...stacks, unit(2, "network")])).toEqual(["network", "cdk/dev", "cdk/prod", "app"]);
  });
});
