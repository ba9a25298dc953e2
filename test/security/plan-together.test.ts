import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { jest } from "@jest/globals";
import { ENGINES } from "../../src/engines/registry.js";
import { TerraformHomes } from "../../src/engines/terraform-home.js";
import { ProjectRuns, type TogetherOutcome, type TogetherPart } from "../../src/run/project-runs.js";
import { EgressFilter } from "../../src/sandbox/egress/egress-filter.js";
import { DEFAULT_CAPS, SandboxCaps } from "../../src/sandbox/limits.js";
import { makeReadOnlyTree } from "../../src/sandbox/read-only-tree.js";
import { Sandbox } from "../../src/sandbox/sandbox.js";
import { SandboxLanes } from "../../src/sandbox/lanes.js";
import { envAllowlist } from "../../src/settings/env-allow.js";
import { findBinary } from "../../src/settings/find-binary.js";
import { engineTest } from "../support/app-harness.js";
import { leftAfterKill } from "../support/processes.js";

/**
 * Projects of one batch share a sandbox entry (one cgroup, /etc, egress
 * lease, disk watch); each runs in a nested sandbox of its own. The hostile
 * PR author owns one project of a large PR and attacks the others planned in
 * the same entry: reading and writing their workspaces, leaving a process to
 * tamper with what they write later, leaving files in /tmp for them, and
 * forging the exit codes the batch is judged by. Provider code a PR chooses
 * runs during `plan`: a wrapper in terraform's place runs the project's
 * `attack.sh` then terraform itself, as such a provider would.
 */

jest.setTimeout(180_000);

// Outside /tmp, as an operator's PLANGATE_DATA_DIR is: the nested sandbox's own /tmp must not be what hides the other projects.
const made: string[] = [];
afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
function workspace(): string {
  const dir = mkdtempSync(path.join("/var/tmp", "plangate-together-"));
  chmodSync(dir, 0o755);
  made.push(dir);
  return dir;
}
const terraformBin = findBinary("terraform") ?? "terraform";

const project = (value: string) => `resource "terraform_data" "r" {\n  input = "${value}"\n}\n`;

interface Batch {
  root: string;
  runs: ProjectRuns;
  sandbox: Sandbox;
  marker: string;
}

/** The run service over a shared read-only export of `files`, with terraform behind a wrapper that runs a project's attack.sh at plan. */
async function batchOver(files: Record<string, string>, settings: { disk?: number; lanes?: SandboxLanes } = {}): Promise<Batch> {
  const root = workspace();
  const marker = `together-${Math.floor(Math.random() * 1e9)}`;
  const tree = path.join(root, "export", "tree");
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(tree, file)), { recursive: true });
    writeFileSync(path.join(tree, file), text.replaceAll("MARKER", marker));
  }
  await makeReadOnlyTree(path.join(root, "export"), "the export");
  const wrapper = path.join(root, "bin", "terraform");
  mkdirSync(path.dirname(wrapper), { recursive: true });
  writeFileSync(
    wrapper,
    `#!/bin/sh\ndir=.; sub=\nfor a in "$@"; do case "$a" in -chdir=*) dir="\${a#-chdir=}";; plan) sub=plan;; esac; done\n` +
      `if [ "$sub" = plan ] && [ -f "$dir/attack.sh" ]; then sh "$dir/attack.sh" >&2 || exit 1; fi\nexec ${terraformBin} "$@"\n`,
    { mode: 0o755 },
  );
  chmodSync(path.join(root, "bin"), 0o755);
  const caps = new SandboxCaps(settings.disk ? { ...DEFAULT_CAPS, diskBytes: settings.disk } : DEFAULT_CAPS);
  const sandbox = new Sandbox("bwrap", { caps, egress: new EgressFilter({ allow: [], deny: [] }), lanes: settings.lanes });
  const tools = { sandbox, homes: new TerraformHomes(path.join(root, "terraform")), binaries: { terraformBin: wrapper, tofuBin: wrapper }, depsCacheDir: path.join(root, "deps") };
  const runs = new ProjectRuns({ engines: ENGINES, tools, maskPatterns: [], envAllow: envAllowlist([]), applyEnvAllow: envAllowlist([]) });
  return { root, runs, sandbox, marker };
}

/** Aborts `stop` once the batch's project `index` has begun (the outer script opens a project's output as it begins it). */
async function stopOnceBegun(batch: Batch, index: number, stop: AbortController): Promise<void> {
  const output = path.join(batch.root, "batch", "work", String(index), ".plangate-output");
  while (!existsSync(output)) await new Promise((r) => setTimeout(r, 20));
  stop.abort();
}

