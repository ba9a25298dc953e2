import { Writable } from "node:stream";
import { jest } from "@jest/globals";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { pino } from "pino";
import { freePort } from "../../src/db/embedded.js";
import { sha256Hex } from "../../src/plans/canonical.js";
import { bwrapWorks } from "../../src/sandbox/sandbox.js";
import { findBinary } from "../../src/settings/find-binary.js";
import { startHarness, toolTest, type Harness } from "../support/app-harness.js";
import { assumedRoleArn, AWS_PROVIDER_MIRROR, awsMirrorUsable, startFakeSts, type FakeSts } from "../support/fake-sts.js";
import { GitRepo } from "../support/git-repo.js";
import { PullRequests, type Pr } from "../support/pull-requests.js";
import { startStateBackend, type StateBackend } from "../support/state-backend.js";

jest.setTimeout(600_000);

/**
 * Dynamic credentials end to end (DESIGN.md section 3): the real AWS
 * provider, in plangate's sandbox, exchanges plangate's tokens at an STS this
 * test owns, which verifies them against plangate's own discovery document
 * and JWKS. Plans get the plan role, the apply on merge the apply role, and
 * no token is ever seen anywhere but the STS.
 */

const OWNER = "Codertocat";
const NAME = "Hello-World";
const PLAN_ROLE = "arn:aws:iam::123456789012:role/plangate-plan";
const APPLY_ROLE = "arn:aws:iam::123456789012:role/plangate-apply";
const ADMIN_ROLE = "arn:aws:iam::123456789012:role/admin";

const usable = !!findBinary("terraform") && bwrapWorks() && awsMirrorUsable();
const credentialsTest = (name: string, fn: () => Promise<void>) => toolTest(usable, `terraform, bubblewrap and the AWS provider mirror (${AWS_PROVIDER_MIRROR})`, name, fn, 600_000);

let h: Harness;
let sts: FakeSts;
let repo: GitRepo;
let prs: PullRequests;
const logLines: string[] = [];

/** terraform's http backend: the applied state is read back from here. */
let backend: StateBackend;
let stsNow: Date | undefined;

const config = (planRole = PLAN_ROLE) => `version: 1
projects:
  - name: cloud
    dir: cloud
    approvals: { required: 1 }
    credentials:
      aws:
        plan_role_arn: ${planRole}
        apply_role_arn: ${APPLY_ROLE}
`;

/** The caller's identity at plan time (an output), and at apply time (a read deferred behind a change). */
const cloud = (version: string, extra = "") => `
terraform {
  backend "http" { address = "${backend.url("cloud")}" }
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}
provider "aws" {
  region                  = "us-east-1"
  skip_metadata_api_check = true
  skip_region_validation  = true
  endpoints { sts = "${sts.url}" }
}
data "aws_caller_identity" "plan" {}
resource "terraform_data" "change" { input = "${version}" }
data "aws_caller_identity" "apply" { depends_on = [terraform_data.change] }
output "plan_arn" { value = data.aws_caller_identity.plan.arn }
output "apply_arn" { value = data.aws_caller_identity.apply.arn }
${extra}`;

beforeAll(async () => {
  if (!usable) return;
  backend = await startStateBackend();
  sts = await startFakeSts({ issuer: "", roles: { [PLAN_ROLE]: { phase: "plan" }, [APPLY_ROLE]: { phase: "apply" }, [ADMIN_ROLE]: { phase: "plan" } }, now: () => stsNow ?? new Date() });
  const port = await freePort();
  const log = pino({ level: "debug" }, new Writable({ write: (chunk, _e, done) => (logLines.push(String(chunk)), done()) }));
  h = await startHarness(
    {
      PORT: String(port),
      PLANGATE_PUBLIC_URL: `http://127.0.0.1:${port}`,
      PLANGATE_PROVIDER_MIRROR: AWS_PROVIDER_MIRROR,
      PLANGATE_SANDBOX_EGRESS_ALLOW: `127.0.0.1:${backend.port},127.0.0.1:${sts.port}`,
    },
    { log },
  );
  sts.issuer = `http://127.0.0.1:${port}`;
  repo = new GitRepo(h.fake.gitRoot, OWNER, NAME);
  prs = new PullRequests(h, repo, "Codertocat", 900);
  h.fake.permissions.set(`${OWNER}/${NAME}:alice`, "write");
  h.fake.repositoryIds.set(`${OWNER}/${NAME}`, 1296269);
  repo.commit({ ".plangate.yml": config(), "cloud/main.tf": cloud("v0") });
});
afterAll(async () => {
  await h?.close();
  await sts?.close();
  backend?.close();
});
afterEach(() => {
  if (h) expect(h.fake.unexpected).toEqual([]);
});

