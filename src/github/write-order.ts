import { AsyncLocalStorage } from "node:async_hooks";
import { createRequire } from "node:module";

/**
 * The order of plangate's GitHub writes. GitHub asks an integration to leave
 * a second between mutating requests, and Octokit's throttling plugin paces
 * them in the order they were asked. When pushes come a couple of seconds
 * apart, that order makes the new head's comment wait behind the old head's
 * check-run, label and approval writes, which nobody will look at. Here the
 * plugin's write limiter is given two things it lacks:
 * - a priority: a write made inside `writeFirst` (the plan comment) goes
 *   before writes already waiting;
 * - a condition: a write made inside `writeWhile(stillWanted, ...)` is asked
 *   again when its turn comes, and dropped with `DroppedWrite` when the
 *   answer is no (the PR has moved on).
 * The pacing itself, one write a second per App, is the plugin's own.
 */
interface WriteContext {
  first?: boolean;
  stillWanted?: () => Promise<boolean>;
}

const context = new AsyncLocalStorage<WriteContext>();

/** A write plangate no longer wanted when its turn came: nothing was sent to GitHub. */
export class DroppedWrite extends Error {
  constructor() {
    super("a GitHub write for a head the pull request has moved past was dropped");
    this.name = "DroppedWrite";
  }
}

/** Runs `fn` with its GitHub writes ahead of those already waiting. */
export function writeFirst<T>(fn: () => Promise<T>): Promise<T> {
  return context.run({ first: true }, fn);
}

/** Runs `fn` with each of its GitHub writes sent only if `stillWanted` says so when the write's turn comes. */
export function writeWhile<T>(stillWanted: () => Promise<boolean>, fn: () => Promise<T>): Promise<T> {
  return context.run({ stillWanted }, fn);
}

/** Bottleneck's priorities: 0 is the highest (the plugin's retries), 5 the default. */
const FIRST = 1;
const NORMAL = 5;

type JobOptions = { priority?: number; weight?: number; expiration?: number };
interface Limiter {
  schedule<T>(options: JobOptions, job: () => Promise<T>): Promise<T>;
  counts?(): { QUEUED: number };
}
interface Group {
  key(id: string): Limiter;
}
/** The write group, and how many writes wait for their turn (for /metrics and tests). */
export interface OrderedWrites extends Group {
  waiting(id: string): number;
}

/**
 * The throttling plugin's `write` group (its `throttle.write` option): one
 * write at a time, a second apart, as the plugin's own. Each write holds its
 * turn for that second after it is sent, so the next write is chosen when the
 * second is over, by priority, from the writes waiting then (the plugin's
 * `minTime` chooses it at once and only makes it wait). A dropped write gives
 * its turn back at once.
 */
export function orderedWrites(minTimeMs = 1000): OrderedWrites {
  const Bottleneck = createRequire(import.meta.url)("bottleneck/light.js") as { Group: new (options: object) => Group };
  const group = new Bottleneck.Group({ id: "plangate-write", maxConcurrent: 1, timeout: 120_000 });
  const paced = () => new Promise<void>((resolve) => setTimeout(resolve, minTimeMs).unref());
  return {
    waiting: (id: string) => group.key(id).counts!().QUEUED,
    key(id: string): Limiter {
      const limiter = group.key(id);
      return {
        schedule<T>(options: JobOptions, job: () => Promise<T>): Promise<T> {
          const asked = context.getStore();
          const priority = options.priority ?? (asked?.first ? FIRST : NORMAL);
          const wanted = asked?.stillWanted;
          return new Promise<T>((resolve, reject) => {
            const turn = async () => {
              try {
                if (wanted && !(await wanted())) throw new DroppedWrite();
                resolve(await job());
              } catch (error) {
                reject(error);
                return;
              }
              await paced();
            };
            // Asked before it queues too: a write nobody wants takes no turn.
            const queued = wanted ? wanted().then((yes) => (yes ? limiter.schedule({ ...options, priority }, turn) : reject(new DroppedWrite()))) : limiter.schedule({ ...options, priority }, turn);
            queued.catch(reject);
          });
        },
      };
    },
  };
}

interface RetryLimiter {
  schedule(...args: unknown[]): Promise<unknown>;
}

/**
 * The plugin's per-client retry limiter (its `throttle.retryLimiter` option),
 * whose jobs keep the context of the request that scheduled them: Bottleneck
 * may start a job from another job's turn, and the write limiter above must
 * see the context of the request it paces.
 */
export function retryLimiterKeepingOrder(): RetryLimiter {
  const Bottleneck = createRequire(import.meta.url)("bottleneck/light.js") as new () => RetryLimiter;
  const limiter = new Bottleneck();
  const schedule = limiter.schedule.bind(limiter);
  limiter.schedule = (...args: unknown[]) => schedule(...args.map((arg) => (typeof arg === "function" ? AsyncLocalStorage.bind(arg as (...a: unknown[]) => unknown) : arg)));
  return limiter;
}
