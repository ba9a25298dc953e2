import { constants } from "node:os";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { ExecResult } from "../sandbox/exec.js";
import type { TreeMounts } from "../sandbox/project-workspace.js";
import { PROVIDER_CACHE_PATH, ProviderCacheLease } from "./provider-cache.js";
import { parsePrJson, readInside, readTextInside, WorkspaceFileError } from "../sandbox/safe-read.js";
import { findProgram, type Sandbox } from "../sandbox/sandbox.js";
import { systemRootArgs } from "../sandbox/system-root.js";
import { LaneWaitAbandoned } from "../sandbox/lanes.js";
import type { TerraformHome } from "./terraform-home.js";

export interface TerraformJob {
  sandbox: Sandbox;
  /** Absolute path of terraform or tofu. */
  bin: string;
  /** The tool as failure wording names it: the engine's (terraform, tofu). */
  tool: string;
  home: TerraformHome;
  /** The checkout (the sandbox's writable workspace, unless `tree` says otherwise). */
  checkoutDir: string;
  /** A shared read-only export laid at checkoutDir, with the job's own folders writable over it. */
  tree?: TreeMounts;
  /** The project's directory, relative to the checkout. */
  projectDir: string;
  workspace: string;
  /** The project's allowlisted variables. */
  env: Record<string, string>;
  timeoutMs: number;
  /** Where plan artefacts go, outside the checkout. */
  outDir: string;
  /** Told as each sandboxed command is about to start (the job's overhead ends at the first). */
  started?: () => void;
}

export type PlanOutcome =
  | { ok: true; output: string; planFile: Buffer; planJson: unknown }
  | StepFailure;

/** A failed step: which one, its output, and what the sandbox saw (caps, refused connections). */
export interface StepFailure {
  ok: false;
  /** The program that failed, as wording names it (its engine's tool). */
  tool: string;
  stage: string;
  output: string;
  timedOut: boolean;
  problems: string[];
}

const STATE_LOCK_TIMEOUT = "-lock-timeout=120s";

export type ApplyOutcome = { ok: true; output: string } | StepFailure;

/** The one-line reason of a failed step, e.g. "terraform plan failed: exceeded PLANGATE_SANDBOX_PIDS (512)". */
export function failureMessage(failure: Pick<StepFailure, "tool" | "stage" | "timedOut" | "problems">, timeoutText = "timed out"): string {
  const head = failure.timedOut ? timeoutText : `${failure.tool} ${failure.stage} failed`;
  return failure.problems.length ? `${head}: ${failure.problems.join("; ")}` : head;
}

/**
 * A program killed by a signal from outside (the OOM killer, an operator, a
 * dying host) says which, rather than only "failed". bwrap reports
 * its child's death by signal N as exit 128 + N.
 */
function namingSignal(result: ExecResult): ExecResult {
  if (result.timedOut || result.exitCode === 0 || result.problems.length) return result; // a cap it exceeded says more
  const number = result.exitCode !== null && result.exitCode > 128 ? result.exitCode - 128 : undefined;
  const name = result.signal ?? Object.entries(constants.signals).find(([, n]) => n === number)?.[0];
  return name ? { ...result, problems: [...result.problems, `killed by signal ${name}`] } : result;
}

/** One terraform command of a job, named by its stage ("init", "plan", …). */
interface Step {
  stage: string;
  args: string[];
  /** Its stdout goes to this host file rather than into the output. */
  stdoutFile?: string;
}

type StepsResult = ExecResult & { stage: string };

/**
 * Runs a job's steps in order inside one sandbox entry, stopping at the first
 * failure (each entry costs a process chain, a cgroup and a disk watch). The
 * steps run under a fixed shell script: it writes each stage's name to fd 4
 * before running it, and hands fd 3 (a host file) only to the step whose
 * stdout goes there; every other step runs with fds 3 and 4 closed. The exit
 * code is the failed step's own, so a signal is still named.
 */
const STEPS_SCRIPT = 'step() { printf "%s\\n" "$1" >&4; shift; "$@" 3>&- 4>&-; rc=$?; [ "$rc" -eq 0 ] || exit "$rc"; }';

