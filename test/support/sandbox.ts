import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { bwrapWorks } from "../../src/sandbox/sandbox.js";
import { toolTest } from "./app-harness.js";

const usable = bwrapWorks();

/** A test that needs bubblewrap: in CI its absence fails it, elsewhere it says loudly that it did not run. */
export const sandboxTest: typeof test = ((name: string, fn: jest.ProvidesCallback, timeout?: number) => toolTest(usable, "bubblewrap", name, fn, timeout)) as typeof test;

/**
 * A maker of private workspaces the sandbox's unprivileged user can enter
 * (mode 0755), all removed after the test file's tests.
 */
export function workspaces(prefix: string): () => string {
  const made: string[] = [];
  afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
  return () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    chmodSync(dir, 0o755);
    made.push(dir);
    return dir;
  };
}

/** A workspace inside a folder of its own, as a run's is: the capture of its output goes beside it. */
export function nestedWorkspace(workspace: () => string): string {
  const work = path.join(workspace(), "checkout");
  mkdirSync(work);
  chmodSync(work, 0o755);
  return work;
}
