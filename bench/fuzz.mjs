// Fuzz: fast-check properties over the comment-command parser and the .plangate.yml loader,
// 100,000 generated cases each: a typed result every time, never a throw, a hang or a
// malformed result. All cases run (failures are tallied by kind, not stopped at), then each
// kind of failure is found again from the same seed and shrunk to a minimal counterexample.
// Each property runs in a worker thread with a 1 MB stack (about the main thread's) that a
// watchdog ends when one case takes longer than FUZZ_HANG_SECONDS; a case over 1 s is a failure.
// Run: npm run bench:fuzz   Replay: FUZZ_SEED=<seed printed> npm run bench:fuzz   Fewer: FUZZ_RUNS=1000
// One property: FUZZ_ONLY=<part of its name>. Shrinking one kind of failure stops after 60 s.
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import fc from "fast-check";

const MODULES = ["./fuzz/comment.mjs", "./fuzz/config.mjs"];
const RUNS = Number(process.env.FUZZ_RUNS ?? 100_000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const HANG_MS = Number(process.env.FUZZ_HANG_SECONDS ?? 60) * 1000;
const SLOW_MS = 1000;
const JOBS = Number(process.env.FUZZ_JOBS ?? 2);
const ONLY = process.env.FUZZ_ONLY ?? "";
const SHRINK_MS = 60_000;
const SNAPSHOT_BYTES = 1 << 20;

/** The kind of failure `input` causes, or undefined; `outcome` is the kind of result, for coverage. */
function classify(property, input) {
  const started = performance.now();
  try {
    const { outcome, violation } = property.run(input);
    const ms = performance.now() - started;
    return { outcome, ms, failure: violation ? `returns: ${violation}` : ms > SLOW_MS ? `takes over ${SLOW_MS / 1000} s` : undefined };
  } catch (error) {
    // The kind is the message without what follows its first ":" or ")" (anchor names, positions).
    const message = String(error?.message ?? error).split("\n")[0].replace(/:.*/, "").replace(/\).*/, ")");
    return { outcome: "throws", ms: performance.now() - started, failure: `throws ${error?.constructor?.name ?? typeof error}: ${message}` };
  }
}

async function fuzzInWorker({ module, index, runs, seed, shared }) {
  const property = (await import(module)).properties[index];
  // yaml reports each collection-valued key with process.emitWarning; count them instead of printing thousands.
  let warnings = 0;
  process.emitWarning = () => void warnings++;
  if (property.probe) {
    const started = performance.now();
    const result = property.probe();
    return { name: property.name, seconds: Math.round((performance.now() - started) / 100) / 10, slowest: { ms: 0, chars: 0 }, ...result };
  }
  const beat = new Int32Array(shared, 0, 2);
  const snapshot = new Uint8Array(shared, 8);
  const encoder = new TextEncoder();
  const watched = (input) => {
    Atomics.store(beat, 1, encoder.encodeInto(property.text(input), snapshot).written);
    Atomics.add(beat, 0, 1);
  };
  const outcomes = {};
  const kinds = new Map();
  let slowest = { ms: 0, chars: 0 };
  const started = performance.now();
  fc.assert(
    fc.property(property.arbitrary, (input) => {
      watched(input);
      const { outcome, failure, ms } = classify(property, input);
      if (ms > slowest.ms) slowest = { ms: Math.round(ms * 10) / 10, chars: property.text(input).length };
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      if (failure) kinds.set(failure, (kinds.get(failure) ?? 0) + 1);
    }),
    { numRuns: runs, seed },
  );
  const seconds = (performance.now() - started) / 1000;
  console.log(`${property.name}: ${runs} cases run in ${Math.round(seconds)} s; ${JSON.stringify(outcomes)}; ${kinds.size ? `shrinking ${JSON.stringify([...kinds])}` : "no failure"}`);
  const failures = [...kinds].map(([kind, count]) => {
    const found = fc.check(
      fc.property(property.arbitrary, (input) => {
        watched(input);
        return classify(property, input).failure !== kind;
      }),
      { numRuns: runs, seed, interruptAfterTimeLimit: SHRINK_MS, markInterruptAsFailure: false },
    );
    const minimal = found.failed ? property.text(found.counterexample[0]) : undefined;
    return { kind, count, minimal, shrinks: found.numShrinks };
  });
  return { name: property.name, cases: runs, seconds: Math.round(seconds * 10) / 10, outcomes, slowest, failures, warnings };
}

function runWorker(module, index) {
  const shared = new SharedArrayBuffer(8 + SNAPSHOT_BYTES);
  const beat = new Int32Array(shared, 0, 2);
  const worker = new Worker(new URL(import.meta.url), { workerData: { module, index, runs: RUNS, seed: SEED, shared }, resourceLimits: { stackSizeMb: 1 } });
  return new Promise((resolve, reject) => {
    let last = -1;
    let since = Date.now();
    const watchdog = setInterval(() => {
      const now = Atomics.load(beat, 0);
      if (now !== last) return void ((last = now), (since = Date.now()));
      if (Date.now() - since < HANG_MS) return;
      clearInterval(watchdog);
      const input = new TextDecoder().decode(new Uint8Array(shared, 8, Atomics.load(beat, 1)).slice());
      void worker.terminate();
      resolve({ name: `${module}#${index}`, cases: now, hung: { afterCases: now, input } });
    }, 1000);
    worker.once("message", (result) => (clearInterval(watchdog), resolve(result)));
    worker.once("error", (error) => (clearInterval(watchdog), reject(error)));
  });
}

if (!isMainThread) {
  parentPort.postMessage(await fuzzInWorker(workerData));
} else {
  console.log(`fuzz: ${RUNS} cases per property, seed ${SEED}, Node ${process.version}`);
  const started = performance.now();
  const queue = [];
  for (const module of MODULES) {
    const count = (await import(module)).properties.length;
    for (let index = 0; index < count; index++) if ((await import(module)).properties[index].name.includes(ONLY)) queue.push([module, index]);
  }
  const results = [];
  const report = (result) => {
    results.push(result);
    const failures = result.hung ? 1 : result.failures.length;
    console.log(`\n${result.name}: ${result.cases} cases in ${result.seconds ?? "-"} s, ${failures ? `${failures} kind(s) of failure` : "no failure"}`);
    if (result.outcomes) console.log(`  results: ${JSON.stringify(result.outcomes)}; slowest case ${result.slowest.ms} ms (${result.slowest.chars} chars); process warnings ${result.warnings ?? 0}`);
    if (result.hung) console.log(`  HANG: one case ran over ${HANG_MS / 1000} s; input: ${JSON.stringify(result.hung.input.slice(0, 2000))}`);
    for (const f of result.failures ?? []) console.log(`  FAIL ${f.kind} — ${f.count} of ${result.cases} cases; minimal (${f.shrinks} shrinks): ${JSON.stringify(f.minimal?.slice(0, 1000))}`);
  };
  await Promise.all(Array.from({ length: JOBS }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) report(await runWorker(...next));
  }));
  console.log(`\nwall time ${Math.round((performance.now() - started) / 1000)} s with ${JOBS} workers`);
  console.log(`\n${JSON.stringify({ seed: SEED, runs: RUNS, results })}`);
  process.exitCode = results.some((r) => r.hung || r.failures.length) ? 1 : 0;
}
