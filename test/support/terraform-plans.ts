import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
  return realPlan(after, before).planJson;
}

/**
 * Real `terraform show -json` and the saved plan file of `after` (as
 * realPlanJson), planned in a fresh directory under `parent` (default: the
 * system's temporary directory); `files` are extra files (path: content).
 */
export function realPlan(after: string, before?: string, options: { parent?: string; files?: Record<string, string> } = {}): { planJson: unknown; planFile: Buffer } {
  const dir = mkdtempSync(path.join(options.parent ?? os.tmpdir(), "plangate-tfplan-"));
  try {
    for (const [name, content] of Object.entries(options.files ?? {})) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      writeFileSync(path.join(dir, name), content);
    }
    writeFileSync(path.join(dir, "none.tfrc"), "");
    if (before !== undefined) {
      writeFileSync(path.join(dir, "main.tf"), before);
      tf(dir, "init", "-input=false", "-no-color");
      tf(dir, "apply", "-auto-approve", "-input=false", "-no-color");
    }
    writeFileSync(path.join(dir, "main.tf"), after);
    if (before === undefined) tf(dir, "init", "-input=false", "-no-color");
    tf(dir, "plan", "-input=false", "-no-color", "-out=tfplan");
    return { planJson: JSON.parse(tf(dir, "show", "-json", "tfplan")), planFile: readFileSync(path.join(dir, "tfplan")) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A project whose plan keeps terraform busy for a second or more, however
 * fast or loaded the machine (300,000 numbers evaluated), with a one-line
 * plan: one terraform_data to add.
 */
export const slowProject = (value: string) =>
  `locals {\n  busy = length(flatten([for i in range(300) : [for j in range(1000) : i * j]]))\n}\nresource "terraform_data" "r" {\n  input = "${value}-\${local.busy}"\n}\n`;
