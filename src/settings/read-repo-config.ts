import { tracingChannel } from "node:diagnostics_channel";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { loadRepoConfig, type ConfigResult } from "./load-repo-config.js";
import type { EngineNames } from "./repo-config.js";

/** A config at most this long is read on the calling thread (well under 50 ms); a longer one on a thread of its own. */
export const INLINE_CONFIG_BYTES = 64 * 1024;
/**
 * Heap a config's thread may use (YAML's document model takes ~100 bytes per
 * byte of a file of many small keys); a config that needs more is refused.
 */
const THREAD_HEAP_MB = 768;

/**
 * The thread's script: beside this module in the build; when the TypeScript
 * sources run directly (the tests), the build's copy, which `npm test` makes
 * first (bin/ensure-build.js). Without either, configs are read inline.
 */
function threadScript(): URL | undefined {
  for (const candidate of ["./config-thread.js", "../../dist/settings/config-thread.js"]) {
    const url = new URL(candidate, import.meta.url);
    if (existsSync(fileURLToPath(url))) return url;
  }
  return undefined;
}

/** Large configs are read one at a time: a burst of them costs one thread's heap, not one each. */
let queue: Promise<unknown> = Promise.resolve();

function onThread(script: URL, text: string, engines: EngineNames): Promise<ConfigResult> {
  return new Promise((resolve) => {
    const worker = new Worker(script, { resourceLimits: { maxOldGenerationSizeMb: THREAD_HEAP_MB } });
    let answered = false;
    const answer = (result: ConfigResult) => {
      if (answered) return;
      answered = true;
      void worker.terminate();
      resolve(result);
    };
    worker.once("message", answer);
    // Out of heap (ERR_WORKER_OUT_OF_MEMORY) or any other end before an answer: the file is what is wrong.
    worker.once("error", (error) => answer(refused(`cannot be read: ${error.message}`)));
    worker.once("exit", (code) => answer(refused(`cannot be read (its reader exited with code ${code})`)));
    worker.postMessage({ text, engines });
  });
}

const refused = (message: string): ConfigResult => ({ ok: false, problems: [{ line: 1, column: 1, message }] });

/**
 * Each config read, for whoever subscribes (Node's diagnostics_channel; free
 * when nobody does): `start` when a read begins, `asyncEnd` when its result
 * is in, both with `{ bytes }`. A test watches it to see the process answer
 * while a large config is read.
 */
export const configReads = tracingChannel<object, { bytes: number }>("plangate:read-repo-config");

/**
 * loadRepoConfig, kept off the process's main thread for a large file (YAML
 * parsing takes seconds for a few megabytes, during which nothing else, not
 * even /healthz, would be answered). Never throws for bad input.
 */
export function readRepoConfig(text: string, engines: EngineNames, script = threadScript()): Promise<ConfigResult> {
  return configReads.tracePromise(() => read(text, engines, script), { bytes: text.length });
}

function read(text: string, engines: EngineNames, script: URL | undefined): Promise<ConfigResult> {
  if (text.length <= INLINE_CONFIG_BYTES || !script) return Promise.resolve().then(() => loadRepoConfig(text, engines));
  const result = queue.then(() => onThread(script, text, engines));
  queue = result.catch(() => undefined);
  return result;
}