const shellQuote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

/** The sandboxed terraform runner of one job: every command shares the job's deadline (a provider cache's fill included). */
function runner(job: TerraformJob, cache: ProviderCacheLease, deadline: number) {
  const chdir = `-chdir=${job.projectDir}`;
  const env = {
    ...job.env,
    TF_IN_AUTOMATION: "1",
    TF_INPUT: "0",
    TF_CLI_CONFIG_FILE: job.home.cliConfigFile,
    TF_PLUGIN_CACHE_DIR: cache.path,
  };
  return async (steps: Step[]): Promise<StepsResult> => {
    const outFile = steps.find((s) => s.stdoutFile)?.stdoutFile;
    if (steps.filter((s) => s.stdoutFile).length > 1) throw new Error("only one step's stdout can go to a file");
    const stagesFile = path.join(job.outDir, `.stages-${steps.map((s) => s.stage).join("-")}`);
    const lines = steps.map((s) => `step ${[s.stage, job.bin, chdir, ...s.args].map(shellQuote).join(" ")}${s.stdoutFile ? " >&3" : ""}`);
    const result = await job.sandbox.run({
      command: ["/bin/sh", "-c", [STEPS_SCRIPT, ...lines].join("\n"), "plangate-steps"],
      workDir: workDirOf(job),
      cwd: job.checkoutDir,
      network: true, // providers and state backends need it (DESIGN.md section 3)
      env,
      readOnly: [path.dirname(job.bin), ...job.home.readOnly],
      // The tree first; the provider cache is writable only when it is this job's private one.
      binds: [...(job.tree?.binds ?? []), ...cache.binds()],
      timeoutMs: Math.max(1, deadline - job.sandbox.clock.now()),
      // fd 3: the one step's stdout (or nowhere); fd 4: the stages as they start.
      fdFiles: [outFile ?? "/dev/null", stagesFile],
      started: job.started,
    });
    const started = (await readFile(stagesFile, "utf8").catch(() => "")).split("\n").filter(Boolean);
    return { ...namingSignal(result), stage: started.at(-1) ?? steps[0]!.stage };
  };
}

const failed = (r: ExecResult) => r.exitCode !== 0 || r.timedOut;

/** The sandbox's writable workspace of a job: its checkout, or the private folder a shared tree is laid in. */
export const workDirOf = (job: Pick<TerraformJob, "checkoutDir" | "tree">) => job.tree?.workDir ?? job.checkoutDir;

/** The plan file of a project directory, inside the workspace (the sandbox can write nowhere else). */
export const planFilePath = (job: Pick<TerraformJob, "checkoutDir" | "projectDir" | "tree">) =>
  path.join(workDirOf(job), `.plangate-tfplan-${job.projectDir.replace(/[^A-Za-z0-9]+/g, "_")}`);

function initSteps(job: TerraformJob): Step[] {
  return [
    { stage: "init", args: ["init", "-input=false", "-no-color"] },
    ...(job.workspace !== "default" ? [{ stage: "workspace", args: ["workspace", "select", "-or-create=true", "-no-color", job.workspace] }] : []),
  ];
}

const stepFailure = (tool: string, r: StepsResult): StepFailure => ({ ok: false, tool, stage: r.stage, output: r.output, timedOut: r.timedOut, problems: r.problems });

/**
 * Runs init, plan -out and show -json for one project, in one sandbox entry,
 * with one overall deadline (a shared provider cache is filled before, in a
 * run of its own that sees none of the project's configuration).
 */
