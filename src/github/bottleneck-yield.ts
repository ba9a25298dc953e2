import { createRequire } from "node:module";

interface Store {
  Promise: PromiseConstructor;
  yieldLoop(t?: number): Promise<void>;
}

/**
 * Octokit's throttling and retry plugins queue every GitHub request through
 * Bottleneck, whose in-process store waits for a timer (setTimeout 0: at
 * least 1 ms) at each step of each limiter: ~5 ms per limiter, ~10 ms on
 * every request plangate makes (bench/history/e2e.md). Its steps yield with
 * setImmediate instead: the same order, without the timer's floor. Its waits
 * (the second between writes, a retry-after) still use timers. The plugins
 * load this same module, so the change reaches every limiter they make.
 */
export function yieldWithoutTimers(): void {
  const Bottleneck = createRequire(import.meta.url)("bottleneck/light.js") as new () => { _store: Store };
  const store = Object.getPrototypeOf(new Bottleneck()._store) as Store;
  if (typeof store.yieldLoop !== "function") throw new Error("Bottleneck's store has changed: plangate's yieldWithoutTimers needs a look");
  store.yieldLoop = function (this: Store, t = 0) {
    return new this.Promise<void>((resolve) => (t > 0 ? setTimeout(resolve, t) : setImmediate(resolve)));
  };
}
