// End to end: seconds from a signed pull_request webhook to the plan comment on
// the (fake, HTTP-level) GitHub, against bare `terraform init && terraform plan`
// of the same directory. Run: npm run bench:e2e
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startHarness, waitFor, WEBHOOK_SECRET } from "../test/support/app-harness.js";
import { GitRepo } from "../test/support/git-repo.js";
import { deliver, examplePayload } from "../test/support/webhooks.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const config = (i: number) => `resource "terraform_data" "a" {\n  input = "round-${i}"\n}\nresource "terraform_data" "b" {\n  input = ["x", "y"]\n}\n`;

async function main() {
  const h = await startHarness({ PLANGATE_WORKERS: "2" });
  const repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "base" }); // the base branch, whose .plangate.yml (none) gives the rules
  const plangate: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const sha = repo.commit({ "infra/main.tf": config(i) }, "feature");
    h.fake.pullFiles.set("Codertocat/Hello-World#2", ["infra/main.tf"]);
    h.fake.pulls.set("Codertocat/Hello-World#2", { headSha: sha });
    const payload = examplePayload("pull_request", "synchronize");
    payload.pull_request.head.sha = sha;
    const started = performance.now();
    const t0 = Date.now();
    if (process.env.BENCH_TRACE) h.fake.requests.length = 0;
    await deliver(h.url, "pull_request", payload, WEBHOOK_SECRET);
    await waitFor("comment", () => h.fake.commentsOn("Codertocat/Hello-World", 2).some((c) => c.body.includes(sha.slice(0, 7))), 120_000);
    plangate.push((performance.now() - started) / 1000);
    // Pushes to one PR are not a second apart: let GitHub's write pacing (1 s per installation) settle.
    await new Promise((r) => setTimeout(r, Number(process.env.BENCH_PAUSE_MS ?? 2500)));
    if (process.env.BENCH_TRACE) console.log(h.fake.requests.map((r) => `+${r.at - t0} ${r.method} ${r.path.slice(0, 60)}`).join("\n"));
  }
  if (process.env.BENCH_TRACE) {
    const { rows } = await h.db.pool.query(`select g.id, d.received_at, g.created_at as group_at, r.created_at as run_at, r.started_at, r.finished_at, g.reported_at
      from run_groups g join runs r on r.group_id = g.id join webhook_deliveries d on d.id = g.trigger_id order by g.id`);
    for (const r of rows) console.log(r.id, ["group_at", "run_at", "started_at", "finished_at", "reported_at"].map((k) => `${k}=+${r[k] - r.received_at}ms`).join(" "));
  }
  await h.close();

  const bare: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), "plangate-bare-"));
    writeFileSync(path.join(dir, "main.tf"), config(i));
    writeFileSync(path.join(dir, "none.tfrc"), "");
    const env = { PATH: process.env.PATH, HOME: dir, TF_IN_AUTOMATION: "1", TF_CLI_CONFIG_FILE: path.join(dir, "none.tfrc") };
    const started = performance.now();
    execFileSync("terraform", ["init", "-input=false", "-no-color"], { cwd: dir, env, stdio: "ignore" });
    execFileSync("terraform", ["plan", "-input=false", "-no-color", "-out=tfplan"], { cwd: dir, env, stdio: "ignore" });
    bare.push((performance.now() - started) / 1000);
  }
  const warm = plangate.slice(1);
  console.log(JSON.stringify({
    rounds: ROUNDS,
    plangateSeconds: { cold: +plangate[0]!.toFixed(3), warmMedian: +median(warm).toFixed(3) },
    bareInitPlanSecondsMedian: +median(bare).toFixed(3),
    ratioWarm: +(median(warm) / median(bare)).toFixed(2),
  }, null, 2));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
