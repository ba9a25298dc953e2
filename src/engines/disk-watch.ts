import type { Dirent } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";

/**
 * Polling bounds: a small workspace is measured often; walking takes at most a
 * twentieth of the time, except while the workspace grows fast enough to
 * reach the cap soon: then it is measured again before half the room left is
 * gone, down to every few milliseconds (a loaded machine delays timers and
 * slows walks, and a filler writes hundreds of MB a second).
 */
const MIN_INTERVAL_MS = 20;
const FAST_INTERVAL_MS = 3;
const MAX_INTERVAL_MS = 5000;
const WALK_SHARE = 20;

const ignoreGone = (error: NodeJS.ErrnoException) => {
  if (error.code === "ENOENT" || error.code === "ENOTDIR") return undefined;
  throw error;
};

/**
 * Disk space used under `dir` (allocated blocks, links not followed), with
 * the walk abandoned once `stopAt` is reached: its exact size past a cap is
 * not needed.
 */
export async function diskUsage(dir: string, stopAt = Infinity): Promise<number> {
  let total = 0;
  const walk = async (folder: string): Promise<void> => {
    const entries: Dirent[] = (await readdir(folder, { withFileTypes: true }).catch(ignoreGone)) ?? [];
    const subfolders: string[] = [];
    await Promise.all(
      entries.map(async (entry) => {
        const full = path.join(folder, entry.name);
        const stats = await lstat(full).catch(ignoreGone);
        if (!stats) return;
        total += stats.blocks * 512;
        if (stats.isDirectory()) subfolders.push(full);
      }),
    );
    for (const sub of subfolders) {
      if (total >= stopAt) return;
      await walk(sub);
    }
  };
  const top = await lstat(dir).catch(ignoreGone);
  if (!top?.isDirectory()) return 0;
  total += top.blocks * 512;
  await walk(dir);
  return total;
}

export interface DiskWatch {
  /** Stops polling and measures once more: the bytes used now. */
  stop(): Promise<number>;
}

/** Disk space used under all of `dirs` together (see diskUsage). */
async function totalUsage(dirs: string[], stopAt: number): Promise<number> {
  let total = 0;
  for (const dir of dirs) {
    if (total >= stopAt) break;
    total += await diskUsage(dir, stopAt - total);
  }
  return total;
}

/**
 * Measures `dirs` (together) again and again while a run lasts and calls
 * `exceeded` the first time they hold `capBytes` or more (the caller kills
 * the run).
 */
export function watchDisk(dirs: string[], capBytes: number, exceeded: (bytes: number) => void): DiskWatch {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();
  let last: { at: number; bytes: number } | undefined;
  const measure = async () => {
    const started = Date.now();
    const bytes = await totalUsage(dirs, capBytes).catch(() => 0);
    if (stopped) return;
    if (bytes >= capBytes) return exceeded(bytes);
    const now = Date.now();
    let interval = Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, (now - started) * WALK_SHARE));
    if (last && bytes > last.bytes) {
      const bytesPerMs = (bytes - last.bytes) / Math.max(1, now - last.at);
      interval = Math.max(FAST_INTERVAL_MS, Math.min(interval, (capBytes - bytes) / bytesPerMs / 2));
    }
    last = { at: now, bytes };
    timer = setTimeout(() => (current = measure()), interval);
  };
  current = measure();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await current;
      return totalUsage(dirs, capBytes);
    },
  };
}