/** The tokens the STS was given for AssumeRoleWithWebIdentity since `from`, with their claims. */
const exchanges = (from = 0) =>
  sts.requests.slice(from).filter((r) => r.action === "AssumeRoleWithWebIdentity").map((r) => ({ ...r, claims: decodeJwt(r.token!), kid: decodeProtectedHeader(r.token!).kid }));

/** Everything plangate wrote that a person or a log reader could see: comments, checks, rows of every table, logs, run pages. */
async function everythingShown(p: Pr): Promise<string> {
  const checks = h.fake.checkRuns.map((c) => JSON.stringify(c));
  const tables = (await h.db.pool.query<{ table_name: string }>("select table_name from information_schema.tables where table_schema = 'public'")).rows.map((r) => r.table_name);
  const rows: string[] = [];
  for (const table of tables) rows.push(JSON.stringify((await h.db.pool.query(`select * from "${table}"`)).rows));
  const pages: string[] = [];
  for (const url of new Set(h.fake.checkRuns.map((c) => c.details_url).filter((u): u is string => !!u))) pages.push(await (await fetch(url)).text());
  return [...prs.comments(p), ...h.fake.commentsOn(prs.full, p.number).map((c) => c.body), ...checks, ...rows, ...logLines, ...pages].join("\n");
}

