import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import path from "node:path";

/** The command lines of this machine's processes that contain `text` (a random marker the test put there). */
export const processesNamed = (text: string): string[] => execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).split("\n").filter((l) => l.includes(text));

/** The terraform processes running now, with their command lines (inside a sandbox too: its processes are visible from here). */
function terraforms(): { pid: number; argv: string[] }[] {
  const found: { pid: number; argv: string[] }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (path.basename(readlinkSync(`/proc/${entry}/exe`)) === "terraform") found.push({ pid: Number(entry), argv: readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0") });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** The pids of the terraform processes running `verb` for project directory `dir`. */
const terraformPids = (dir: string, verb: string): number[] => terraforms().filter(({ argv }) => argv.includes(`-chdir=${dir}`) && argv.includes(verb)).map(({ pid }) => pid);

/** How many terraform processes descending from `ancestor` run right now (one per sandbox entry: its steps run one after the other). */
export const terraformsRunning = (ancestor: number): number => terraforms().filter(({ pid }) => descendsFrom(pid, ancestor)).length;

/**
 * The terraform process running `verb` for `dir` that descends from
 * `ancestor` (the test's own worker): test files run side by side, and
 * another one's project of the same name is not this test's.
 */
export function terraformPid(dir: string, verb: string, ancestor: number): number | undefined {
  return terraformPids(dir, verb).find((pid) => descendsFrom(pid, ancestor));
}

/**
 * Waits until no process's command line contains `text`, for at most
 * `timeoutMs`: a killed process leaves the table a moment after the kill.
 * Returns what is still there (nothing, unless something survived).
 */
export async function leftAfterKill(text: string, timeoutMs = 10_000): Promise<string[]> {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const left = processesNamed(text);
    if (!left.length || Date.now() > giveUpAt) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether process `pid` is `ancestor` or one of its descendants (through sandboxes too: their processes have host pids here). */
export function descendsFrom(pid: number, ancestor: number): boolean {
  for (let p = pid; p > 1; ) {
    if (p === ancestor) return true;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      p = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    } catch {
      return false; // gone meanwhile
    }
  }
  return false;
}
