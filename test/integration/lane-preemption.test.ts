import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { cpuWeightFile, findCgroupSetup } from "../../src/sandbox/cgroup.js";
import { runningJob, SandboxLanes } from "../../src/sandbox/lanes.js";
import { DEFAULT_CAPS, SandboxCaps } from "../../src/sandbox/limits.js";
import { bwrapWorks, Sandbox } from "../../src/sandbox/sandbox.js";
import { toolTest, waitFor } from "../support/app-harness.js";
import { workspaces } from "../support/sandbox.js";

/**
 * A small PR's plan beside a large PR's batch, on one lane: the small one's
 * program starts at once on a lane the batch lends it, and the batch's cgroup
 * runs in the background (the kernel's CPU weight) until the small one ends;
 * then it is back at a run's weight and finishes as it would have.
 */
const setup = findCgroupSetup();
const workspace = workspaces("plangate-preempt-");

/** This process's runs' cpu cgroups now, each with its weight as the kernel holds it. */
function runWeights(): Map<string, string> {
  const parent = setup!.cpu!;
  const file = cpuWeightFile(setup!);
  const found = new Map<string, string>();
  for (const name of readdirSync(parent)) {
    if (!name.startsWith(`plangate-run-${process.pid}-`)) continue;
    const weight = path.join(parent, name, file);
    if (existsSync(weight)) found.set(name, readFileSync(weight, "utf8").trim());
  }
  return found;
}

/** A program that says it started, then waits for its workspace's `go` file. */
const waitForGo = ["/bin/sh", "-c", "touch started; while [ ! -e go ]; do sleep 0.05; done; echo done"];

describe("a more urgent run preempts a less urgent one", () => {
  toolTest(bwrapWorks() && !!setup?.cpu, "bubblewrap and a cpu cgroup controller", "runs at once on a lane the batch lends it, the batch in the background meanwhile", async () => {
    const sandbox = new Sandbox("bwrap", { caps: new SandboxCaps(DEFAULT_CAPS), lanes: new SandboxLanes(1) });
    const [low, high] = [workspace(), workspace()];
    const run = (workDir: string) => sandbox.run({ command: waitForGo, workDir, network: false, env: {}, timeoutMs: 60_000 });
    try {
      const batch = runningJob.run({ priority: 5, group: "big-pr" }, () => run(low));
      await waitFor("the batch to start", () => existsSync(path.join(low, "started")));
      const [batchCgroup, weight] = [...runWeights()][0]!;
      const normal = setup!.version === "v2" ? "100" : "1024";
      expect(weight).toBe(normal);

      // The process's one lane is the batch's: the small PR's run starts anyway.
      const small = runningJob.run({ priority: 0, group: "small-pr" }, () => run(high));
      await waitFor("the small PR's run to start beside the batch", () => existsSync(path.join(high, "started")));
      const during = runWeights();
      expect(during.size).toBe(2);
      expect(during.get(batchCgroup)).toBe(setup!.version === "v2" ? "1" : "2");
      expect([...during].filter(([name]) => name !== batchCgroup).map(([, w]) => w)).toEqual([normal]);

      writeFileSync(path.join(high, "go"), "");
      const smallResult = await small;
      expect([smallResult.exitCode, smallResult.output.trim()]).toEqual([0, "done"]);
      // Back in the foreground once nothing more urgent runs.
      await waitFor("the batch back at its weight", () => runWeights().get(batchCgroup) === normal);
      // A more urgent job at work outside any lane (a PR's project selection, say) puts the batch in the background too.
      const selecting = sandbox.lanes!.running({ priority: 0, group: undefined });
      await waitFor("the batch in the background while the job runs", () => runWeights().get(batchCgroup) === (setup!.version === "v2" ? "1" : "2"));
      selecting();
      await waitFor("the batch back at its weight after the job", () => runWeights().get(batchCgroup) === normal);
      // Jobs that end as they begin, fifty in a row: the weight the kernel is left with is the one asked for last.
      for (let i = 0; i < 50; i++) sandbox.lanes!.running({ priority: 0 })();
      await new Promise((settle) => setTimeout(settle, 500));
      expect(runWeights().get(batchCgroup)).toBe(normal);
      writeFileSync(path.join(low, "go"), "");
      const batchResult = await batch;
      expect([batchResult.exitCode, batchResult.output.trim()]).toEqual([0, "done"]);
      expect(runWeights().size).toBe(0);
    } finally {
      for (const dir of [low, high]) if (!existsSync(path.join(dir, "go"))) writeFileSync(path.join(dir, "go"), "");
      await sandbox.close();
    }
  }, 90_000);
});