/** Opens `dirs` as runs of one batch (workspaces in one folder, out dirs beside it) and plans them together. */
async function planTogether(batch: Batch, dirs: string[], stop?: AbortSignal, timeoutMs = 120_000, halve?: AbortSignal): Promise<{ planned: TogetherOutcome[]; work: string }> {
  const work = path.join(batch.root, "batch", "work");
  await rm(path.join(batch.root, "batch"), { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const parts: TogetherPart[] = [];
  for (const [i, dir] of dirs.entries()) {
    const opened = await batch.runs.open({ checkout: { shared: path.join(batch.root, "export", "tree"), workDir: path.join(work, String(i)) }, project: { name: dir, dir, engine: "terraform", workspace: "default", env: [] }, phase: "plan", reason: "pull_request", deadline: Date.now() + timeoutMs });
    if (!opened.ok) throw new Error(opened.message);
    const prepared = await opened.run.prepare();
    if (!prepared.ok) throw new Error(prepared.message);
    parts.push({ run: opened.run, unit: prepared.units[0]!, step: { outDir: path.join(batch.root, "batch", "out", String(i)) } });
  }
  return { planned: await batch.runs.planTogether(work, parts, stop, halve), work };
}

/** The changes a project's plan holds (as the comment shows them), or what came back instead of a plan. */
const plannedInput = (plan: TogetherOutcome | undefined): string => (typeof plan === "string" || !plan ? String(plan) : JSON.stringify(plan.changes()));
/** Planned (true), or what came back instead of a plan ("alone", "unreached"). */
const states = (planned: TogetherOutcome[]) => planned.map((p) => (typeof p === "string" ? p : p.ok));
/** A plan's output, masked as stored. */
const outputOf = (plan: TogetherOutcome | undefined) => (typeof plan === "string" || !plan ? "" : plan.output());

describe("projects planned together in one sandbox entry, each kept apart", () => {
  engineTest("each project's plan is its own and the same as planned alone", async () => {
    const batch = await batchOver({ "a/main.tf": project("alpha"), "b/main.tf": project("bravo"), "c/main.tf": project("charlie") });
    try {
      const { planned } = await planTogether(batch, ["a", "b", "c"]);
      expect(states(planned)).toEqual([true, true, true]);
      expect(plannedInput(planned[0])).toContain('"alpha"');
      expect(plannedInput(planned[1])).toContain('"bravo"');
      expect(plannedInput(planned[2])).toContain('"charlie"');
      expect(plannedInput(planned[1])).not.toContain("alpha");
      // Alone, through the single path: the same change (fingerprint) for each project.
      for (const [i, dir] of ["a", "b", "c"].entries()) {
        const workDir = path.join(batch.root, "alone", dir);
        const opened = await batch.runs.open({ checkout: { shared: path.join(batch.root, "export", "tree"), workDir }, project: { name: dir, dir, engine: "terraform", workspace: "default", env: [] }, phase: "plan", reason: "pull_request", deadline: Date.now() + 120_000 });
        if (!opened.ok) throw new Error(opened.message);
        const alone = await opened.run.plan({ dir: opened.run.projectDir }, { outDir: path.join(batch.root, "alone-out", dir) });
        const together = planned[i]!;
        expect(alone.ok && typeof together !== "string" && alone.fingerprint() === together.fingerprint()).toBe(true);
      }
      expect(outputOf(planned[0])).toContain("Plan: 1 to add, 0 to change, 0 to destroy.");
    } finally {
      await batch.sandbox.close();
    }
  });

  engineTest("a hostile project sees no other project's workspace, cannot write one, leaves nothing behind in /tmp or running, and cannot forge exit codes", async () => {
    // The evil project goes first: everything it leaves behind would meet the victims planned after it.
    const evil = `
own=$(cd "$(dirname "$PWD")" && pwd)
work=$(dirname "$own")
echo "SIBLINGS:$(ls -A "$work" | tr '\\n' ',')"
for d in "$work"/*; do
  [ "$d" = "$own" ] && continue
  echo 'resource "terraform_data" "r" { input = "TAMPERED" }' > "$d/tree/victim/main.tf" 2>/dev/null && echo "WROTE:$d"
done
echo planted > /tmp/from-evil
echo planted > /plangate/provider-cache/planted-by-evil && echo "CACHE-WRITTEN"
if printf '1 0\\n2 0\\n' >&3 2>/dev/null; then echo "FD3:open"; else echo "FD3:closed"; fi
# A process of its own that outlives its plan, to rewrite whatever the victims write next (not its own plan: on a
# busy machine it could spoil that before its sandbox ends, and the evil project's plan is asserted below).
(setsid sh -c 'while true; do for f in '"$work"'/*/.plangate-plan.json '"$work"'/*/tree/victim/main.tf; do [ "$f" = '"$own"'/.plangate-plan.json ] || echo "{}" > "$f" 2>/dev/null; done; sleep 0.05; done; : MARKER' &) 
sleep 0.3
`;
    const victim = `
[ -e /tmp/from-evil ] && echo "SAW-EVIL-TMP"
# The batch's out dirs (each project's private provider cache is there): nothing of another project's may show.
find "$(dirname "$(dirname "$(dirname "$PWD")")")/out" -name planted-by-evil 2>/dev/null | grep -q . && echo "SAW-EVIL-CACHE"
echo "VICTIM-SIBLINGS:$(ls -A "$(dirname "$(dirname "$PWD")")" | tr '\\n' ',')"
`;
    const batch = await batchOver({
      "evil/main.tf": project("evil"),
      "evil/attack.sh": evil,
      "victim/main.tf": project("victim-one"),
      "victim/attack.sh": victim,
      "victim2/main.tf": project("victim-two"),
    });
    try {
      const { planned } = await planTogether(batch, ["evil", "victim", "victim2"]);
      expect(states(planned)).toEqual([true, true, true]);
      const evilOutput = outputOf(planned[0]);
      // It saw only its own workspace, wrote into none other, and could not write an exit code.
      expect(evilOutput).toContain("SIBLINGS:0,");
      expect(evilOutput).not.toContain("WROTE:");
      expect(evilOutput).toContain("FD3:closed");
      expect(evilOutput).toContain("CACHE-WRITTEN"); // its own private provider cache
      // The victims planned after it: their own change, untouched; nothing of it in their /tmp or their view.
      expect(plannedInput(planned[1])).toContain('"victim-one"');
      expect(plannedInput(planned[1])).not.toContain("TAMPERED");
      expect(plannedInput(planned[2])).toContain('"victim-two"');
      const victimOutput = outputOf(planned[1]);
      expect(victimOutput).toContain("VICTIM-SIBLINGS:1,");
      expect(victimOutput).not.toContain("SAW-EVIL-TMP");
      expect(victimOutput).not.toContain("SAW-EVIL-CACHE");
      // Its lingering process died with its nested sandbox.
      expect(await leftAfterKill(batch.marker, 5_000)).toEqual([]);
    } finally {
      await batch.sandbox.close();
    }
  });

  engineTest("a project that fails, or whose output is past 1 MiB, comes back to be planned alone; the others are planned", async () => {
    const batch = await batchOver({
      "ok/main.tf": project("fine"),
      "broken/main.tf": 'resource "terraform_data" "r" {\n  input = var.missing\n}\n',
      "loud/main.tf": project("loud"),
      "loud/attack.sh": "head -c 1200000 /dev/zero | tr '\\0' x\n",
      "last/main.tf": project("last"),
    });
    try {
      const { planned } = await planTogether(batch, ["ok", "broken", "loud", "last"]);
      expect(states(planned)).toEqual([true, "alone", "alone", true]);
      expect(plannedInput(planned[3])).toContain('"last"');
    } finally {
      await batch.sandbox.close();
    }
  });

  engineTest("a project that trips a cap ends the entry and no success of it is believed: the projects it began are planned alone, the rest are not reached", async () => {
    const batch = await batchOver(
      {
        "first/main.tf": project("first"),
        "filler/main.tf": project("filler"),
        "filler/attack.sh": "cd \"$(dirname \"$0\")\"; i=0; while [ $i -lt 512 ]; do head -c 1048576 /dev/zero > fill-$i || exit 1; i=$((i+1)); done\n",
        "after/main.tf": project("after"),
      },
      { disk: 48 * 1024 ** 2 },
    );
    try {
      const { planned } = await planTogether(batch, ["first", "filler", "after"]);
      expect(states(planned)).toEqual(["alone", "alone", "unreached"]);
    } finally {
      await batch.sandbox.close();
    }
  });

  engineTest("a stop ends the batch before its next project: the one running is planned, the rest are not reached", async () => {
    const batch = await batchOver({
      "one/main.tf": project("one"),
      "two/main.tf": project("two"),
      "two/attack.sh": "sleep 1\n",
      "three/main.tf": project("three"),
      "four/main.tf": project("four"),
    });
    try {
      const stop = new AbortController();
      const stopping = stopOnceBegun(batch, 1, stop); // while the second project runs
      const { planned } = await planTogether(batch, ["one", "two", "three", "four"], stop.signal);
      await stopping;
      expect(states(planned)).toEqual([true, true, "unreached", "unreached"]);
      expect(plannedInput(planned[1])).toContain('"two"');
      // Stopped before it began: the first project is still planned (an entry always plans one), the rest are not reached.
      const before = new AbortController();
      before.abort();
      expect(states((await planTogether(batch, ["one", "two", "three"], before.signal)).planned)).toEqual([true, "unreached", "unreached"]);
    } finally {
      await batch.sandbox.close();
    }
  });

  engineTest("halving ends the batch halfway through the projects not yet begun (the running one and the first half are planned); a stop after it still stops it before its next", async () => {
    const batch = await batchOver({
      ...Object.fromEntries(["one", "four", "five", "six"].map((d) => [`${d}/main.tf`, project(d)])),
      "two/main.tf": project("two"),
      "two/attack.sh": "sleep 1\n",
      "three/main.tf": project("three"),
      "three/attack.sh": "sleep 1\n",
    });
    const dirs = ["one", "two", "three", "four", "five", "six"];
    try {
      const halve = new AbortController();
      const halving = stopOnceBegun(batch, 1, halve); // while the second project runs
      const { planned } = await planTogether(batch, dirs, undefined, 120_000, halve.signal);
      await halving;
      // Two begun, four not: two more are planned here, the last two go to the idle lane.
      expect(states(planned)).toEqual([true, true, true, true, "unreached", "unreached"]);
      expect(plannedInput(planned[3])).toContain('"four"');
      // Halved, then stopped while the third runs (a more urgent job): the fourth is not begun either.
      const [again, stop] = [new AbortController(), new AbortController()];
      await rm(path.join(batch.root, "batch"), { recursive: true, force: true }); // the last entry's outputs are not this one's
      const both = Promise.all([stopOnceBegun(batch, 1, again), stopOnceBegun(batch, 2, stop)]);
      const stopped = await planTogether(batch, dirs, stop.signal, 120_000, again.signal);
      await both;
      expect(states(stopped.planned)).toEqual([true, true, true, "unreached", "unreached", "unreached"]);
      // Halved before it began: the first half (never less than the first project) is planned.
      const before = new AbortController();
      before.abort();
      expect(states((await planTogether(batch, ["one", "two", "three"], undefined, 120_000, before.signal)).planned)).toEqual([true, "unreached", "unreached"]);
    } finally {
      await batch.sandbox.close();
    }
  });

  engineTest("a stop while the entry still waits for its sandbox lane gives the entry up: no project runs, none is reached, and the lane goes to the next waiter", async () => {
    const lanes = new SandboxLanes(1);
    const batch = await batchOver({ "one/main.tf": project("one"), "two/main.tf": project("two") }, { lanes });
    try {
      const held = await lanes.acquire({ priority: 0 }); // another job's program has the process's only lane
      const stop = new AbortController();
      const planning = planTogether(batch, ["one", "two"], stop.signal);
      while (!lanes.moreUrgentWaiting({ priority: Number.MAX_SAFE_INTEGER })) await new Promise((r) => setTimeout(r, 10));
      const behind = lanes.acquire({ priority: 5 }).then((release) => (release(), "granted"));
      stop.abort();
      const { planned, work } = await planning;
      expect(states(planned)).toEqual(["unreached", "unreached"]);
      // Not begun at all: terraform wrote nothing in either workspace.
      expect(existsSync(path.join(work, "0", ".plangate-output"))).toBe(false);
      expect(existsSync(path.join(work, "0", "one", ".terraform"))).toBe(false);
      held();
      await expect(behind).resolves.toBe("granted");
      // A lane free at once is taken even after a stop: the entry plans its first project, as every entry does.
      const stopped = new AbortController();
      stopped.abort();
      expect(states((await planTogether(batch, ["one", "two"], stopped.signal)).planned)).toEqual([true, "unreached"]);
    } finally {
      await batch.sandbox.close();
    }
  });

  engineTest("a project still running when the deadline ends the entry is planned alone, never taken for not reached, even after a stop", async () => {
    const batch = await batchOver({
      "one/main.tf": project("one"),
      "slow/main.tf": project("slow"),
      "slow/attack.sh": "sleep 60\n",
      "after/main.tf": project("after"),
    });
    try {
      const stop = new AbortController();
      const stopping = stopOnceBegun(batch, 1, stop);
      const { planned } = await planTogether(batch, ["one", "slow", "after"], stop.signal, 8_000);
      await stopping;
      // "unreached" runs go back to the queue as a batch of their own: the slow one would come first again, for ever.
      expect(states(planned)).toEqual([true, "alone", "unreached"]);
    } finally {
      await batch.sandbox.close();
    }
  });
});
