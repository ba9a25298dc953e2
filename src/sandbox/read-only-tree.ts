import { execute } from "./exec.js";

/**
 * Makes a folder tree root's and unwritable (links are neither followed nor
 * changed), so that a published cache stays as it was published even where a
 * bind mount does not cover it: the sandbox runs as nobody.
 */
export async function makeReadOnlyTree(dir: string, what: string): Promise<void> {
  for (const argv of [["chown", "-R", "-P", "0:0", dir], ["chmod", "-R", "a-w", dir]]) {
    const result = await execute({ argv, cwd: "/", env: { PATH: "/usr/bin:/bin" }, timeoutMs: 300_000 });
    if (result.exitCode !== 0) throw new Error(`${argv[0]} of ${what} failed: ${result.output.trim()}`);
  }
}
