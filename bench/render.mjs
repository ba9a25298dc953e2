// Parse + render + split of a 10,000-resource plan made by real terraform (300 destroys,
// 200 replaces, 4,500 updates, 5,000 creates): wall time and peak RSS in a fresh process,
// laid out in PLANGATE_MAX_COMMENTS' default of 3 parts, and with no part limit.
// Run: npm run bench:render
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const MIX = { destroy: 300, replace: 200, update: 4500, create: 5000 };
const planFile = path.join(os.tmpdir(), `plangate-bench-plan-mix-${Object.values(MIX).join("-")}.json`);

if (process.argv[2] === "measure") {
  const maxParts = Number(process.argv[3]);
  const { parsePlanChanges } = await import("../dist/plans/changes.js");
  const { renderPlanComment } = await import("../dist/render/plan-comment.js");
  const { loadTemplates } = await import("../dist/render/templates.js");
  const templates = await loadTemplates();
  const text = readFileSync(planFile, "utf8");
  const started = performance.now();
  const changes = parsePlanChanges(JSON.parse(text));
  const report = { repo: "o/r", sha: "f".repeat(40), runUrl: "https://plangate.example.com/runs/1", projects: [{ name: "big", workspace: "default", status: "succeeded", changes }] };
  const parts = renderPlanComment(templates, report, { maxParts });
  const ms = performance.now() - started;
  const body = parts.join("\n");
  const destructive = changes.resources.filter((r) => r.action === "delete" || r.action === "replace");
  console.log(
    JSON.stringify({
      maxParts,
      resources: changes.resources.length,
      planJsonMB: +(text.length / 1e6).toFixed(1),
      parts: parts.length,
      largestPart: Math.max(...parts.map((p) => p.length)),
      diffs: (body.match(/^```diff$/gm) ?? []).length,
      destroyedOrReplacedVisible: `${destructive.filter((r) => body.includes(`\`${r.address}\``)).length}/${destructive.length}`,
      parseRenderSplitMs: Math.round(ms),
      peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    }),
  );
  process.exit(0);
}

if (!existsSync(planFile)) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-bench-render-"));
  const env = { PATH: process.env.PATH, HOME: dir, TF_CLI_CONFIG_FILE: path.join(dir, "none.tfrc"), TF_IN_AUTOMATION: "1" };
  const tf = (...args) => execFileSync("terraform", args, { cwd: dir, env, maxBuffer: 1 << 30, stdio: ["ignore", "pipe", "inherit"] });
  const note = "x".repeat(400);
  const block = (name, count, version, extra = "") =>
    `resource "terraform_data" "${name}" {\n  count = ${count}\n  input = { index = count.index, name = "${name}-\${count.index}", version = "${version}", note = "${note}", tags = { team = "infra", env = "prod", cost_center = "cc-\${count.index % 17}" } }\n${extra}}\n`;
  writeFileSync(path.join(dir, "none.tfrc"), "");
  writeFileSync(path.join(dir, "main.tf"), [block("doomed", MIX.destroy, "v1"), block("replaced", MIX.replace, "v1", '  triggers_replace = ["v1"]\n'), block("updated", MIX.update, "v1")].join("\n"));
  tf("init", "-input=false");
  tf("apply", "-auto-approve", "-input=false", "-parallelism=64");
  writeFileSync(path.join(dir, "main.tf"), [block("replaced", MIX.replace, "v1", '  triggers_replace = ["v2"]\n'), block("updated", MIX.update, "v2"), block("created", MIX.create, "v1")].join("\n"));
  tf("plan", "-input=false", "-refresh=false", "-out=tfplan");
  writeFileSync(planFile, tf("show", "-json", "tfplan"));
  rmSync(dir, { recursive: true, force: true });
}
const median = (maxParts) => {
  const runs = [];
  for (let i = 0; i < 5; i++) {
    const out = spawnSync(process.execPath, [new URL(import.meta.url).pathname, "measure", String(maxParts)], { encoding: "utf8" });
    if (out.status !== 0) throw new Error(out.stderr);
    runs.push(JSON.parse(out.stdout));
  }
  runs.sort((a, b) => a.parseRenderSplitMs - b.parseRenderSplitMs);
  return { median: runs[2], runs: runs.map((r) => [r.parseRenderSplitMs, r.peakRssMB]) };
};
console.log(JSON.stringify({ "3 parts (PLANGATE_MAX_COMMENTS default)": median(3), "no part limit": median(1000) }, null, 2));
