/**
 * Jest's Node environment, and one thing more: a Jest worker's process ends
 * as soon as it exits. Left to itself, Node tears a worker's heap down before
 * the process ends; after a few dozen of our files (each loads the app afresh
 * in a VM context) that heap is ~1 GB, and its teardown took 0.6–0.7 s on this
 * machine: past the 0.5 s Jest waits before it kills the worker and prints
 * "a worker process has failed to exit gracefully". process.exit from the
 * exit event skips the teardown (the kernel takes the memory back), as any
 * process.exit does. A handle left open still keeps the worker alive (no exit
 * event comes), and Jest still says so.
 */
import { TestEnvironment } from "jest-environment-node";

let hooked = false;

export default class PlangateEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    if (hooked) return;
    hooked = true;
    // This module runs in the worker itself, outside the tests' VM contexts: this is the worker's process.
    process.once("exit", (code) => process.exit(code));
  }
}
