import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { terraformPlan } from "../../src/engines/terraform.js";
import { TerraformHomes } from "../../src/engines/terraform-home.js";
import { EgressFilter } from "../../src/sandbox/egress/egress-filter.js";
import { bwrapWorks, Sandbox } from "../../src/sandbox/sandbox.js";
import { parseEgressRules, type EgressRule } from "../../src/settings/egress-rules.js";
import { findBinary } from "../../src/settings/find-binary.js";
import { toolTest } from "../support/app-harness.js";
import { workspaces } from "../support/sandbox.js";
import { assumedRoleArn, AWS_PROVIDER_MIRROR, awsMirrorCliConfig, awsMirrorUsable, startFakeSts, type FakeSts } from "../support/fake-sts.js";

// The real AWS provider, from the machine's mirror, gets its credentials from the fake STS with tokens of a test-owned issuer.
const terraform = findBinary("terraform");
const awsTest: typeof test = ((name: string, fn: jest.ProvidesCallback, timeout?: number) =>
  toolTest(!!terraform && awsMirrorUsable(), "terraform and the AWS provider mirror (/opt/tf-plugins)", name, fn, timeout)) as typeof test;

const sandboxedAwsTest: typeof test = ((name: string, fn: jest.ProvidesCallback, timeout?: number) =>
  toolTest(!!terraform && awsMirrorUsable() && bwrapWorks(), "terraform, the AWS provider mirror (/opt/tf-plugins) and bubblewrap", name, fn, timeout)) as typeof test;

const PLAN_ROLE = "arn:aws:iam::123456789012:role/plangate-plan";
const APPLY_ROLE = "arn:aws:iam::123456789012:role/plangate-apply";
const KID = "plangate-1";

/** The real AWS provider asking the STS at `stsUrl` who it is. */
const mainTf = (stsUrl: string) => `provider "aws" {
  region                  = "us-east-1"
  skip_metadata_api_check = true
  skip_region_validation  = true
  endpoints {
    sts = "${stsUrl}"
  }
}

data "aws_caller_identity" "me" {}

output "arn" {
  value = data.aws_caller_identity.me.arn
}
`;

/** A minimal OpenID Connect issuer: the discovery document and the JWKS of one RS256 key. */
async function startIssuer(publicJwk: JWK): Promise<{ url: string; server: Server }> {
  let url = "";
  const server = createServer((req, res) => {
    if (req.url === "/.well-known/openid-configuration") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ issuer: url, jwks_uri: `${url}/jwks`, id_token_signing_alg_values_supported: ["RS256"] }));
    } else if (req.url === "/jwks") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [{ ...publicJwk, kid: KID, alg: "RS256", use: "sig" }] }));
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, server };
}

