// Parse + render + split of a 10,000-resource plan (made by real terraform with `count`):
// wall time and peak RSS, in a fresh process. Run: npm run bench:render
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const COUNT = Number(process.env.BENCH_RESOURCES ?? 10_000);
const planFile = path.join(os.tmpdir(), `plangate-bench-plan-${COUNT}.json`);

if (process.argv[2] === "measure") {
  const { parsePlanChanges } = await import("../dist/plans/changes.js");
  const { renderPlanComment } = await import("../dist/render/plan-comment.js");
  const { loadTemplates } = await import("../dist/render/templates.js");
  const templates = await loadTemplates();
  const text = readFileSync(planFile, "utf8");
  const started = performance.now();
  const changes = parsePlanChanges(JSON.parse(text));
  const parts = renderPlanComment(templates, { repo: "o/r", sha: "f".repeat(40), projects: [{ name: "big", workspace: "default", status: "succeeded", changes }] }, { maxParts: 1000 });
  const ms = performance.now() - started;
  console.log(JSON.stringify({ resources: changes.resources.length, planJsonMB: +(text.length / 1e6).toFixed(1), parts: parts.length, largestPart: Math.max(...parts.map((p) => p.length)), parseRenderSplitMs: Math.round(ms), peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024) }));
  process.exit(0);
}

if (!existsSync(planFile)) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-bench-render-"));
  writeFileSync(path.join(dir, "none.tfrc"), "");
  writeFileSync(path.join(dir, "main.tf"), `resource "terraform_data" "r" {\n  count = ${COUNT}\n  input = { index = count.index, name = "resource-\${count.index}", tags = { team = "infra", env = "prod" } }\n}\n`);
  const env = { PATH: process.env.PATH, HOME: dir, TF_CLI_CONFIG_FILE: path.join(dir, "none.tfrc"), TF_IN_AUTOMATION: "1" };
  execFileSync("terraform", ["init", "-input=false"], { cwd: dir, env, stdio: "ignore" });
  execFileSync("terraform", ["plan", "-input=false", "-out=tfplan"], { cwd: dir, env, stdio: "ignore", maxBuffer: 1 << 30 });
  writeFileSync(planFile, execFileSync("terraform", ["show", "-json", "tfplan"], { cwd: dir, env, maxBuffer: 1 << 30 }));
}
const runs = [];
for (let i = 0; i < 5; i++) {
  const out = spawnSync(process.execPath, [new URL(import.meta.url).pathname, "measure"], { encoding: "utf8" });
  if (out.status !== 0) throw new Error(out.stderr);
  runs.push(JSON.parse(out.stdout));
}
runs.sort((a, b) => a.parseRenderSplitMs - b.parseRenderSplitMs);
console.log(JSON.stringify({ median: runs[2], runs: runs.map((r) => [r.parseRenderSplitMs, r.peakRssMB]) }, null, 2));
