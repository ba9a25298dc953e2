// Parse + render + split of a 10,000-resource plan made by real terraform (300 destroys,
// 200 replaces, 4,500 updates, 5,000 creates): wall time and peak RSS in a fresh process,
// laid out in PLANGATE_MAX_COMMENTS' default of 3 parts, and with no part limit.
// Then (`projects` cases) the comment of a PR of 500 and of 2,000 projects, shaped as bench/scale.ts's
// (each project: 5 terraform_data updates and 3 of a shared module's), rendered warm in one process as
// the render thread renders it: median and fastest of 15 renders after 3.
// Run: npm run bench:render (BENCH_RENDER=projects: the projects cases only)
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

if (process.argv[2] === "projects") {
  const n = Number(process.argv[3]);
  const { countChanges } = await import("../dist/plans/changes.js");
  const { renderPlanComment } = await import("../dist/render/plan-comment.js");
  const { loadTemplates } = await import("../dist/render/templates.js");
  const templates = await loadTemplates();
  const change = (address, i, k) => ({ address, type: "terraform_data", action: "update", actions: ["update"], before: { input: `p${i}-r0-${k}-common-v0` }, after: { input: `p${i}-r0-${k}-common-v1` } });
  const projects = Array.from({ length: n }, (_, i) => {
    const resources = [...Array.from({ length: 5 }, (_, k) => change(`terraform_data.r[${k}]`, i, k)), ...Array.from({ length: 3 }, (_, k) => change(`module.common.terraform_data.c[${k}]`, i, k))];
    return { name: `projects/p${i}`, workspace: "default", status: "succeeded", changes: { resources, counts: countChanges(resources) } };
  });
  const report = { repo: "o/r", sha: "f".repeat(40), runUrl: "https://plangate.example.com/runs/1", applyModes: ["on_merge"], projects };
  for (let i = 0; i < 3; i++) renderPlanComment(templates, report, { maxParts: 3 });
  const times = [];
  let parts;
  for (let i = 0; i < 15; i++) {
    const started = performance.now();
    parts = renderPlanComment(templates, report, { maxParts: 3 });
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({ projects: n, parts: parts.length, largestPart: Math.max(...parts.map((p) => p.length)), renderMedianMs: +times[7].toFixed(1), renderMinMs: +times[0].toFixed(1) }));
  process.exit(0);
}

const projectsCase = (n) => {
  const out = spawnSync(process.execPath, [new URL(import.meta.url).pathname, "projects", String(n)], { encoding: "utf8" });
  if (out.status !== 0) throw new Error(out.stderr);
  return JSON.parse(out.stdout);
};
const projectCases = { "500 projects, 3 parts": projectsCase(500), "2,000 projects, 3 parts": projectsCase(2000) };
if (process.env.BENCH_RENDER === "projects") {
  console.log(JSON.stringify(projectCases, null, 2));
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
console.log(JSON.stringify({ "3 parts (PLANGATE_MAX_COMMENTS default)": median(3), "no part limit": median(1000), ...projectCases }, null, 2));