/** Runs terraform in `dir` with only the variables given (no AWS keys, no metadata service); never rejects. */
function run(dir: string, env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(terraform!, [`-chdir=${dir}`, ...args, "-no-color", "-input=false"], { env: { PATH: process.env.PATH ?? "", ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe("the fake STS, with real terraform and the real AWS provider", () => {
  let root: string;
  let issuer: { url: string; server: Server };
  let sts: FakeSts;
  let signingKey: CryptoKey;
  let otherKey: CryptoKey;
  let stsNow: Date | undefined;
  let baseEnv: Record<string, string>;
  const workspace = workspaces("plangate-fake-sts-sandbox-");

  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), "plangate-fake-sts-"));
    const pair = await generateKeyPair("RS256");
    signingKey = pair.privateKey;
    otherKey = (await generateKeyPair("RS256")).privateKey;
    // The STS starts first and learns its issuer afterwards, as a test that starts the app after it does.
    sts = await startFakeSts({ issuer: "", roles: { [PLAN_ROLE]: { phase: "plan" }, [APPLY_ROLE]: { phase: "apply" } }, now: () => stsNow ?? new Date() });
    issuer = await startIssuer(await exportJWK(pair.publicKey));
    sts.issuer = issuer.url;
    if (!terraform || !awsMirrorUsable()) return; // the STS's own answers are still tested
    writeFileSync(path.join(root, "main.tf"), mainTf(sts.url));
    const home = path.join(root, "home");
    baseEnv = { HOME: home, TF_CLI_CONFIG_FILE: awsMirrorCliConfig(root), AWS_EC2_METADATA_DISABLED: "true", TF_IN_AUTOMATION: "1" };
    const init = await run(root, baseEnv, "init");
    if (init.code !== 0) throw new Error(`terraform init failed:\n${init.stdout}\n${init.stderr}`);
  });

  afterAll(async () => {
    await sts?.close();
    await new Promise((resolve) => issuer?.server.close(resolve));
    if (root) rmSync(root, { recursive: true, force: true });
  });

  /** A token as plangate mints it, for `phase`, with `overrides` of its claims and `key` to sign it. */
  async function token(phase: "plan" | "apply", overrides: { aud?: string; iat?: number; exp?: number } = {}, key = signingKey): Promise<string> {
    const iat = overrides.iat ?? Math.floor(Date.now() / 1000);
    return new SignJWT({ repository: "octo/infra", project: "network", phase, run_id: 7 })
      .setProtectedHeader({ alg: "RS256", kid: KID, typ: "JWT" })
      .setIssuer(issuer.url)
      .setSubject(`repo:octo/infra:project:network:workspace:default:phase:${phase}`)
      .setAudience(overrides.aud ?? "sts.amazonaws.com")
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(overrides.exp ?? iat + 900)
      .setJti(randomUUID())
      .sign(key);
  }

  /** terraform plan as `roleArn` with `jwt` in the token file; returns its result and the STS requests it made. */
  async function planAs(roleArn: string, jwt: string, sessionName: string) {
    const tokenFile = path.join(root, `token-${sessionName}`);
    writeFileSync(tokenFile, jwt);
    const before = sts.requests.length;
    const result = await run(root, { ...baseEnv, AWS_ROLE_ARN: roleArn, AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_ROLE_SESSION_NAME: sessionName }, "plan");
    return { ...result, requests: sts.requests.slice(before) };
  }

  awsTest("a plan-phase token for the plan role: terraform runs as the plan role's session", async () => {
    const jwt = await token("plan");
    const result = await planAs(PLAN_ROLE, jwt, "plangate-run-1");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('arn = "arn:aws:sts::123456789012:assumed-role/plangate-plan/plangate-run-1"');
    const assumed = result.requests.find((r) => r.action === "AssumeRoleWithWebIdentity");
    expect(assumed).toMatchObject({ accepted: true, roleArn: PLAN_ROLE, sessionName: "plangate-run-1", token: jwt });
    // The provider asked who it is with the keys it was given.
    expect(result.requests).toContainEqual(expect.objectContaining({ action: "GetCallerIdentity", accepted: true, accessKeyId: assumed!.accessKeyId, roleArn: PLAN_ROLE }));
  });

  /** AssumeRoleWithWebIdentity asked of the STS directly, as the provider asks it: the STS's status, error code and record. */
  async function assume(roleArn: string, jwt: string, sessionName: string) {
    const at = sts.requests.length;
    const response = await fetch(sts.url, {
      method: "POST",
      body: new URLSearchParams({ Action: "AssumeRoleWithWebIdentity", Version: "2011-06-15", RoleArn: roleArn, RoleSessionName: sessionName, WebIdentityToken: jwt }),
    });
    const body = await response.text();
    return { status: response.status, body, code: /<Code>([^<]+)<\/Code>/.exec(body)?.[1], record: sts.requests[at]! };
  }

  // The provider's whole exchange is proven with terraform above (plan role) and below (a refusal);
  // the other roles and refusals are the STS's own answers, asked directly (each terraform run starts the 675 MB provider).
  test("an apply-phase token for the apply role: the STS issues keys that GetCallerIdentity names as the apply role's session", async () => {
    const { status, body, record } = await assume(APPLY_ROLE, await token("apply"), "plangate-run-2");
    expect(status).toBe(200);
    expect(record).toMatchObject({ accepted: true, roleArn: APPLY_ROLE, sessionName: "plangate-run-2" });
    const accessKeyId = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(body)![1]!;
    const who = await fetch(sts.url, {
      method: "POST",
      headers: { authorization: `AWS4-HMAC-SHA256 Credential=${accessKeyId}/20261206/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=0` },
      body: new URLSearchParams({ Action: "GetCallerIdentity", Version: "2011-06-15" }),
    });
    expect(who.status).toBe(200);
    expect(await who.text()).toContain(`<Arn>${assumedRoleArn(APPLY_ROLE, "plangate-run-2")}</Arn>`);
  });

  awsTest("refused, through terraform: a plan-phase token presented for the apply role fails the plan with the STS's code, and no keys are issued", async () => {
    const jwt = await token("plan");
    const result = await planAs(APPLY_ROLE, jwt, "plangate-run-9");
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("AccessDenied");
    const attempts = result.requests.filter((r) => r.action === "AssumeRoleWithWebIdentity");
    expect(attempts.length).toBeGreaterThan(0);
    for (const attempt of attempts) {
      expect(attempt).toMatchObject({ accepted: false, roleArn: APPLY_ROLE, token: jwt });
      expect(attempt.reason).toMatch(/^AccessDenied: .*phase apply only/);
    }
    expect(result.requests.filter((r) => r.action === "GetCallerIdentity")).toEqual([]);
  });

  /** Each refusal the STS answers directly: its error code, its reason, and no keys issued. */
  const refusals: [string, () => Promise<{ role: string; jwt: string }>, number, string, RegExp][] = [
    ["a token signed by another key under the same kid", async () => ({ role: PLAN_ROLE, jwt: await token("plan", {}, otherKey) }), 400, "InvalidIdentityToken", /signature/],
    ["an expired token", async () => {
      const iat = Math.floor(Date.now() / 1000);
      stsNow = new Date((iat + 3600) * 1000); // the STS's clock is an hour past the token's 15 minutes
      return { role: PLAN_ROLE, jwt: await token("plan", { iat }) };
    }, 400, "ExpiredTokenException", /Token expired/],
    ["a token for another audience", async () => ({ role: PLAN_ROLE, jwt: await token("plan", { aud: "sts.example.com" }) }), 400, "InvalidIdentityToken", /audience/],
  ];
  for (const [what, make, status, code, message] of refusals) {
    test(`refused: ${what}`, async () => {
      try {
        const { role, jwt } = await make();
        const answer = await assume(role, jwt, "plangate-run-9");
        expect([answer.status, answer.code]).toEqual([status, code]);
        expect(answer.body).not.toContain("<AccessKeyId>");
        expect(answer.record).toMatchObject({ accepted: false, roleArn: role, token: jwt });
        expect(answer.record.reason).toMatch(new RegExp(`^${code}: `));
        expect(answer.record.reason).toMatch(message);
      } finally {
        stsNow = undefined;
      }
    });
  }

  /** plan through plangate's own terraform driver, in bubblewrap behind the egress filter with `allow`, the token file in the checkout. */
  async function sandboxedPlan(allow: EgressRule[], jwt: string, sessionName: string) {
    const dir = workspace();
    const checkoutDir = path.join(dir, "checkout");
    const outDir = path.join(dir, "out");
    mkdirSync(path.join(checkoutDir, "stack"), { recursive: true });
    mkdirSync(outDir);
    chmodSync(checkoutDir, 0o755);
    writeFileSync(path.join(checkoutDir, "stack", "main.tf"), mainTf(sts.url));
    const tokenFile = path.join(checkoutDir, ".plangate-web-identity-token");
    writeFileSync(tokenFile, jwt);
    const { home } = await new TerraformHomes(path.join(dir, "tf"), { providerMirror: { kind: "filesystem", path: AWS_PROVIDER_MIRROR } }).acquire();
    const sandbox = new Sandbox("bwrap", { egress: new EgressFilter({ allow, deny: [] }) });
    const before = sts.requests.length;
    try {
      const env = { AWS_ROLE_ARN: PLAN_ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_ROLE_SESSION_NAME: sessionName, AWS_EC2_METADATA_DISABLED: "true" };
      const outcome = await terraformPlan({ sandbox, bin: terraform!, tool: "terraform", home, checkoutDir, projectDir: "stack", workspace: "default", env, timeoutMs: 110_000, outDir });
      return { outcome, requests: sts.requests.slice(before) };
    } finally {
      await sandbox.close();
    }
  }

  sandboxedAwsTest("in plangate's sandbox, PLANGATE_SANDBOX_EGRESS_ALLOW=127.0.0.1:<port> lets the provider reach the STS over plain http", async () => {
    const rules = parseEgressRules(`127.0.0.1:${sts.port}`) as EgressRule[];
    const { outcome, requests } = await sandboxedPlan(rules, await token("plan"), "plangate-run-3");
    expect(outcome.ok ? "" : outcome.output).toBe("");
    const outputs = (outcome as { planJson: { planned_values: { outputs: { arn: { value: string } } } } }).planJson.planned_values.outputs;
    expect(outputs.arn.value).toBe(assumedRoleArn(PLAN_ROLE, "plangate-run-3"));
    expect(requests).toContainEqual(expect.objectContaining({ action: "AssumeRoleWithWebIdentity", accepted: true, sessionName: "plangate-run-3" }));
  });

  sandboxedAwsTest("in plangate's sandbox without that entry, the plan fails and says which entry would open the STS", async () => {
    const { outcome, requests } = await sandboxedPlan([], await token("plan"), "plangate-run-4");
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.problems).toContain(
      `egress refused: 127.0.0.1:${sts.port} (loopback: the sandbox has a network of its own, and the host's loopback is not in it); PLANGATE_SANDBOX_EGRESS_ALLOW=127.0.0.1:${sts.port} would open it`,
    );
    expect(requests).toEqual([]);
  });
});
