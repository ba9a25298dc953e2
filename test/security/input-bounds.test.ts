import { execFileSync } from "node:child_process";
import http from "node:http";
import { jest } from "@jest/globals";
import { MAX_TEXT_BYTES } from "../../src/git/commit-reader.js";
import { configReads, INLINE_CONFIG_BYTES } from "../../src/settings/read-repo-config.js";
import { startHarness, type Harness } from "../support/app-harness.js";
import { underAttack } from "../support/attack-meter.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests, type Pr } from "../support/pull-requests.js";

/**
 * The hostile PR author pushes small commits that ask plangate for huge
 * work: one large blob at many paths, one file past plangate's read limit,
 * thousands of projects, a config of 300,000 keys. Each must fail the plan at
 * once with a message naming the limit, while plangate's memory stays bounded
 * and /healthz keeps answering (DESIGN.md section 3, "Bounded work for
 * untrusted input").
 */
jest.setTimeout(600_000);

const OWNER = "Codertocat";
const NAME = "Hello-World";
const MiB = 1024 * 1024;
let h: Harness;
let repo: GitRepo;
let prs: PullRequests;

beforeAll(async () => {
  h = await startHarness();
  repo = new GitRepo(h.fake.gitRoot, OWNER, NAME);
  prs = new PullRequests(h, repo);
  repo.commit({ "infra/main.tf": 'resource "terraform_data" "r" {\n  input = "v0"\n}\n' });
});
afterAll(async () => h?.close());
afterEach(() => expect(h.fake.unexpected).toEqual([]));

/*
 * Each attack's commit is made before its measurement starts: the test's own git runs synchronously in this
 * process, which is also plangate's, and would otherwise stall /healthz on plangate's behalf.
 */

/** A large terraform file of comments (valid, and compressed to almost nothing in a push). */
const bigTerraform = (bytes: number) => Buffer.alloc(bytes, "# padding line of a generated terraform file\n");

/**
 * From now until `stop()`: each time a config too large to read inline
 * starts being read, /healthz is asked at once. `verdicts` says, per such
 * read, whether that answer came before the read's result did.
 */
function askHealthzWhileLargeConfigsAreRead(url: string) {
  const answered = new WeakMap<object, { yes: boolean }>();
  const verdicts: string[] = [];
  const handlers = {
    start(read: { bytes: number }) {
      if (read.bytes <= INLINE_CONFIG_BYTES) return;
      const state = { yes: false };
      answered.set(read, state);
      http.get(`${url}/healthz`, (res) => {
        res.resume();
        res.on("end", () => (state.yes = res.statusCode === 200));
      });
    },
    asyncEnd(read: { bytes: number }) {
      const state = answered.get(read);
      if (state) verdicts.push(state.yes ? "/healthz answered during the read" : "/healthz not answered during the read");
    },
    end() {},
    asyncStart() {},
    error() {},
  };
  configReads.subscribe(handlers);
  return { verdicts, stop: () => void configReads.unsubscribe(handlers) };
}

const planFailures = async (p: Pr) => (await prs.audit(p)).filter((e) => e.action === "plan.failed");
const dataDirMb = () => Number(execFileSync("du", ["-sm", h.settings.dataDir], { encoding: "utf8" }).split("\t")[0]);

