import http from "node:http";

export interface Measured<T> {
  result: T;
  /** The largest growth of this process's resident memory over its size before the attack, in MB. */
  rssGrowthMb: number;
  /** How many `/healthz` answers came while the attack ran (each one 200: any other answer fails the attack). */
  healthzAnswers: number;
  /**
   * The slowest of them, in ms: for the record only, never asserted (it
   * measures the machine, and whatever else runs on it, as much as plangate).
   */
  slowestHealthzMs: number;
}

const MB = 1024 * 1024;

function healthz(url: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get(`${url}/healthz`, (res) => {
        res.resume();
        res.on("end", () => (res.statusCode === 200 ? resolve(performance.now() - started) : reject(new Error(`/healthz answered ${res.statusCode}`))));
      })
      .on("error", reject);
  });
}

/**
 * Runs `attack` against plangate at `url` (running in this process) while
 * sampling this process's memory and asking `/healthz` again and again:
 * what a user of a shared plangate would notice while it runs. A `/healthz`
 * that fails, or answers other than 200, fails the attack.
 */
export async function underAttack<T>(url: string, attack: () => Promise<T>): Promise<Measured<T>> {
  global.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  let done = false;
  let slowest = 0;
  let answers = 0;
  const poller = (async () => {
    while (!done) {
      slowest = Math.max(slowest, await healthz(url));
      answers++;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  try {
    const result = await attack();
    return { result, rssGrowthMb: Math.round((Math.max(peak, process.memoryUsage().rss) - baseline) / MB), slowestHealthzMs: Math.round(slowest), healthzAnswers: answers };
  } finally {
    done = true;
    clearInterval(sampler);
    await poller;
  }
}
