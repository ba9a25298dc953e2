import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { jest } from "@jest/globals";
import { cdktfSynth } from "../../src/engines/cdktf.js";
import { Sandbox } from "../../src/sandbox/sandbox.js";
import { engineTest } from "../support/app-harness.js";

jest.setTimeout(120_000);

const sandbox = new Sandbox("bwrap");

function checkout(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), "plangate-sec-run-"));
  chmodSync(root, 0o755);
  const checkoutDir = path.join(root, "checkout");
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(checkoutDir, file)), { recursive: true });
    writeFileSync(path.join(checkoutDir, file), content);
  }
  return checkoutDir;
}

/** A plain node "cdktf program": runs `before`, then writes one stack and its manifest. */
const program = (before: string) => ({
  "app/cdktf.json": JSON.stringify({ app: "node main.js" }),
  "app/main.js": `const fs = require("node:fs"), path = require("node:path");
${before}
const out = process.env.CDKTF_OUTDIR;
fs.mkdirSync(path.join(out, "stacks", "web"), { recursive: true });
fs.writeFileSync(path.join(out, "stacks", "web", "cdk.tf.json"), "{}");
fs.writeFileSync(path.join(out, "manifest.json"), JSON.stringify({ stacks: { web: { name: "web", workingDirectory: "stacks/web", dependencies: [] } } }));
`,
});

const lockOf = (packages: Record<string, unknown>) => JSON.stringify({ name: "app", version: "1.0.0", lockfileVersion: 3, requires: true, packages: { "": { name: "app", version: "1.0.0" }, ...packages } });

describe("the cdktf dependency cache", () => {
  engineTest("a published dependency tree is root's and read-only: the program cannot write into what later runs execute", async () => {
    const depsCacheDir = mkdtempSync(path.join(os.tmpdir(), "plangate-sec-deps-"));
    // A lock file that pins registry packages only (here: none), so the tree is shared between runs.
    const files = {
      ...program('try { fs.writeFileSync("node_modules/planted.js", "module.exports = 1"); console.log("WROTE INTO THE CACHE"); } catch (e) { console.log("cache write refused: " + e.code); }'),
      "app/package.json": JSON.stringify({ name: "app", version: "1.0.0", private: true }),
      "app/package-lock.json": lockOf({}),
    };
    const first = await cdktfSynth({ sandbox, checkoutDir: checkout(files), projectDir: "app", env: {}, timeoutMs: 60_000, depsCacheDir });
    expect(first).toMatchObject({ ok: true, cachedDependencies: false });
    expect(first.ok && first.output).toContain("cache write refused: EROFS");
    expect(first.ok && first.output).not.toContain("WROTE INTO THE CACHE");

    const [published] = readdirSync(depsCacheDir);
    const modules = path.join(depsCacheDir, published!, "node_modules");
    expect(statSync(modules).uid).toBe(0);
    expect(statSync(modules).mode & 0o222).toBe(0);
    expect(existsSync(path.join(modules, "planted.js"))).toBe(false);

    const second = await cdktfSynth({ sandbox, checkoutDir: checkout(files), projectDir: "app", env: {}, timeoutMs: 60_000, depsCacheDir });
    expect(second).toMatchObject({ ok: true, cachedDependencies: true });
    expect(second.ok && second.output).toContain("cache write refused: EROFS");
  });

  engineTest("a file: dependency comes from the run's own checkout: installed privately, never shared through the cache", async () => {
    const depsCacheDir = mkdtempSync(path.join(os.tmpdir(), "plangate-sec-deps-"));
    const pr = (says: string) => ({
      ...program('console.log("lib says " + require("lib"));'),
      "app/package.json": JSON.stringify({ name: "app", version: "1.0.0", private: true, dependencies: { lib: "file:./lib" } }),
      "app/package-lock.json": lockOf({ lib: { version: "1.0.0" }, "node_modules/lib": { resolved: "lib", link: true } }),
      "app/lib/package.json": JSON.stringify({ name: "lib", version: "1.0.0", main: "index.js" }),
      "app/lib/index.js": `module.exports = ${JSON.stringify(says)};`,
    });
    for (const says of ["A", "B"]) {
      const checkoutDir = checkout(pr(says));
      const synth = await cdktfSynth({ sandbox, checkoutDir, projectDir: "app", env: {}, timeoutMs: 60_000, depsCacheDir });
      expect(synth).toMatchObject({ ok: true, cachedDependencies: false });
      expect(synth.ok && synth.output).toContain(`lib says ${says}`);
      expect(lstatSync(path.join(checkoutDir, "app/node_modules")).isDirectory()).toBe(true);
    }
    expect(readdirSync(depsCacheDir)).toEqual([]);
  });
});
