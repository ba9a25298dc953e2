import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const tf = (dir: string, ...args: string[]) =>
  execFileSync("terraform", args, {
    cwd: dir,
    encoding: "utf8",
    maxBuffer: 512 * 1024 * 1024,
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env.PATH, HOME: dir, TF_IN_AUTOMATION: "1", TF_CLI_CONFIG_FILE: path.join(dir, "none.tfrc") },
  });

/**
 * Real `terraform show -json` of the change from `before` to `after` (local
 * state, built-in terraform_data only): applies `before` when given, then plans `after`.
 */
export function realPlanJson(after: string, before?: string): unknown {
  const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-tfplan-"));
  try {
    writeFileSync(path.join(dir, "none.tfrc"), "");
    if (before !== undefined) {
      writeFileSync(path.join(dir, "main.tf"), before);
      tf(dir, "init", "-input=false", "-no-color");
      tf(dir, "apply", "-auto-approve", "-input=false", "-no-color");
    }
    writeFileSync(path.join(dir, "main.tf"), after);
    if (before === undefined) tf(dir, "init", "-input=false", "-no-color");
    tf(dir, "plan", "-input=false", "-no-color", "-out=tfplan");
    return JSON.parse(tf(dir, "show", "-json", "tfplan"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
