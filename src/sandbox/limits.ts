import type { Settings } from "../settings/settings.js";
import type { ExecResult } from "./exec.js";
import { cpuWeightFile, findCgroupSetup, RunCgroup, type CgroupSetup } from "./cgroup.js";
import { watchDisk } from "./disk-watch.js";
import type { CpuShare } from "./lanes.js";

/** The operator's caps on one sandboxed run (PLANGATE_SANDBOX_MEMORY, _PIDS, _DISK). */
export interface CapSettings {
  memoryBytes: number;
  pids: number;
  diskBytes: number;
}

export const DEFAULT_CAPS: CapSettings = { memoryBytes: 4 * 1024 ** 3, pids: 512, diskBytes: 10 * 1024 ** 3 };

export const capSettings = (settings: Pick<Settings, "sandboxMemoryBytes" | "sandboxPids" | "sandboxDiskBytes">): CapSettings => ({
  memoryBytes: settings.sandboxMemoryBytes,
  pids: settings.sandboxPids,
  diskBytes: settings.sandboxDiskBytes,
});

/** How each cap is enforced here; chosen once, at start. */
export interface CapMechanism {
  /** "cgroup v2", "cgroup v1" or "rlimits" (mixed when only one controller is usable). */
  summary: string;
  pids: string;
  memory: string;
  disk: string;
  /** How a run gives way to a more urgent one (PLANGATE_WORKERS lanes): its CPU weight, or not at all. */
  cpu: string;
}

/** Written into the run's cgroup.procs by its first process, which then execs the rest: no fork escapes the cap. */
const ENTER_CGROUP = 'for f do shift; if [ "$f" = -- ]; then exec "$@"; fi; echo $$ > "$f" || exit 125; done; exit 125';

