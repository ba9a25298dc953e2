import { ASSUMED_BYTES_PER_MS, nextInterval } from "../../src/sandbox/disk-watch.js";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/**
 * A filler writing `bytesPerMs` from the start, measured on the watch's own
 * schedule (walks taking `walkMs`): how far past the cap it is when a
 * measurement first sees the cap reached.
 */
function overshoot(capBytes: number, bytesPerMs: number, walkMs = 0.5): number {
  let at = 0;
  let last: { at: number; bytes: number } | undefined;
  for (;;) {
    const bytes = bytesPerMs * at;
    if (bytes >= capBytes) return bytes - capBytes;
    const rate = last && bytes > last.bytes ? (bytes - last.bytes) / (at - last.at) : 0;
    last = { at, bytes };
    at += nextInterval({ bytes, capBytes, walkMs, bytesPerMs: rate });
  }
}

describe("the disk watch's schedule", () => {
  test("a quiet run under the default 10 GiB cap is walked every few seconds, one under a 64 MiB cap every few milliseconds", () => {
    expect(nextInterval({ bytes: 1 * MiB, capBytes: 10 * GiB, walkMs: 0.5 })).toBeGreaterThanOrEqual(2000);
    expect(nextInterval({ bytes: 1 * MiB, capBytes: 64 * MiB, walkMs: 0.5 })).toBeLessThanOrEqual(16);
  });

  test("a filler at up to the assumed write speed is caught within half the cap past it, at any cap", () => {
    for (const capBytes of [64 * MiB, 1 * GiB, 10 * GiB, 100 * GiB]) {
      for (const bytesPerMs of [0.1 * MiB, 0.5 * MiB, ASSUMED_BYTES_PER_MS]) {
        expect(overshoot(capBytes, bytesPerMs)).toBeLessThanOrEqual(capBytes / 2);
      }
    }
  });

  test("a filler faster than assumed is measured more often once its speed is seen", () => {
    const fast = 4 * ASSUMED_BYTES_PER_MS;
    expect(nextInterval({ bytes: 1 * GiB, capBytes: 10 * GiB, walkMs: 0.5, bytesPerMs: fast })).toBeLessThan(nextInterval({ bytes: 1 * GiB, capBytes: 10 * GiB, walkMs: 0.5 }));
    expect(overshoot(10 * GiB, fast)).toBeLessThanOrEqual(10 * GiB * 2);
  });

  test("a slow walk is not repeated more than a twentieth of the time, unless the room left needs it", () => {
    expect(nextInterval({ bytes: 0, capBytes: 64 * MiB, walkMs: 5 })).toBe(100);
    expect(nextInterval({ bytes: 0, capBytes: 64 * MiB, walkMs: 5, bytesPerMs: 10 * MiB })).toBeLessThan(100);
  });
});
