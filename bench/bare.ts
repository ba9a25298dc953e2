import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * Bare terraform in a fresh directory, as a person would run it: init, plan -out
 * and, with `show`, show -json of the plan. Seconds.
 */
export function bareTerraform(config: string, options: { show: boolean }): number {
  const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-bare-"));
  writeFileSync(path.join(dir, "main.tf"), config);
  writeFileSync(path.join(dir, "none.tfrc"), "");
  const env = { PATH: process.env.PATH, HOME: dir, TF_IN_AUTOMATION: "1", TF_CLI_CONFIG_FILE: path.join(dir, "none.tfrc") };
  const started = performance.now();
  execFileSync("terraform", ["init", "-input=false", "-no-color"], { cwd: dir, env, stdio: "ignore" });
  execFileSync("terraform", ["plan", "-input=false", "-no-color", "-out=tfplan"], { cwd: dir, env, stdio: "ignore" });
  if (options.show) execFileSync("terraform", ["show", "-json", "tfplan"], { cwd: dir, env, stdio: "ignore", maxBuffer: 1 << 30 });
  const seconds = (performance.now() - started) / 1000;
  rmSync(dir, { recursive: true, force: true });
  return seconds;
}
