import type { Dirent } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";

/**
 * Polling bounds. A workspace is measured again before half the room left
 * under the cap could be written: at the fastest rate seen between two
 * measurements, and at least at an assumed page-cache write speed before any
 * growth is seen. So a 10 GiB cap lets a quiet run be walked every few
 * seconds while a 64 MiB cap is walked every few milliseconds, and a filler
 * that speeds up is measured more and more often as it nears the cap (a
 * loaded machine delays timers and slows walks). Walking takes at most a
 * twentieth of the time unless the room left demands more.
 */
export const ASSUMED_BYTES_PER_MS = 2 * 1024 ** 2; // 2 GiB/s
const FAST_INTERVAL_MS = 3;
const MAX_INTERVAL_MS = 5000;
const WALK_SHARE = 20;

/** Milliseconds until the next measurement (see the bounds above). `bytesPerMs`: the growth since the last one, if any. */
export function nextInterval({ bytes, capBytes, walkMs, bytesPerMs = 0 }: { bytes: number; capBytes: number; walkMs: number; bytesPerMs?: number }): number {
  const room = Math.max(0, capBytes - bytes);
  const assumed = room / ASSUMED_BYTES_PER_MS / 2;
  const seen = bytesPerMs > 0 ? room / bytesPerMs / 2 : Infinity;
  const interval = Math.min(Math.max(assumed, walkMs * WALK_SHARE), seen, MAX_INTERVAL_MS);
  return Math.max(FAST_INTERVAL_MS, interval);
}

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
    const bytesPerMs = last && bytes > last.bytes ? (bytes - last.bytes) / Math.max(1, now - last.at) : 0;
    last = { at: now, bytes };
    timer = setTimeout(() => (current = measure()), nextInterval({ bytes, capBytes, walkMs: now - started, bytesPerMs }));
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