export async function terraformPlan(job: TerraformJob): Promise<PlanOutcome> {
  const deadline = job.sandbox.clock.now() + job.timeoutMs;
  const cache = await ProviderCacheLease.forInit(job);
  const run = runner(job, cache, deadline);
  const planPath = planFilePath(job);
  const jsonPath = path.join(job.outDir, "plan.json");
  const planSteps: Step[] = [
    { stage: "plan", args: ["plan", "-input=false", "-no-color", "-lock=true", STATE_LOCK_TIMEOUT, `-out=${planPath}`] },
    { stage: "show", args: ["show", "-json", "-no-color", planPath], stdoutFile: jsonPath },
  ];
  const steps = await cache.init(() => run([...initSteps(job), ...planSteps]));
  if (failed(steps)) return stepFailure(job.tool, steps);
  try {
    // The plan step ran PR-chosen provider code in the workspace: the plan file may have been swapped for a link.
    const planFile = await readInside(workDirOf(job), planPath, { shown: "the plan file" });
    const planJson = parsePrJson(await readTextInside(job.outDir, jsonPath), "terraform show -json output");
    return { ok: true, output: steps.output, planFile, planJson };
  } catch (error) {
    if (!(error instanceof WorkspaceFileError)) throw error;
    return { ok: false, tool: job.tool, stage: "show", output: "", timedOut: false, problems: [error.message] };
  }
}

/**
 * Applies a saved plan file (already in the checkout at planFilePath) with
 * terraform's state lock held; `initialise` runs init first (a fresh checkout).
 */
export async function terraformApply(job: TerraformJob, initialise: boolean): Promise<ApplyOutcome> {
  const deadline = job.sandbox.clock.now() + job.timeoutMs;
  const cache = initialise ? await ProviderCacheLease.forInit(job) : await ProviderCacheLease.afterInit(job);
  const run = runner(job, cache, deadline);
  const outputs: string[] = [];
  if (initialise) {
    const init = await cache.init(() => run(initSteps(job)));
    if (failed(init)) return stepFailure(job.tool, init);
    outputs.push(init.output);
  }
  const apply = await run([{ stage: "apply", args: ["apply", "-input=false", "-no-color", "-lock=true", STATE_LOCK_TIMEOUT, planFilePath(job)] }]);
  if (failed(apply)) return stepFailure(job.tool, apply);
  outputs.push(apply.output);
  return { ok: true, output: outputs.join("\n") };
}

/** A batch's files beside each project's plan file, in its own workspace (only its nested sandbox writes there). */
const TOGETHER_OUTPUT = ".plangate-output";
const TOGETHER_JSON = ".plangate-plan.json";
/** A project's output larger than this is not taken from a batch: planned alone, its output is cut as any run's is. */
const TOGETHER_MAX_OUTPUT = 1024 * 1024;

/**
 * Plans several projects of one commit in ONE sandbox entry (one cgroup,
 * /etc, egress lease and disk watch, paid once), each project in a nested
 * bubblewrap of its own inside it: its own pid, ipc and mount namespaces and
 * /tmp, a root of only what it needs (the system, its own workspace, its own provider cache), only its
 * own workspace writable, and every process of it gone when it ends. The
 * projects run one after the other; the outer script alone writes each
 * project's exit code, to a host file the projects never hold.
 *
 * `root` is the batch's workspace: every job's workspace is a folder of it.
 * The jobs share the sandbox's inputs (engine, env, no per-run credentials).
 * A project comes back planned only when its init, plan and show all
 * succeeded and its files are sound; anything else (a failure, a cap or the
 * deadline reached, output past 1 MiB) comes back undefined, for the caller
 * to plan it alone, where a failure is worded as every run's is. `stop`
 * ends the batch before its next project (the one running finishes), or
 * before its first if the entry still waits for its sandbox lane; `halve`
 * ends it halfway through the projects not yet begun (the one running and
 * the first half of the rest are planned, the other half goes to a lane
 * left idle), and a `stop` after it still stops it before its next:
 * `reached` says how many projects it began.
 */
