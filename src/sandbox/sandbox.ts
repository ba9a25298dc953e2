import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { lchown, lstat, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { systemClock, type Clock } from "./clock.js";
import { EgressFilter, type EgressLease } from "./egress/egress-filter.js";
import { execute, type ExecResult } from "./exec.js";
import { SandboxCaps, type RunCaps } from "./limits.js";
import type { SandboxLanes } from "./lanes.js";
import { systemRootArgs } from "./system-root.js";
import { writeSandboxEtc, type HostEntry, type SandboxEtc } from "./sandbox-etc.js";

/** A host folder (source) seen at target inside the sandbox. */
export interface SandboxBind {
  source: string;
  target: string;
  writable: boolean;
}

export interface SandboxRequest {
  /** Absolute program path and its arguments. */
  command: string[];
  /** The private writable workspace (host path); the working directory unless `cwd` is given. */
  workDir: string;
  /** A working directory inside workDir. */
  cwd?: string;
  /** Folders put in front of the sandbox's fixed PATH (e.g. a program's node_modules/.bin). */
  pathPrefix?: string[];
  network: boolean;
  /** Variables passed in on top of PATH and HOME; nothing else is inherited. */
  env: Record<string, string>;
  /** Extra host paths the program may read (its binary's folder, a CLI config). */
  readOnly?: string[];
  /** Extra host paths the program may write (a plugin cache). */
  writable?: string[];
  /**
   * Host folders mounted at a path of the sandbox's choosing, after the
   * workspace (so a target may cover part of it, e.g. an empty read-only HOME).
   * Without bubblewrap the target must equal the source.
   */
  binds?: SandboxBind[];
  timeoutMs: number;
  maxOutputBytes?: number;
  stdoutFile?: string;
  /** Host files handed in as fds 3, 4, … (created 0600: when plangate runs as root, `nobody` cannot reopen them through /proc). */
  fdFiles?: string[];
  /** Lines added to the sandbox's generated /etc/hosts (bubblewrap only). */
  hosts?: HostEntry[];
  /** Told right before the program is started (everything the sandbox prepares is done). */
  started?: () => void;
  /**
   * Gives the run up while it waits for a lane (with lanes only): the run then
   * throws LaneWaitAbandoned and no program ran. A run that need not wait is
   * not given up.
   */
  abandonWaiting?: AbortSignal;
}

export interface SandboxOptions {
  /** Memory, process and disk caps of every run (PLANGATE_SANDBOX_MEMORY/_PIDS/_DISK); detected once. */
  caps?: SandboxCaps;
  /**
   * The egress filter runs with `network: true` go through (the sandbox owns
   * it; `close()` stops it). Default: one with only the built-in refusals.
   */
  egress?: EgressFilter;
  /** What every run's timeout is measured on (default: the system's clock). */
  clock?: Clock;
  /** How many programs run at once (PLANGATE_WORKERS); a run waits for a lane before its program starts. Default: no limit. */
  lanes?: SandboxLanes;
}

const OPEN_FILES = 4096;

const SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin";
const NOBODY = 65534;

export type SandboxKind = "bwrap" | "none";

/** A program's absolute path, found on PATH. */
export function findProgram(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const candidate = path.join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** True when bubblewrap is installed and can create its namespaces here. */
export function bwrapWorks(): boolean {
  const bwrap = findProgram("bwrap");
  if (!bwrap) return false;
  try {
    execFileSync(bwrap, ["--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"], { stdio: "ignore", timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs untrusted programs (terraform on PR code, cdktf synth): cleared
 * environment, private workspace, the rest of the filesystem read-only and
 * mostly absent, optional network, rlimits and a wall-clock timeout.
 */
export class Sandbox {
  private readonly dropPrivileges = process.getuid?.() === 0;
  private readonly prlimit = findProgram("prlimit");
  private readonly setpriv = findProgram("setpriv");

  readonly caps: SandboxCaps;
  readonly clock: Clock;
  readonly lanes?: SandboxLanes;
  private readonly egress: EgressFilter;

  constructor(
    readonly kind: SandboxKind,
    options: SandboxOptions = {},
  ) {
    this.caps = options.caps ?? new SandboxCaps();
    this.egress = options.egress ?? new EgressFilter({ allow: [], deny: [] });
    this.clock = options.clock ?? systemClock;
    this.lanes = options.lanes;
  }

  /** Starts ahead what a first run would wait for (the egress filter's first namespace): a fresh worker's first plan does not. */
  warm(): void {
    if (this.kind === "bwrap") this.egress.warm(findProgram("bwrap") ?? "bwrap", this.privilegeArgs());
  }

  private nesting?: Promise<boolean>;

  /**
   * Whether a bubblewrap can run inside this sandbox's own, as its user (what
   * planning projects together needs): asked once. Some hosts forbid nested
   * user namespaces (a seccomp profile, user.max_user_namespaces).
   */
  nests(): Promise<boolean> {
    const bwrap = findProgram("bwrap");
    if (this.kind !== "bwrap" || !bwrap) return Promise.resolve(false);
    const inner = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--unshare-all", "--share-net", "--die-with-parent", "true"];
    const argv = [...this.privilegeArgs(), bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all", "--die-with-parent", "--", ...inner];
    this.nesting ??= execute({ argv, cwd: "/", env: {}, timeoutMs: 10_000 }).then((r) => r.exitCode === 0 && !r.timedOut, () => false);
    return this.nesting;
  }

  /** Stops what the sandbox keeps between runs (the egress filter's namespaces). */
  close(): Promise<void> {
    return this.egress.close();
  }

  async run(request: SandboxRequest): Promise<ExecResult> {
    const home = path.join(request.workDir, ".home");
    await mkdir(home, { recursive: true });
    const binds = request.binds ?? [];
    if (this.kind !== "bwrap" && binds.some((b) => b.source !== b.target)) throw new Error("a sandbox bind to another path needs bubblewrap");
    const inWorkDir = (p: string) => p === request.workDir || p.startsWith(request.workDir + path.sep);
    const cwd = request.cwd ?? request.workDir;
    if (cwd !== request.workDir && !cwd.startsWith(request.workDir + path.sep)) throw new Error(`sandbox cwd ${cwd} is outside its workspace`);
    // Side by side, as none needs another: the workspace given away (writable binds from inside it go with it),
    // the network (never the host's: a namespace of its own whose only way out is the egress filter) and the run's cgroup.
    // The run's output goes to a file in a folder of plangate's own beside the workspace (the sandbox sees neither,
    // nor can it plant a link there), counted against the disk cap with the workspace.
    const outputDir = await mkdtemp(path.join(path.dirname(request.workDir), ".plangate-output-"));
    const [given, leased, started] = await Promise.allSettled([
      this.dropPrivileges ? this.giveToNobody([request.workDir, ...(request.writable ?? []), ...binds.filter((b) => b.writable && !inWorkDir(b.source)).map((b) => b.source)]) : undefined,
      request.network && this.kind === "bwrap" ? this.egress.lease(findProgram("bwrap") ?? "bwrap", this.privilegeArgs()) : undefined,
      this.caps.start(request.workDir, [outputDir]),
    ]);
    const egress = leased.status === "fulfilled" ? leased.value : undefined;
    const undo = async (error: unknown): Promise<never> => {
      egress?.finish("");
      if (started.status === "fulfilled") await started.value.finish(undefined);
      await rm(outputDir, { recursive: true, force: true });
      throw error;
    };
    for (const step of [given, leased, started]) if (step.status === "rejected") await undo(step.reason);
    const caps = (started as PromiseFulfilledResult<RunCaps>).value;
    const env = { ...request.env, ...egress?.env, PATH: [...(request.pathPrefix ?? []), SANDBOX_PATH].join(":"), HOME: home };
    // /etc is written after the workspace is given away: its files stay root's.
    const etc = this.kind === "bwrap" ? await this.writeEtc({ ...request, hosts: [...(request.hosts ?? []), ...(egress?.hosts ?? [])] }, home).catch(undo) : undefined;
    const inner = etc ? [...this.bwrapArgs(request, env, etc, egress), "--", ...(egress?.command(request.command) ?? request.command)] : request.command;
    const argv = [...(egress?.prefix ?? []), ...caps.enterArgs(), ...this.limitArgs(request.timeoutMs), ...this.privilegeArgs(), ...inner];
    // Everything above is ready: the program waits here for a lane (its timeout starts once it has one).
    const lane = await this.lanes?.acquire(undefined, request.abandonWaiting, caps.cpu).catch(async (error: unknown) => {
      await etc?.remove();
      return undo(error);
    });
    const stop = new AbortController();
    caps.watch(() => stop.abort());
    let result: ExecResult | undefined;
    let exceeded: string[] = [];
    try {
      request.started?.();
      result = await execute({
        argv,
        cwd,
        env: this.kind === "bwrap" ? {} : env,
        timeoutMs: request.timeoutMs,
        clock: this.clock,
        maxOutputBytes: request.maxOutputBytes,
        stdoutFile: request.stdoutFile,
        fdFiles: request.fdFiles,
        // Not a pipe: terraform prints a line at a time, and thousands of reads would take CPU from it.
        outputFile: path.join(outputDir, "output"),
        stop: stop.signal,
      });
    } finally {
      lane?.();
      const refused = egress?.finish(result?.output ?? "") ?? [];
      if (result && refused.length) result.problems.push(...refused);
      [exceeded] = await Promise.all([caps.finish(result), etc?.remove()]);
      await rm(outputDir, { recursive: true, force: true }); // measured by the caps' last look first
    }
    // A run over a cap never counts as a success, even when its program ignored the loss of a child.
    return exceeded.length ? { ...result, exitCode: result.exitCode === 0 ? 1 : result.exitCode, problems: [...result.problems, ...exceeded] } : result;
  }

  private writeEtc(request: SandboxRequest, home: string): Promise<SandboxEtc> {
    const uid = this.dropPrivileges ? NOBODY : (process.getuid?.() ?? NOBODY);
    const gid = this.dropPrivileges ? NOBODY : (process.getgid?.() ?? NOBODY);
    return writeSandboxEtc({ uid, gid, home, hosts: request.hosts });
  }

  private limitArgs(timeoutMs: number): string[] {
    if (!this.prlimit) return [];
    const cpuSeconds = Math.ceil(timeoutMs / 1000) * 2;
    return [
      this.prlimit,
      ...this.caps.rlimits(),
      `--nofile=${OPEN_FILES}`,
      `--cpu=${cpuSeconds}`,
      "--core=0",
      "--",
    ];
  }

  private privilegeArgs(): string[] {
    if (!this.dropPrivileges || !this.setpriv) return [];
    return [this.setpriv, `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", "--"];
  }

  private bwrapArgs(request: SandboxRequest, env: Record<string, string>, etc: SandboxEtc, egress?: EgressLease): string[] {
    const args = [findProgram("bwrap") ?? "bwrap", ...systemRootArgs()];
    args.push(...etc.bwrapArgs);
    args.push("--dev", "/dev", "--proc", "/proc", "--size", String(this.caps.tmpBytes), "--tmpfs", "/tmp");
    for (const p of request.readOnly ?? []) args.push("--ro-bind", p, p);
    for (const p of request.writable ?? []) args.push("--bind", p, p);
    args.push("--bind", request.workDir, request.workDir);
    for (const b of request.binds ?? []) args.push(b.writable ? "--bind" : "--ro-bind", b.source, b.target);
    args.push("--chdir", request.cwd ?? request.workDir);
    args.push(...(egress?.bwrapArgs ?? []), "--unshare-all");
    // Stay in the egress filter's namespace that nsenter entered (only loopback and its forwarder), never the host's.
    if (egress && !egress.ownNamespace) args.push("--share-net");
    args.push("--die-with-parent", "--new-session", "--clearenv");
    for (const [name, value] of Object.entries(env)) args.push("--setenv", name, value);
    return args;
  }

  private async giveToNobody(paths: string[]): Promise<void> {
    for (const p of paths) await chownTree(p, NOBODY);
  }
}

/**
 * `chown -R id:id` in-process (a spawned chown costs more than a small
 * workspace's walk): links are changed themselves, never followed. Nothing
 * of the sandbox runs meanwhile; an entry that vanished is skipped.
 */
async function chownTree(p: string, id: number): Promise<void> {
  const stats = await lstat(p).catch(() => undefined);
  if (!stats) return;
  await lchown(p, id, id).catch(() => undefined);
  if (!stats.isDirectory()) return;
  const entries = await readdir(p, { withFileTypes: true }).catch(() => []);
  await Promise.all(
    entries.map((entry) => {
      const full = path.join(p, entry.name);
      return entry.isDirectory() ? chownTree(full, id) : lchown(full, id, id).catch(() => undefined);
    }),
  );
}

/** Picks the sandbox for PLANGATE_SANDBOX; `auto` falls back to none with one warning. */
export function chooseSandbox(setting: "auto" | "bwrap" | "none", warn: (message: string) => void): SandboxKind {
  if (setting === "none") return "none";
  if (bwrapWorks()) return "bwrap";
  if (setting === "bwrap") {
    throw new Error("PLANGATE_SANDBOX is bwrap, but bubblewrap is missing or cannot create namespaces here (apt-get install bubblewrap)");
  }
  warn("bubblewrap (bwrap) is not usable here: plans run WITHOUT a sandbox. Install bubblewrap, or set PLANGATE_SANDBOX=none to acknowledge.");
  return "none";
}
