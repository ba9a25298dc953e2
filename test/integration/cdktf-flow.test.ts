import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { jest } from "@jest/globals";
import { closePullRequest, engineTest, queueDrained, startHarness, waitFor, WEBHOOK_SECRET, type Harness } from "../support/app-harness.js";
import { GitRepo } from "../support/git-repo.js";
import { asShown } from "../support/markdown.js";
import { deliver, examplePayload } from "../support/webhooks.js";

jest.setTimeout(300_000);

const REPO = "Codertocat/Hello-World";
const SECRET_VALUE = "super-secret-webhook-value";
let h: Harness;
let repo: GitRepo;
let pr = 100;

beforeAll(async () => {
  process.env.PLANGATE_TEST_SECRET_ENV = "not-allowlisted-value";
  h = await startHarness({ WEBHOOK_SECRET: SECRET_VALUE });
  repo = new GitRepo(h.fake.gitRoot, "Codertocat", "Hello-World");
  repo.commit({ "README.md": "root" });
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

function fixture(name: string, prefix: string): Record<string, string> {
  const dir = path.join("test/fixtures", name);
  return Object.fromEntries(readdirSync(dir).map((f) => [`${prefix}/${f}`, readFileSync(path.join(dir, f), "utf8")]));
}

async function openPr(files: Record<string, string>, changed: string[]) {
  const number = ++pr;
  const sha = repo.commit(files, `cdk-${number}`);
  h.fake.pullFiles.set(`${REPO}#${number}`, changed);
  h.fake.pulls.set(`${REPO}#${number}`, { headSha: sha });
  const payload = examplePayload("pull_request", "opened");
  Object.assign(payload.pull_request, { number, draft: false });
  payload.pull_request.head.sha = sha;
  expect((await deliver(h.url, "pull_request", payload, SECRET_VALUE)).status).toBe(200);
  const check = await waitFor("plangate/plan", () => h.fake.checkRuns.find((c) => c.head_sha === sha && c.status === "completed"), 240_000);
  await queueDrained(h.db);
  const body = asShown(h.fake.commentsOn(REPO, number).at(-1)?.body ?? "");
  const audit = (await h.db.pool.query("select action, project from audit_events where sha = $1 and action like 'plan.%' order by id", [sha])).rows;
  const runs = (await h.db.pool.query("select project, status, output from runs where sha = $1 order by id", [sha])).rows;
  await closePullRequest(h, number, sha); // frees the program's lock for the next test's PR
  return { sha, number, check, body, audit, runs };
}

describe("cdktf programs", () => {
  engineTest("a cdktf program with two stacks: both planned in dependency order, shown as NAME/STACK", async () => {
    const { check, body, audit, runs } = await openPr(fixture("cdktf-app", "app"), ["app/main.js"]);
    expect(check.conclusion).toBe("success");
    expect(body).toContain("| `app/base` | `default` | ✅ planned | 1 | 0 | 0 | 0 |");
    expect(body).toContain("| `app/web` | `default` | ✅ planned | 1 | 0 | 0 | 0 |");
    expect(body).not.toMatch(/\| `app` \|/);
    expect(body).toContain('+ input = "from-base"');
    expect(check.output?.summary).toContain("| `app/web` |");
    expect(audit).toEqual([
      { action: "plan.started", project: "app" },
      { action: "plan.started", project: "app/base" },
      { action: "plan.succeeded", project: "app/base" },
      { action: "plan.started", project: "app/web" },
      { action: "plan.succeeded", project: "app/web" },
    ]);
    // the first run installed the program's dependencies
    expect(runs[0].output).toMatch(/added \d+ packages/);
  });

  engineTest("the second run reuses the cached dependencies", async () => {
    const files = fixture("cdktf-app", "app");
    files["app/main.js"] += "\n// touched\n";
    const { check, runs } = await openPr(files, ["app/main.js"]);
    expect(check.conclusion).toBe("success");
    expect(runs.map((r) => [r.project, r.status])).toEqual([["app", "succeeded"], ["app/base", "succeeded"], ["app/web", "succeeded"]]);
    expect(runs[0].output).not.toMatch(/added \d+ packages/);
  });

  engineTest("the same program written with cdktn plans the same", async () => {
    const { check, body } = await openPr(fixture("cdktn-app", "svc"), ["svc/main.js"]);
    expect(check.conclusion).toBe("success");
    expect(body).toContain("| `svc/base` | `default` | ✅ planned | 1 | 0 | 0 | 0 |");
    expect(body).toContain("| `svc/web` | `default` | ✅ planned | 1 | 0 | 0 | 0 |");
  });

  engineTest("a stack's local-exec provisioner is shown as running at apply", async () => {
    const files = fixture("cdktf-app", "prov");
    files["prov/main.js"] = `const { App, TerraformStack, DataResource } = require("cdktf");
class Stack extends TerraformStack {
  constructor(scope, id) {
    super(scope, id);
    new DataResource(this, "deploy", { input: "v1", provisioners: [{ type: "local-exec", command: "echo deployed-by-cdktf" }] });
  }
}
const app = new App();
new Stack(app, "only");
app.synth();
`;
    const { check, body } = await openPr(files, ["prov/main.js"]);
    expect(check.conclusion).toBe("success");
    expect(body).toContain("This plan **runs 1 provisioner at apply**");
    expect(body).toContain("# terraform_data.deploy (create)");
    expect(body).toContain('  command = "echo deployed-by-cdktf"');
    expect(asShown(check.output!.text!)).toContain('  command = "echo deployed-by-cdktf"');
  });

  engineTest("a program that opens a network connection during synth fails clearly", async () => {
    const files = fixture("cdktf-app", "net");
    files["net/main.js"] = `const net = require("node:net");
const socket = net.connect({ host: "127.0.0.1", port: 5432 });
socket.on("connect", () => { console.log("NETWORK REACHABLE"); socket.end(); require("./synth.js"); });
socket.on("error", (error) => { console.error("synth has no network: " + error.code); process.exitCode = 3; });
`;
    files["net/synth.js"] = fixture("cdktf-app", "x")["x/main.js"]!;
    const { check, body } = await openPr(files, ["net/main.js"]);
    expect(check.conclusion).toBe("failure");
    expect(body).toContain("| `net` | `default` | ❌ failed |");
    expect(body).toContain("**cdktf synth failed**: synth failed (exit 3)");
    expect(body).toMatch(/synth has no network: (ECONNREFUSED|ENETUNREACH|EHOSTUNREACH)/);
    expect(body).not.toContain("NETWORK REACHABLE");
  });

  engineTest("a program printing its environment shows none of the app's secrets", async () => {
    const files = fixture("cdktf-app", "envy");
    files["envy/main.js"] = "console.log(JSON.stringify(process.env, null, 1));\nprocess.exitCode = 4;\n";
    const { body } = await openPr(files, ["envy/main.js"]);
    expect(body).toContain("CDKTF_OUTDIR");
    for (const leak of [SECRET_VALUE, "BEGIN RSA PRIVATE KEY", h.db.url, "11".repeat(32), "WEBHOOK_SECRET", "DATABASE_URL", "PLANGATE_ENCRYPTION_KEY", "not-allowlisted-value"]) {
      expect(body).not.toContain(leak);
    }
  });

  engineTest("stacks: limits the plan to the listed stacks and the stacks they depend on; an unknown stack is named", async () => {
    const files = { ...fixture("cdktf-chain", "only"), ".plangate.yml": "version: 1\nprojects:\n  - name: only\n    dir: only\n    engine: cdktf\n    stacks: [web]\n" };
    const first = await openPr(files, ["only/main.js"]);
    expect(first.check.conclusion).toBe("success");
    // web depends on database, which depends on network: all three are planned, tools is left out
    const rows = [...first.body.matchAll(/^\| `(only\/\w+)` \| `default` \| (.+) \|$/gm)].map((m) => `${m[1]} | ${m[2]}`);
    expect(rows.sort()).toEqual(["only/database", "only/network", "only/web"].map((name) => `${name} | ✅ planned | 1 | 0 | 0 | 0`));
    expect(first.body).toContain('+ input = "from-network"');
    // ... in dependency order
    expect(first.audit.filter((e) => e.action === "plan.started").map((e) => e.project)).toEqual(["only", "only/network", "only/database", "only/web"]);
    files[".plangate.yml"] = files[".plangate.yml"]!.replace("[web]", "[nope]");
    const second = await openPr(files, ["only/main.js"]);
    expect(second.check.conclusion).toBe("failure");
    expect(second.body).toContain("stacks not found in the program: nope (it has network, database, tools, web)");
  });
});