describe("bounded work for untrusted input", () => {
  test("250 paths at one 7.6 MiB .tf blob: refused at PLANGATE_MAX_COMMIT_SIZE, memory and the data dir stay small", async () => {
    const paths = Array.from({ length: 250 }, (_, i) => `p${i}/main.tf`);
    const sha = repo.commitOneBlobAt(paths, bigTerraform(7.6 * MiB), "repeated-blob");
    const diskBefore = dataDirMb();
    const m = await underAttack(h.url, () => prs.openAt("repeated-blob", sha, paths));
    const check = prs.check("plangate/plan", sha)!;
    expect(check).toMatchObject({ status: "completed", conclusion: "failure", output: { title: "plangate refused to plan: over a limit" } });
    expect(check.output?.summary).toContain("is larger than PLANGATE_MAX_COMMIT_SIZE (1 GiB), counting every path and its contents, links and repeats included");
    expect(prs.comments(m.result).at(-1)).toContain("plangate refused to plan this pull request");
    expect((await planFailures(m.result)).map((e) => e.details.stage)).toEqual(["limit"]);
    console.log(`repeated blob: memory +${m.rssGrowthMb} MB, slowest /healthz ${m.slowestHealthzMs} ms (${m.healthzAnswers} answers), data dir ${diskBefore} -> ${dataDirMb()} MB`);
    expect(m.rssGrowthMb).toBeLessThan(300);
    expect(m.healthzAnswers).toBeGreaterThan(0);
    expect(dataDirMb() - diskBefore).toBeLessThan(50); // the export measured the commit before writing it
  });

  test("one 9 MiB .tf file fails the plan at once, naming the file and the limit, without retrying", async () => {
    const sha = repo.commit({ "big/main.tf": bigTerraform(9 * MiB).toString() }, "nine-mib", "change", undefined, { from: "main" });
    const m = await underAttack(h.url, () => prs.openAt("nine-mib", sha, ["big/main.tf"]));
    const check = prs.check("plangate/plan", m.result.sha)!;
    expect(check).toMatchObject({ conclusion: "failure", output: { title: "plangate refused to plan: over a limit" } });
    expect(check.output?.summary).toContain(`big/main.tf is ${9 * MiB} bytes; plangate reads files of at most ${MAX_TEXT_BYTES} bytes`);
    expect(check.output?.summary).not.toContain("after retrying");
    // One attempt: the job was not retried (each failed attempt of a plan job is an attempt the queue counts).
    const { rows } = await h.db.pool.query<{ attempts: number }>("select attempts from graphile_worker.jobs where task_identifier = 'plan-pull-request'");
    expect(rows).toEqual([]);
    expect(await planFailures(m.result)).toHaveLength(1);
    console.log(`9 MiB file: memory +${m.rssGrowthMb} MB, slowest /healthz ${m.slowestHealthzMs} ms (${m.healthzAnswers} answers)`);
    expect(m.rssGrowthMb).toBeLessThan(300);
    expect(m.healthzAnswers).toBeGreaterThan(0);
  });

  test("a config listing 2,001 projects fails the plan naming PLANGATE_MAX_PROJECTS", async () => {
    const config = ["version: 1", "projects:", ...Array.from({ length: 2001 }, (_, i) => `  - { name: p${i}, dir: infra }`)].join("\n");
    const p = await prs.open({ ".plangate.yml": config, "infra/main.tf": 'resource "terraform_data" "r" {\n  input = "v1"\n}\n' }, [".plangate.yml", "infra/main.tf"]);
    const check = prs.check("plangate/plan", p.sha)!;
    expect(check.conclusion).toBe("failure");
    expect(check.output?.summary).toContain(`commit ${p.sha.slice(0, 7)} has 2001 projects; a plan covers at most PLANGATE_MAX_PROJECTS (2000)`);
    expect(await h.db.pool.query("select 1 from runs where sha = $1", [p.sha])).toMatchObject({ rowCount: 0 });
  });

  test("a 7 MB .plangate.yml of 300,000 keys: its repeated key is found at LINE:COLUMN while /healthz keeps answering", async () => {
    const lines = ["version: 1", "projects:", "  - dir: infra", "    extra:"];
    for (let i = 0; i < 300_000; i++) lines.push(`      key-${i}: value1`);
    lines.push("      key-7: again");
    const config = `${lines.join("\n")}\n`;
    expect(config.length).toBeGreaterThan(7_000_000);
    expect(config.length).toBeLessThan(MAX_TEXT_BYTES);
    const sha = repo.commit({ ".plangate.yml": config }, "many-keys", "change", undefined, { from: "main" });
    const reads = askHealthzWhileLargeConfigsAreRead(h.url);
    const m = await underAttack(h.url, () => prs.openAt("many-keys", sha, [".plangate.yml"])).finally(reads.stop);
    const check = prs.check("plangate/plan", m.result.sha)!;
    expect(check.conclusion).toBe("failure");
    expect(prs.comments(m.result).at(-1)).toContain(`.plangate.yml:${lines.length}:7`);
    expect(prs.comments(m.result).at(-1)).toContain("Map keys must be unique");
    console.log(`300k keys: memory +${m.rssGrowthMb} MB, slowest /healthz ${m.slowestHealthzMs} ms (${m.healthzAnswers} answers)`);
    // Asked the moment the read began, /healthz was answered before the read ended: the file was not parsed on the thread that answers.
    expect(reads.verdicts).toEqual(["/healthz answered during the read"]);
    // YAML's document model of the file lives on the config's thread, whose heap is capped (read-repo-config.ts).
    expect(m.rssGrowthMb).toBeLessThan(1000);
  });
});
