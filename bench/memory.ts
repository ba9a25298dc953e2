// Memory of plangate's own processes (terraform's apart), from /proc:
//  (a) a server-only process (`plangate start`, PLANGATE_WORKERS=0) idle, then
//      after a burst of signed pull_request deliveries;
//  (b) a worker process (`plangate worker`) planning, rendering and storing a
//      real 10,000-resource plan (300 destroys, 200 replaces, 4,500 updates,
//      5,000 creates, nested inputs: bench/render.mjs's mix) made by real
//      terraform in the bubblewrap sandbox against a pg state backend.
// Goals (issue 11): worker peak < 500 MB RSS, idle server < 150 MB.
// Run: DATABASE_URL=postgres://root@127.0.0.1:5432/test npm run bench:memory
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { GitRepo } from "../test/support/git-repo.js";
import { deliver, examplePayload } from "../test/support/webhooks.js";
import { WEBHOOK_SECRET } from "../test/support/app-harness.js";
import { deployment, mb, memoryOf, sampler, sleep, startProcess } from "./processes.js";

const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 20);
const DELIVERIES = Number(process.env.BENCH_DELIVERIES ?? 2000);
const MIX = { destroy: 300, replace: 200, update: 4500, create: 5000 };
const REPO = "Codertocat/Hello-World";

async function serverPhase() {
  const d = await deployment();
  try {
    const server = await startProcess(d, "start", { PLANGATE_WORKERS: "0" });
    await sleep(3000); // start-up garbage settles
    let s = sampler(server.pid, 250);
    await sleep(IDLE_SECONDS * 1000);
    const idle = s.stop();

    // A burst of real, signed deliveries (10 at a time), each recorded and enqueued.
    const payload = examplePayload("pull_request", "opened");
    s = sampler(server.pid, 100);
    const started = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 10 }, async () => {
      while (next < DELIVERIES) {
        const i = next++;
        Object.assign(payload.pull_request, { number: 1 + (i % 200), draft: false });
        const res = await deliver(server.url!, "pull_request", payload, WEBHOOK_SECRET, randomUUID());
        if (res.status !== 200) throw new Error(`delivery answered ${res.status}: ${res.text}`);
      }
    }));
    const burstSeconds = (performance.now() - started) / 1000;
    const during = s.stop();
    s = sampler(server.pid, 250);
    await sleep(IDLE_SECONDS * 1000);
    const after = s.stop();
    const { rows } = await d.db.pool.query<{ n: number }>("select count(*)::int as n from webhook_deliveries");
    return {
      idleMB: { max: mb(idle.maxMB), last: mb(idle.lastMB), seconds: IDLE_SECONDS },
      burst: { deliveries: DELIVERIES, recorded: rows[0]!.n, seconds: +burstSeconds.toFixed(1), maxMB: mb(during.maxMB) },
      idleAfterBurstMB: { max: mb(after.maxMB), last: mb(after.lastMB), seconds: IDLE_SECONDS },
      peakMB: mb(memoryOf(server.pid).hwmMB),
    };
  } finally {
    await d.close();
  }
}

const note = "x".repeat(400);
const block = (name: string, count: number, version: string, extra = "") =>
  `resource "terraform_data" "${name}" {\n  count = ${count}\n  input = { index = count.index, name = "${name}-\${count.index}", version = "${version}", note = "${note}", tags = { team = "infra", env = "prod", cost_center = "cc-\${count.index % 17}" } }\n${extra}}\n`;
const before = [block("doomed", MIX.destroy, "v1"), block("replaced", MIX.replace, "v1", '  triggers_replace = ["v1"]\n'), block("updated", MIX.update, "v1")].join("\n");
const after = [block("replaced", MIX.replace, "v1", '  triggers_replace = ["v2"]\n'), block("updated", MIX.update, "v2"), block("created", MIX.create, "v1")].join("\n");