describe("dynamic credentials with the real AWS provider", () => {
  credentialsTest("the PR's plan assumes the plan role, the apply on merge the apply role, each with a token bound to its phase", async () => {
    const before = sts.requests.length;
    const p = await prs.open({ "cloud/main.tf": cloud("v1") }, ["cloud/main.tf"]);
    expect(prs.check("plangate/plan", p.sha)?.conclusion).toBe("success");
    const planned = exchanges(before);
    expect(planned.map((e) => [e.roleArn, e.accepted])).toEqual([[PLAN_ROLE, true]]);
    const { claims } = planned[0]!;
    const runId = claims.run_id as number;
    expect(claims).toMatchObject({
      iss: `http://127.0.0.1:${h.app.port}`,
      sub: `repo:${OWNER}/${NAME}:project:cloud:workspace:default:phase:plan`,
      aud: "sts.amazonaws.com",
      repository: `${OWNER}/${NAME}`,
      repository_id: 1296269,
      repository_owner: OWNER,
      project: "cloud",
      workspace: "default",
      phase: "plan",
      event: "pull_request",
      pull_request: p.number,
      sha: p.sha,
      ref: `refs/pull/${p.number}/head`,
      actor: "Codertocat",
    });
    expect(claims).not.toHaveProperty("plan_fingerprint");
    expect(claims.exp! - claims.iat!).toBeLessThanOrEqual(120); // PLANGATE_JOB_TIMEOUT of the harness
    // The plan comment shows the role the plan ran as.
    expect(prs.comments(p).join("\n")).toContain(assumedRoleArn(PLAN_ROLE, `plangate-${runId}`));
    // Each issuance is audited with its claims.
    const issued = (await prs.audit(p)).filter((a) => a.action === "credentials.issued");
    expect(issued.map((a) => a.details.claims.jti)).toEqual([claims.jti]);

    await prs.review(p, "alice");
    const mid = sts.requests.length;
    const mergeSha = await prs.merge(p);
    expect(prs.check("plangate/apply", mergeSha)?.conclusion).toBe("success");
    const merged = exchanges(mid);
    // The merge plans afresh as the plan role, then applies as the apply role.
    expect(merged.map((e) => [e.roleArn, e.claims.phase, e.accepted])).toEqual([
      [PLAN_ROLE, "plan", true],
      [APPLY_ROLE, "apply", true],
    ]);
    const applyClaims = merged[1]!.claims;
    const approved = (await h.db.pool.query<{ fingerprint: string }>("select p.fingerprint from plans p join runs r on r.id = p.run_id where r.id = $1", [runId])).rows[0]!.fingerprint;
    expect(applyClaims).toMatchObject({ sub: `repo:${OWNER}/${NAME}:project:cloud:workspace:default:phase:apply`, event: "merge", ref: "refs/heads/main", actor: "alice", approvers: ["alice"], plan_fingerprint: sha256Hex(approved) });
    // The state the apply wrote: the read deferred to apply time was made as the apply role.
    const state = JSON.parse(backend.states.get("/cloud")!);
    expect(state.outputs.apply_arn.value).toBe(assumedRoleArn(APPLY_ROLE, `plangate-${applyClaims.run_id}`));
    expect(state.outputs.plan_arn.value).toMatch(/assumed-role\/plangate-plan\//);
  });

  credentialsTest("a PR that points credentials at another role still plans as the base's role; a token the PR prints is masked everywhere, and the STS refuses it for the apply role, re-signed or expired", async () => {
    const before = sts.requests.length;
    // A plan's workspace: the commit is laid at tree/ (terraform's path.cwd); the credentials folder sits beside it.
    const leak = `
locals { tokens = [for f in fileset("\${path.cwd}/..", ".plangate-credentials-*/*.jwt") : file("\${path.cwd}/../\${f}")] }
output "token" { value = join(",", local.tokens) }
output "token_b64" { value = join(",", [for t in local.tokens : base64encode(t)]) }
output "found" { value = length(local.tokens) }
`;
    const p = await prs.open({ ".plangate.yml": config(ADMIN_ROLE), "cloud/main.tf": cloud("v2", leak) }, [".plangate.yml", "cloud/main.tf"]);
    const planned = exchanges(before);
    expect(planned.map((e) => [e.roleArn, e.accepted])).toEqual([[PLAN_ROLE, true]]);
    const token = planned[0]!.token!;
    const shown = prs.comments(p).join("\n");
    // The PR did find and read its token: the comment shows the outputs, masked.
    expect(shown).toMatch(/found[^\n]*1/);
    expect(shown).toContain("***");
    const everything = await everythingShown(p);
    expect(everything).not.toContain(token);
    expect(everything).not.toContain(Buffer.from(token).toString("base64"));
    // The token's signature alone is not shown either.
    expect(everything).not.toContain(token.split(".")[2]!);

    // The token a PR can read is good for nothing else: not for the apply role, not re-signed, not once expired.
    const assume = async (roleArn: string, webIdentityToken: string) => {
      const at = sts.requests.length;
      await fetch(sts.url, { method: "POST", body: new URLSearchParams({ Action: "AssumeRoleWithWebIdentity", Version: "2011-06-15", RoleArn: roleArn, RoleSessionName: "attacker", WebIdentityToken: webIdentityToken }) });
      return sts.requests[at]!;
    };
    expect(await assume(APPLY_ROLE, token)).toMatchObject({ accepted: false, reason: expect.stringContaining("AccessDenied") });
    const { generateKeyPair, SignJWT } = await import("jose");
    const other = await generateKeyPair("RS256");
    const forged = await new SignJWT({ ...decodeJwt(token), sub: decodeJwt(token).sub!.replace(":phase:plan", ":phase:apply"), phase: "apply" })
      .setProtectedHeader({ alg: "RS256", kid: decodeProtectedHeader(token).kid })
      .sign(other.privateKey);
    expect(await assume(APPLY_ROLE, forged)).toMatchObject({ accepted: false, reason: expect.stringContaining("InvalidIdentityToken") });
    stsNow = new Date((decodeJwt(token).exp! + 1) * 1000);
    try {
      expect(await assume(PLAN_ROLE, token)).toMatchObject({ accepted: false, reason: expect.stringContaining("ExpiredToken") });
    } finally {
      stsNow = undefined;
    }
    // The same token, in time, for the role it was made for: accepted (the refusals above are the token's, not the STS's).
    expect(await assume(PLAN_ROLE, token)).toMatchObject({ accepted: true });
    await prs.close(p);
  });
});