export async function terraformPlanTogether(root: string, jobs: TerraformJob[], stop?: AbortSignal, halve?: AbortSignal): Promise<Together> {
  const sandbox = jobs[0]!.sandbox;
  const bwrap = sandbox.kind === "bwrap" ? findProgram("bwrap") : undefined;
  if (!bwrap || jobs.some((j) => !j.tree || !isInside(root, j.tree.workDir) || isInside(root, j.outDir))) throw new Error("projects are planned together only over shared exports, in bubblewrap, with their out dirs outside the batch's workspace");
  if (!(await sandbox.nests())) return { planned: jobs.map(() => undefined), reached: jobs.length };
  const deadline = sandbox.clock.now() + Math.min(...jobs.map((j) => j.timeoutMs));
  const caches: ProviderCacheLease[] = [];
  for (const job of jobs) caches.push(await ProviderCacheLease.forInit(job));
  const home = jobs[0]!.home;
  const readOnly = [...new Set(jobs.flatMap((j) => [path.dirname(j.bin), ...j.home.readOnly, j.home.emptyHome]))];
  const cacheBinds = caches.map((c) => c.mount());
  // Beside the batch's workspace, as the sandbox's output is: the sandbox sees neither the codes nor (but read-only) the stop.
  const hostDir = await mkdtemp(path.join(path.dirname(root), ".plangate-together-"));
  const codesFile = path.join(hostDir, "codes");
  const stopDir = path.join(hostDir, "stop");
  await mkdir(stopDir);
  await chmod(hostDir, 0o755);
  const lines: string[] = [];
  for (const [i, job] of jobs.entries()) {
    const workDir = workDirOf(job);
    await mkdir(path.join(workDir, ".home"), { recursive: true });
    const planPath = planFilePath(job);
    const tf = (args: string[]) => [job.bin, `-chdir=${job.projectDir}`, ...args].map(shellQuote).join(" ");
    const steps = [
      ...initSteps(job).map((s) => tf(s.args)),
      tf(["plan", "-input=false", "-no-color", "-lock=true", STATE_LOCK_TIMEOUT, `-out=${planPath}`]),
      `${tf(["show", "-json", "-no-color", planPath])} > ${shellQuote(path.join(workDir, TOGETHER_JSON))}`,
    ].join(" && ");
    const cache = cacheBinds[i]!;
    // Only what this project needs is mounted (never the entry's whole root): the other projects' workspaces and
    // private provider caches are not there at all, and the fewer mounts, the cheaper each nested entry.
    const apart = [
      bwrap, ...systemRootArgs(), "--ro-bind", "/etc", "/etc", "--dev", "/dev", "--proc", "/proc",
      "--size", String(sandbox.caps.tmpBytes), "--tmpfs", "/tmp",
      ...readOnly.flatMap((p) => ["--ro-bind", p, p]),
      "--bind", workDir, workDir,
      cache.writable ? "--bind" : "--ro-bind", cache.source, PROVIDER_CACHE_PATH,
      "--ro-bind", home.emptyHome, path.join(workDir, ".home"),
      "--chdir", job.checkoutDir,
      "--unshare-all", "--share-net", "--die-with-parent", "--new-session",
      "--setenv", "HOME", path.join(workDir, ".home"),
      "--", "/bin/sh", "-c", steps,
    ];
    // fd 3 (the exit codes) is closed for the project: nothing of it can write a code for itself or another.
    // A stop is heeded from the second project on (a file named by the project's index): every entry plans at least one.
    if (i > 0) lines.push(`[ -e ${shellQuote(path.join(stopDir, String(i)))} ] && exit 0`);
    lines.push(`printf 'begin %s\\n' ${i} >&3`);
    lines.push(`${apart.map(shellQuote).join(" ")} > ${shellQuote(path.join(workDir, TOGETHER_OUTPUT))} 2>&1 3>&-; printf 'end %s %s\\n' ${i} "$?" >&3`);
  }
  // The projects from `from` on are not begun (one already begun when its file appears still runs: `reached` tells).
  const stopFrom = async (from: number) => {
    for (let i = Math.max(1, from); i < jobs.length; i++) await writeFile(path.join(stopDir, String(i)), "");
  };
  const stopping = () => void stopFrom(1).catch(() => undefined);
  const halving = () =>
    void (async () => {
      const { begun } = readCodes(await readFile(codesFile, "utf8").catch(() => ""));
      const left = jobs.length - Math.min(begun, jobs.length);
      await stopFrom(jobs.length - Math.ceil(left / 2));
    })().catch(() => undefined);
  if (stop?.aborted) stopping();
  else stop?.addEventListener("abort", stopping);
  if (halve?.aborted) halving();
  else halve?.addEventListener("abort", halving);
  jobs.forEach((j) => j.started?.());
  // A cap or the deadline that cut the batch short leaves the project it was running without a code.
  const entry = await sandbox.run({
    command: ["/bin/sh", "-c", lines.join("\n"), "plangate-together"],
    workDir: root,
    cwd: root,
    network: true,
    env: { ...jobs[0]!.env, TF_IN_AUTOMATION: "1", TF_INPUT: "0", TF_CLI_CONFIG_FILE: home.cliConfigFile, TF_PLUGIN_CACHE_DIR: PROVIDER_CACHE_PATH },
    readOnly: [...readOnly, ...cacheBinds.filter((b) => !b.writable).map((b) => b.source), stopDir],
    writable: cacheBinds.filter((b) => b.writable).map((b) => b.source),
    // The export and each project's own folders, at every project's place; something at the cache's fixed path for the nested mounts.
    binds: [...jobs.flatMap((j) => j.tree!.binds), { source: home.emptyHome, target: PROVIDER_CACHE_PATH, writable: false }],
    timeoutMs: Math.max(1, deadline - sandbox.clock.now()),
    fdFiles: [codesFile],
    // Stopped while it still waits for its lane: the entry has planned nothing, so it never starts, and its
    // projects all go back unreached (its lane and its job slot go to the more urgent job that stopped it).
    abandonWaiting: stop,
  })
    .catch((error: unknown) => {
      if (error instanceof LaneWaitAbandoned) return undefined;
      throw error;
    })
    .finally(() => {
      stop?.removeEventListener("abort", stopping);
      halve?.removeEventListener("abort", halving);
    });
  const codesText = entry ? await readFile(codesFile, "utf8").catch(() => "") : "";
  await rm(hostDir, { recursive: true, force: true });
  if (!entry) return { planned: jobs.map(() => undefined), reached: 0 };
  const { begun, codes } = readCodes(codesText);
  // Over a cap, no project's success is believed: the kernel's counters are read as the entry runs, and the project
  // that went over may have ended (exit 0) before the watch saw it. Each is planned alone, under caps of its own.
  if (entry.problems.some((p) => p.startsWith("exceeded "))) codes.clear();
  const planned = await Promise.all(
    jobs.map(async (job, i) => {
      if (codes.get(i) !== 0) return undefined;
      const workDir = workDirOf(job);
      try {
        const output = await readTextInside(workDir, path.join(workDir, TOGETHER_OUTPUT), { shown: "the output", maxBytes: TOGETHER_MAX_OUTPUT });
        const planFile = await readInside(workDir, planFilePath(job), { shown: "the plan file" });
        const planJson = parsePrJson(await readTextInside(workDir, path.join(workDir, TOGETHER_JSON)), "terraform show -json output");
        return { ok: true as const, output, planFile, planJson };
      } catch (error) {
        if (error instanceof WorkspaceFileError) return undefined;
        throw error;
      }
    }),
  );
  return { planned, reached: begun };
}

/**
 * The lines the batch's script wrote: `begin I` as it begins project I,
 * `end I CODE` when it ends. Anything else (a line twice, out of order, of
 * another shape) and no project's code is believed.
 */
function readCodes(text: string): { begun: number; codes: Map<number, number> } {
  const codes = new Map<number, number>();
  let begun = 0;
  for (const line of text.split("\n").filter(Boolean)) {
    const begin = /^begin (\d+)$/.exec(line);
    const end = /^end (\d+) (\d+)$/.exec(line);
    if (begin && Number(begin[1]) === begun) begun++;
    else if (end && Number(end[1]) === begun - 1 && !codes.has(begun - 1)) codes.set(begun - 1, Number(end[2]));
    else return { begun: Number.MAX_SAFE_INTEGER, codes: new Map() }; // every project planned alone
  }
  return { begun, codes };
}

/** What a batch planned (undefined: plan that project alone), and how many of its projects it began before a stop. */
export interface Together {
  planned: (PlanOutcome | undefined)[];
  /** Projects begun: those after them were not reached (a stop, or the entry cut short). */
  reached: number;
}

const isInside = (root: string, p: string) => p.startsWith(root + path.sep);