async function workerPhase() {
  const d = await deployment();
  try {
    const backend = `terraform {\n  backend "pg" {\n    conn_str    = "${d.db.url}?sslmode=disable"\n    schema_name = "bench_memory"\n  }\n}\n`;
    // The state the PR plans against: applied once by bare terraform.
    const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-bench-memory-"));
    const tfEnv = { PATH: process.env.PATH, HOME: dir, TF_CLI_CONFIG_FILE: path.join(dir, "none.tfrc"), TF_IN_AUTOMATION: "1" };
    writeFileSync(path.join(dir, "none.tfrc"), "");
    writeFileSync(path.join(dir, "backend.tf"), backend);
    writeFileSync(path.join(dir, "main.tf"), before);
    const applyStarted = performance.now();
    for (const args of [["init", "-input=false"], ["apply", "-auto-approve", "-input=false", "-parallelism=64"]]) {
      execFileSync("terraform", args, { cwd: dir, env: tfEnv, stdio: ["ignore", "ignore", "inherit"] });
    }
    console.error(`state of ${MIX.destroy + MIX.replace + MIX.update} resources applied in ${((performance.now() - applyStarted) / 1000).toFixed(1)} s`);
    rmSync(dir, { recursive: true, force: true });

    const repo = new GitRepo(d.fake.gitRoot, "Codertocat", "Hello-World");
    repo.commit({ "infra/backend.tf": backend, "infra/main.tf": before });
    const sha = repo.commit({ "infra/main.tf": after }, "big");
    d.fake.pullFiles.set(`${REPO}#1`, ["infra/main.tf"]);
    d.fake.pulls.set(`${REPO}#1`, { headSha: sha });

    const server = await startProcess(d, "start", { PLANGATE_WORKERS: "0" });
    const worker = await startProcess(d, "worker", { PLANGATE_WORKERS: "1" });
    await sleep(5000); // the worker is up and polling
    const baseline = memoryOf(worker.pid);
    const s = sampler(worker.pid, 100, true);
    const payload = examplePayload("pull_request", "opened");
    Object.assign(payload.pull_request, { number: 1, draft: false });
    payload.pull_request.head.sha = sha;
    const started = performance.now();
    const res = await deliver(server.url!, "pull_request", payload, WEBHOOK_SECRET);
    if (res.status !== 200) throw new Error(`delivery answered ${res.status}`);
    for (;;) {
      if (d.fake.checkRuns.some((c) => c.head_sha === sha && c.name === "plangate/plan" && c.status === "completed")) break;
      if (performance.now() - started > 900_000) throw new Error("no completed plangate/plan within 15 minutes");
      if (worker.child.exitCode !== null) throw new Error(`the worker exited (${worker.child.exitCode})`);
      await sleep(200);
    }
    const seconds = (performance.now() - started) / 1000;
    await sleep(3000);
    const sampled = s.stop();
    const peak = memoryOf(worker.pid);
    const { rows } = await d.db.pool.query(
      `select r.status, r.summary, length(p.changes::text) as changes_chars, length(p.plan_file) as plan_file_bytes
         from runs r left join plans p on p.run_id = r.id where r.sha = $1`,
      [sha],
    );
    const comments = d.fake.commentsOn(REPO, 1);
    if (d.fake.unexpected.length) throw new Error(`unexpected GitHub requests: ${d.fake.unexpected.join("; ")}`);
    return {
      plan: { resources: MIX.destroy + MIX.replace + MIX.update + MIX.create, webhookToCheckSeconds: +seconds.toFixed(1), run: rows[0], commentParts: comments.length, largestPart: Math.max(...comments.map((c) => c.body.length)) },
      workerMB: { beforeJob: mb(baseline.rssMB), peakVmHWM: mb(peak.hwmMB), sampledMax: mb(sampled.maxMB), afterJob: mb(peak.rssMB), samples: sampled.samples },
      largestChildMB: { rss: mb(sampled.maxChildMB), command: sampled.maxChildComm },
    };
  } finally {
    await d.close();
  }
}

async function main() {
  if (!process.env.DATABASE_URL) throw new Error("set DATABASE_URL to a PostgreSQL the bench may create databases in");
  const server = await serverPhase();
  console.error(JSON.stringify({ server }));
  const worker = await workerPhase();
  console.log(JSON.stringify({
    node: process.version,
    server,
    worker,
    goals: { idleServerUnder150MB: server.idleMB.max < 150 && server.idleAfterBurstMB.max < 150, workerPeakUnder500MB: worker.workerMB.peakVmHWM < 500 },
  }, null, 2));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
