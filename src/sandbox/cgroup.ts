import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { mkdir, readFile, rmdir, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * Where this process may make one cgroup per sandboxed run: the folder that
 * gets a child per run, for each controller plangate caps with.
 */
export interface CgroupSetup {
  version: "v1" | "v2";
  /** Parent folder of the runs' pids cgroups, when the pids controller is usable. */
  pids?: string;
  /** Parent folder of the runs' memory cgroups, when the memory controller is usable. */
  memory?: string;
  /** Parent folder of the runs' cpu cgroups, when the cpu controller is usable: a run can then give way to a more urgent one. */
  cpu?: string;
}

export interface CgroupCaps {
  pids: number;
  memoryBytes: number;
}

/** What a run's cgroup counted: forks refused at pids.max, processes the OOM killer stopped. */
export interface CgroupEvents {
  pidsRefused: number;
  oomKills: number;
}

interface Mount {
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

function mounts(): Mount[] {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter(Boolean).map((line) => {
    const [head, tail = ""] = line.split(" - ");
    const fields = head!.split(" ");
    const [fsType = "", , superOptions = ""] = tail.split(" ");
    return { root: unescape(fields[3]!), mountPoint: unescape(fields[4]!), fsType, superOptions: superOptions.split(",") };
  });
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescape = (text: string) => text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/** This process's cgroup path per v1 controller name, and under "" its v2 path. */
function ownCgroups(): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of readFileSync("/proc/self/cgroup", "utf8").split("\n").filter(Boolean)) {
    const [, controllers = "", ...rest] = line.split(":");
    const cgroupPath = rest.join(":");
    if (controllers === "") own.set("", cgroupPath);
    for (const name of controllers.split(",")) if (name) own.set(name, cgroupPath);
  }
  return own;
}

/** The host folder of a cgroup path inside a mount, when the mount shows it. */
function folderOf(mount: Mount, cgroupPath: string): string | undefined {
  const relative = path.posix.relative(mount.root, cgroupPath);
  if (relative.startsWith("..")) return undefined;
  return path.join(mount.mountPoint, relative);
}

/** True when a child cgroup can be made (and removed) under `parent` and has the file the cap is written to. */
function canMakeChild(parent: string, capFile: string): boolean {
  const probe = path.join(parent, `plangate-probe-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    mkdirSync(probe);
  } catch {
    return false;
  }
  try {
    return existsSync(path.join(probe, capFile));
  } finally {
    try {
      rmdirSync(probe);
    } catch {
      // an empty probe is harmless
    }
  }
}

function v1Setup(): CgroupSetup | undefined {
  const own = ownCgroups();
  const parentFor = (controller: string, capFile: string) => {
    const mount = mounts().find((m) => m.fsType === "cgroup" && m.superOptions.includes(controller));
    const cgroupPath = own.get(controller);
    const folder = mount && cgroupPath !== undefined ? folderOf(mount, cgroupPath) : undefined;
    return folder && canMakeChild(folder, capFile) ? folder : undefined;
  };
  const pids = parentFor("pids", "pids.max");
  const memory = parentFor("memory", "memory.limit_in_bytes");
  const cpu = parentFor("cpu", "cpu.shares");
  return pids || memory ? { version: "v1", pids, memory, cpu } : undefined;
}

const controllersOf = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").trim().split(/\s+/) : []);

/**
 * cgroup v2 needs memory and pids enabled for our children. A cgroup that
 * holds processes cannot enable them, so inside a container whose cgroup
 * namespace root we own, our processes move to a leaf first; elsewhere the
 * operator must delegate a cgroup (systemd Delegate=yes).
 */
function v2Setup(): CgroupSetup | undefined {
  const mount = mounts().find((m) => m.fsType === "cgroup2");
  const cgroupPath = ownCgroups().get("");
  const own = mount && cgroupPath !== undefined ? folderOf(mount, cgroupPath) : undefined;
  if (!own) return undefined;
  const wanted = ["memory", "pids"];
  if (!wanted.every((c) => controllersOf(path.join(own, "cgroup.controllers")).includes(c))) return undefined;
  const enable = () => {
    try {
      writeFileSync(path.join(own, "cgroup.subtree_control"), wanted.map((c) => `+${c}`).join(" "));
      return true;
    } catch {
      return false;
    }
  };
  const enabled = () => wanted.every((c) => controllersOf(path.join(own, "cgroup.subtree_control")).includes(c));
  if (!enabled() && !enable() && cgroupPath === "/") {
    try {
      const leaf = path.join(own, "plangate-main");
      mkdirSync(leaf, { recursive: true });
      for (const pid of readFileSync(path.join(own, "cgroup.procs"), "utf8").split("\n").filter(Boolean)) {
        writeFileSync(path.join(leaf, "cgroup.procs"), pid);
      }
      enable();
    } catch {
      return undefined;
    }
  }
  if (!enabled() || !canMakeChild(own, "pids.max")) return undefined;
  // The cpu controller is a bonus (runs give way to more urgent ones), never a condition.
  if (controllersOf(path.join(own, "cgroup.controllers")).includes("cpu") && !controllersOf(path.join(own, "cgroup.subtree_control")).includes("cpu")) {
    try {
      writeFileSync(path.join(own, "cgroup.subtree_control"), "+cpu");
    } catch {
      // not delegated to us: runs all share the cpu alike
    }
  }
  const cpu = controllersOf(path.join(own, "cgroup.subtree_control")).includes("cpu") && canMakeChild(own, "cpu.weight") ? own : undefined;
  return { version: "v2", pids: own, memory: own, cpu };
}

/** Finds where per-run cgroups can be made: cgroup v2 first, then v1 (per controller); undefined when neither. */
export function findCgroupSetup(): CgroupSetup | undefined {
  try {
    return v2Setup() ?? v1Setup();
  } catch {
    return undefined;
  }
}

const readText = (file: string) => readFile(file, "utf8").catch(() => "");
const counter = (text: string, key: string) => Number(new RegExp(`^${key} (\\d+)$`, "m").exec(text)?.[1] ?? 0);

/**
 * A run's CPU weight in the foreground: the default. (A lower one, to put
 * plangate's own work first, made a 1-project PR on an idle machine 0.1 s
 * slower: a run's threads lost the cores to every passing task.)
 */
const RUN_CPU_WEIGHT = { v1: "1024", v2: "100" } as const;
const LEAST_CPU_WEIGHT = { v1: "2", v2: "1" } as const;
export const cpuWeightFile = (setup: CgroupSetup) => (setup.version === "v2" ? "cpu.weight" : "cpu.shares");

/**
 * One run's cgroup(s): made before the run, entered by its first process
 * before it can fork (see `procsFiles`), emptied and removed afterwards.
 */
export class RunCgroup {
  private constructor(
    private readonly setup: CgroupSetup,
    /** The run's folders: one for v2, one per controller for v1. */
    private readonly folders: { pids?: string; memory?: string; cpu?: string },
  ) {}

  /** The last CPU weight write asked for: each waits for the one before. */
  private weightWritten: Promise<void> = Promise.resolve();

  static async create(setup: CgroupSetup, caps: CgroupCaps): Promise<RunCgroup> {
    const name = `plangate-run-${process.pid}-${randomBytes(6).toString("hex")}`;
    const folders = {
      pids: setup.pids ? path.join(setup.pids, name) : undefined,
      memory: setup.memory ? path.join(setup.memory, name) : undefined,
      cpu: setup.cpu ? path.join(setup.cpu, name) : undefined,
    };
    const cgroup = new RunCgroup(setup, folders);
    try {
      for (const folder of new Set(Object.values(folders))) if (folder) await mkdir(folder);
      if (folders.pids) await writeFile(path.join(folders.pids, "pids.max"), String(caps.pids));
      if (folders.cpu) await writeFile(path.join(folders.cpu, cpuWeightFile(setup)), RUN_CPU_WEIGHT[setup.version]);
      if (folders.memory && setup.version === "v2") {
        await writeFile(path.join(folders.memory, "memory.max"), String(caps.memoryBytes));
        // Swap would let a run exceed its memory cap unseen.
        if (existsSync(path.join(folders.memory, "memory.swap.max"))) await writeFile(path.join(folders.memory, "memory.swap.max"), "0");
      } else if (folders.memory) {
        await writeFile(path.join(folders.memory, "memory.limit_in_bytes"), String(caps.memoryBytes));
        const memsw = path.join(folders.memory, "memory.memsw.limit_in_bytes");
        if (existsSync(memsw)) await writeFile(memsw, String(caps.memoryBytes));
      }
    } catch (error) {
      await cgroup.remove();
      throw error;
    }
    return cgroup;
  }

  /** True when this cgroup caps (and counts) that controller; the other falls back to rlimits. */
  covers(controller: "pids" | "memory" | "cpu"): boolean {
    return !!this.folders[controller];
  }

  /**
   * Puts the run in the background (the least CPU weight there is: it runs
   * on what others leave idle, never stopped, so it holds nothing up for
   * good) or back in the foreground (RUN_CPU_WEIGHT). Writes happen in the
   * order asked (two in flight could land the other way round and leave a
   * run in the background for nothing). A run already gone is left alone.
   */
  background(on: boolean): Promise<void> {
    const { cpu } = this.folders;
    if (!cpu) return Promise.resolve();
    const weight = on ? LEAST_CPU_WEIGHT[this.setup.version] : RUN_CPU_WEIGHT[this.setup.version];
    this.weightWritten = this.weightWritten.then(() => writeFile(path.join(cpu, cpuWeightFile(this.setup)), weight).catch(() => undefined));
    return this.weightWritten;
  }

  /** The cgroup.procs files the run's first process writes its own pid into before it execs the program. */
  get procsFiles(): string[] {
    return [...new Set(Object.values(this.folders))].filter((f): f is string => !!f).map((f) => path.join(f, "cgroup.procs"));
  }

  async events(): Promise<CgroupEvents> {
    const { pids, memory } = this.folders;
    const pidsRefused = pids ? counter(await readText(path.join(pids, "pids.events")), "max") : 0;
    const oomFile = this.setup.version === "v2" ? "memory.events" : "memory.oom_control";
    const oomKills = memory ? counter(await readText(path.join(memory, oomFile)), "oom_kill") : 0;
    return { pidsRefused, oomKills };
  }

  /** SIGKILLs every process in the run's cgroup(s). */
  async killAll(): Promise<number> {
    let killed = 0;
    for (const file of this.procsFiles) {
      for (const pid of (await readText(file)).split("\n").filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
          killed++;
        } catch {
          // already gone
        }
      }
    }
    return killed;
  }

  /** Kills whatever the run left behind and removes its cgroup(s); retries while the kernel reaps them. */
  async remove(): Promise<void> {
    for (const folder of new Set(Object.values(this.folders))) {
      if (!folder || !existsSync(folder)) continue;
      for (let attempt = 0; ; attempt++) {
        await this.killAll();
        try {
          await rmdir(folder);
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === "ENOENT") break;
          if (attempt >= 200) throw new Error(`cannot remove the sandbox cgroup ${folder}: ${(error as Error).message}`);
          await new Promise((r) => setTimeout(r, 25));
        }
      }
    }
  }
}