export function formatSize(bytes: number): string {
  for (const [unit, size] of [["TiB", 1024 ** 4], ["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))} ${unit}`;
  }
  return `${bytes} bytes`;
}

/** The problems of a run, in words a PR author can act on; each names its setting. */
const problem = {
  pids: (caps: CapSettings) => `exceeded PLANGATE_SANDBOX_PIDS (${caps.pids} processes)`,
  memory: (caps: CapSettings, how: string) => `exceeded PLANGATE_SANDBOX_MEMORY (${formatSize(caps.memoryBytes)}): ${how}`,
  disk: (caps: CapSettings, how: string) => `exceeded PLANGATE_SANDBOX_DISK (${formatSize(caps.diskBytes)}): ${how}`,
};

/** What a run's own output says when an rlimit or a full /tmp stopped it (the best there is without cgroup counters). */
const OUTPUT_SIGNS = {
  // bwrap's own clone fails the same way when the sandbox user is already at RLIMIT_NPROC.
  pids: /\b(?:can(?:no|')t fork|fork: (?:retry|Resource temporarily unavailable)|pthread_create failed|newosproc|namespace failed: Resource temporarily unavailable)\b/i,
  memory: /\b(?:out of memory|process OOM|Cannot allocate memory|std::bad_alloc|heap limit Allocation failed)\b/i,
  noSpace: /No space left on device/i,
  fileTooLarge: /File too large|File size limit exceeded|SIGXFSZ/i,
};

/**
 * The caps of every sandboxed run: a fresh cgroup per run where this process
 * may make one (memory and process counts enforced and counted by the kernel
 * for the run as a whole), else per-process / per-user rlimits; the
 * workspace's disk use is watched and /tmp is a size-limited tmpfs.
 */
export class SandboxCaps {
  readonly mechanism: CapMechanism;

  private readonly cgroups: CgroupSetup | undefined;

  /** `cgroups`: where runs' cgroups go (found here by default); null for rlimits only. */
  constructor(
    readonly settings: CapSettings = DEFAULT_CAPS,
    cgroups: CgroupSetup | null = findCgroupSetup() ?? null,
  ) {
    this.cgroups = cgroups ?? undefined;
    const via = (controller: "pids" | "memory", file: string, rlimit: string) =>
      this.cgroups?.[controller] ? `cgroup ${this.cgroups.version} ${file}` : rlimit;
    const pids = via("pids", "pids.max", "RLIMIT_NPROC (an approximation: per user, shared by every run of the sandbox user)");
    const memory = via("memory", this.cgroups?.version === "v2" ? "memory.max" : "memory.limit_in_bytes", "RLIMIT_AS (an approximation: address space per process)");
    const kinds = new Set([this.cgroups?.pids ? `cgroup ${this.cgroups.version}` : "rlimits", this.cgroups?.memory ? `cgroup ${this.cgroups.version}` : "rlimits"]);
    this.mechanism = {
      summary: [...kinds].join(" + "),
      pids,
      memory,
      disk: "workspace watchdog, RLIMIT_FSIZE per file, size-limited /tmp",
      cpu: this.cgroups?.cpu ? `cgroup ${this.cgroups.version} ${cpuWeightFile(this.cgroups)}` : "none (runs share the CPU alike; a more urgent job waits for a lane)",
    };
  }

  /** The size of the sandbox's /tmp: in memory, so never more than the memory cap either. */
  get tmpBytes(): number {
    return Math.min(this.settings.diskBytes, this.settings.memoryBytes);
  }

  /** prlimit options for what the cgroup does not cap. */
  rlimits(): string[] {
    return [
      `--fsize=${this.settings.diskBytes}`,
      ...(this.cgroups?.pids ? [] : [`--nproc=${this.settings.pids}`]),
      ...(this.cgroups?.memory ? [] : [`--as=${this.settings.memoryBytes}`]),
    ];
  }

  /** Prepares one run: its cgroup (if any); `watch` starts the watchdogs, `finish` reads the counters and cleans up. */
  /** `alsoCounted`: folders outside the workspace whose disk use counts against the disk cap with it (the run's output). */
  async start(workDir: string, alsoCounted: string[] = []): Promise<RunCaps> {
    const cgroup = this.cgroups ? await RunCgroup.create(this.cgroups, { pids: this.settings.pids, memoryBytes: this.settings.memoryBytes }) : undefined;
    return new RunCaps(this.settings, [workDir, ...alsoCounted], cgroup);
  }
}

/** The caps of one run in progress. */
export class RunCaps {
  private diskWatch?: { stop(): Promise<number> };
  private counterTimer?: NodeJS.Timeout;
  private finished = false;
  private readonly seen = { pids: false, memory: false, disk: false };

  constructor(
    private readonly settings: CapSettings,
    /** The workspace, then any other folder whose disk use counts with it. */
    private readonly counted: string[],
    private readonly cgroup: RunCgroup | undefined,
  ) {}

  /** The argv prefix that puts the run's first process into its cgroup before anything can fork. */
  enterArgs(): string[] {
    if (!this.cgroup) return [];
    return ["/bin/sh", "-c", ENTER_CGROUP, "plangate-enter-cgroup", ...this.cgroup.procsFiles, "--"];
  }

  /** The run's CPU weight, when its cgroup has one: how it gives way to a more urgent run (SandboxLanes). */
  get cpu(): CpuShare | undefined {
    return this.cgroup?.covers("cpu") ? this.cgroup : undefined;
  }

  /** Watches the workspace and the cgroup counters; `kill` stops the run the first time a cap is exceeded. */
  watch(kill: () => void): void {
    const stop = () => {
      kill();
      void this.cgroup?.killAll();
    };
    this.diskWatch = watchDisk(this.counted, this.settings.diskBytes, () => {
      this.seen.disk = true;
      stop();
    });
    if (!this.cgroup) return;
    const poll = async () => {
      const events = await this.cgroup!.events();
      if (this.finished) return;
      if (events.pidsRefused) this.seen.pids = true;
      if (events.oomKills) this.seen.memory = true;
      if (this.seen.pids || this.seen.memory) return stop();
      this.counterTimer = setTimeout(() => void poll(), 100);
    };
    this.counterTimer = setTimeout(() => void poll(), 50);
  }

  /** Stops the watchdogs, removes the cgroup (killing leftovers), and names every cap the run exceeded. */
  async finish(result: ExecResult | undefined): Promise<string[]> {
    this.finished = true;
    clearTimeout(this.counterTimer);
    try {
      const bytes = (await this.diskWatch?.stop()) ?? 0;
      if (bytes >= this.settings.diskBytes) this.seen.disk = true;
      if (this.cgroup) {
        const events = await this.cgroup.events();
        if (events.pidsRefused) this.seen.pids = true;
        if (events.oomKills) this.seen.memory = true;
      }
    } finally {
      await this.cgroup?.remove();
    }
    const failed = !!result && (result.exitCode !== 0 || result.timedOut);
    const says = (sign: RegExp) => failed && sign.test(result!.output);
    const problems: string[] = [];
    if (this.seen.pids || (!this.cgroup?.covers("pids") && says(OUTPUT_SIGNS.pids))) problems.push(problem.pids(this.settings));
    if (this.seen.memory) problems.push(problem.memory(this.settings, "the OOM killer stopped it"));
    else if (!this.cgroup?.covers("memory") && says(OUTPUT_SIGNS.memory)) problems.push(problem.memory(this.settings, "a process ran out of address space"));
    if (this.seen.disk) problems.push(problem.disk(this.settings, "the workspace grew past it"));
    else if (says(OUTPUT_SIGNS.noSpace)) problems.push(problem.disk(this.settings, "no space left (the sandbox's /tmp holds at most this much)"));
    else if (says(OUTPUT_SIGNS.fileTooLarge)) problems.push(problem.disk(this.settings, "a file grew past it"));
    return problems;
  }
}
