import { createHash } from "node:crypto";
import { audiencesOf, cloudCredentials } from "../../src/credentials/cloud-credentials.js";
import { runClaims, subjectOf, type TokenRequest } from "../../src/credentials/run-tokens.js";
import { keyDecision, leadOf, MAX_TOKEN_MS, publishedAt, type KeyTimes } from "../../src/credentials/signing-keys.js";
import { ENGINES } from "../../src/engines/registry.js";
import { identityFor } from "../../src/run/sandbox-inputs.js";
import { CONFIG_FILE, loadRepoConfig } from "../../src/settings/load-repo-config.js";
import type { CredentialsConfig } from "../../src/settings/repo-config.js";

/** Dynamic credentials (DESIGN.md section 3), the pure half: the key ring's decision, a token's claims, what a run gets, the config. */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ROTATION = 30 * DAY;
const options = { rotationMs: ROTATION };
const T0 = Date.UTC(2026, 11, 1);

/** A key as keyDecision made it at `at`. */
const made = (kid: string, keys: KeyTimes[], at: number): KeyTimes => {
  const { create } = keyDecision(keys, at, options);
  if (!create) throw new Error(`no key to create at ${at}`);
  return { kid, ...create };
};

describe("keyDecision: the issuer's key ring", () => {
  const first = made("k1", [], T0);
  const lead = leadOf(ROTATION);

  test("the first key is made to sign at once, for one rotation period", () => {
    expect(keyDecision([], T0, options)).toEqual({ create: { publishFrom: T0, signFrom: T0, signUntil: T0 + ROTATION, publishedUntil: first.publishedUntil } });
    expect(keyDecision([first], T0, options)).toEqual({ signWith: "k1" });
    expect(publishedAt([first], T0).map((k) => k.kid)).toEqual(["k1"]);
  });

  test("the next key is made `lead` before the current one stops signing, not before, and signs only from then", () => {
    expect(lead).toBeGreaterThan(0);
    expect(keyDecision([first], first.signUntil - lead - 1, options)).toEqual({ signWith: "k1" });
    const at = first.signUntil - lead;
    expect(keyDecision([first], at, options)).toEqual({
      signWith: "k1",
      create: { publishFrom: at, signFrom: first.signUntil, signUntil: first.signUntil + ROTATION, publishedUntil: expect.any(Number) },
    });
    const next = made("k2", [first], at);
    // Published at once, signing only once the current key stops: relying parties know the kid before its first token.
    expect(publishedAt([first, next], at).map((k) => k.kid)).toEqual(["k1", "k2"]);
    expect(keyDecision([first, next], first.signUntil - 1, options)).toEqual({ signWith: "k1" });
    expect(keyDecision([first, next], first.signUntil, options)).toEqual({ signWith: "k2" });
  });

  test("the lead is a quarter of the rotation, at most an hour", () => {
    expect(leadOf(ROTATION)).toBe(HOUR);
    expect(leadOf(2 * HOUR)).toBe(HOUR / 2);
  });

  test("never two next keys: once the next key exists, nothing more is made until it signs and nears its own end", () => {
    const next = made("k2", [first], first.signUntil - lead);
    for (const at of [first.signUntil - lead, first.signUntil - 1, first.signUntil, next.signUntil - lead - 1]) {
      expect(keyDecision([first, next], at, options).create).toBeUndefined();
    }
    expect(keyDecision([first, next], next.signUntil - lead, options)).toMatchObject({ signWith: "k2", create: { signFrom: next.signUntil } });
  });

  test("a retired key stays published until every token it signed has expired (MAX_TOKEN_MS and a margin), then goes", () => {
    const next = made("k2", [first], first.signUntil - lead);
    const margin = first.publishedUntil - first.signUntil - MAX_TOKEN_MS;
    expect(margin).toBeGreaterThan(0);
    expect(margin).toBeLessThanOrEqual(HOUR);
    // The last token k1 signs, just before it stops, expires MAX_TOKEN_MS later: k1 is still published then.
    expect(publishedAt([first, next], first.signUntil + MAX_TOKEN_MS).map((k) => k.kid)).toEqual(["k1", "k2"]);
    expect(publishedAt([first, next], first.publishedUntil - 1).map((k) => k.kid)).toEqual(["k1", "k2"]);
    expect(publishedAt([first, next], first.publishedUntil).map((k) => k.kid)).toEqual(["k2"]);
  });

  test("a ring left unused past its period gets a key that signs at once", () => {
    const later = first.signUntil + DAY;
    expect(keyDecision([first], later, options)).toEqual({ create: { publishFrom: later, signFrom: later, signUntil: later + ROTATION, publishedUntil: expect.any(Number) } });
  });
});

const SHA = "a".repeat(40);
const planRequest: Omit<TokenRequest, "credentials" | "dir"> = {
  phase: "plan",
  event: "pull_request",
  project: { name: "network", workspace: "prod" },
  identity: { repository: "acme/infra", repositoryId: 42, pullRequest: 7, sha: SHA, ref: "refs/pull/7/head", actor: "octocat", runId: 31 },
  deadline: T0 + DAY,
};
const approved = { fingerprint: "fp:network:prod:1234", approvers: ["zed", "alice", "mia"] };
const applyRequest: Omit<TokenRequest, "credentials" | "dir"> = { ...planRequest, phase: "apply", event: "command", identity: { ...planRequest.identity, approved } };
const ISSUER = "https://plangate.example.com";
const seconds = (ms: number) => Math.floor(ms / 1000);

describe("runClaims: a token's claims", () => {
  test("a plan's token: the subject names repository, project, workspace and phase; the rest of the claims as the design lists", () => {
    expect(runClaims(ISSUER, planRequest, "sts.amazonaws.com", T0, "jti-1")).toEqual({
      iss: ISSUER,
      sub: "repo:acme/infra:project:network:workspace:prod:phase:plan",
      aud: "sts.amazonaws.com",
      iat: seconds(T0),
      nbf: seconds(T0),
      exp: seconds(T0 + 2 * HOUR),
      jti: "jti-1",
      repository: "acme/infra",
      repository_id: 42,
      repository_owner: "acme",
      project: "network",
      workspace: "prod",
      phase: "plan",
      event: "pull_request",
      pull_request: 7,
      sha: SHA,
      ref: "refs/pull/7/head",
      actor: "octocat",
      run_id: 31,
    });
    expect(subjectOf("o/r", "p", "w", "plan")).toBe("repo:o/r:project:p:workspace:w:phase:plan");
    expect(subjectOf("o/r", "p", "w", "apply")).toBe("repo:o/r:project:p:workspace:w:phase:apply");
  });

  test("exp is the phase's deadline, at most 2 h away", () => {
    expect(runClaims(ISSUER, { ...planRequest, deadline: T0 + 3 * HOUR }, "a", T0, "j").exp).toBe(seconds(T0 + MAX_TOKEN_MS));
    expect(MAX_TOKEN_MS).toBe(2 * HOUR);
    expect(runClaims(ISSUER, { ...planRequest, deadline: T0 + 40 * 60_000 }, "a", T0, "j").exp).toBe(seconds(T0 + 40 * 60_000));
  });

  test("an apply's token carries the SHA-256 hex of the approved fingerprint and the approvers, sorted", () => {
    const claims = runClaims(ISSUER, applyRequest, "a", T0, "j");
    expect(claims).toMatchObject({ sub: "repo:acme/infra:project:network:workspace:prod:phase:apply", phase: "apply", event: "command" });
    expect(claims.plan_fingerprint).toBe(createHash("sha256").update(approved.fingerprint).digest("hex"));
    expect(claims.approvers).toEqual(["alice", "mia", "zed"]);
    expect(approved.approvers).toEqual(["zed", "alice", "mia"]);
  });

  test("a plan's token never names an approved change, even when one is given", () => {
    const claims = runClaims(ISSUER, { ...planRequest, event: "merge_group", identity: applyRequest.identity }, "a", T0, "j");
    expect(claims).not.toHaveProperty("plan_fingerprint");
    expect(claims).not.toHaveProperty("approvers");
  });

  test("a drift check's token has no pull request and no run id", () => {
    const drift = { ...planRequest, event: "drift" as const, identity: { repository: "acme/infra", repositoryId: 42, sha: SHA, ref: "refs/heads/main", actor: "plangate" } };
    const claims = runClaims(ISSUER, drift, "a", T0, "j");
    expect(claims).toMatchObject({ event: "drift", actor: "plangate", ref: "refs/heads/main" });
    expect(claims).not.toHaveProperty("pull_request");
    expect(claims).not.toHaveProperty("run_id");
  });
});

/** `credentials:` as the repository config parses it (defaults filled in). */
function credentialsOf(yaml: string): CredentialsConfig {
  const indented = yaml.trim().split("\n").map((l) => `      ${l}`).join("\n");
  const result = loadRepoConfig(`version: 1\nprojects:\n  - dir: infra\n    credentials:\n${indented}\n`, ENGINES.names);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.config.projects[0]!.credentials!;
}

const DIR = "/tmp/credentials";
const PLAN_ROLE = "arn:aws:iam::123456789012:role/plangate-plan";
const APPLY_ROLE = "arn:aws:iam::123456789012:role/plangate-apply";
const PROVIDER = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/plangate/providers/github";
const TENANT = "11111111-2222-3333-4444-555555555555";
const PLAN_CLIENT = "aaaaaaaa-0000-0000-0000-000000000001";
const APPLY_CLIENT = "aaaaaaaa-0000-0000-0000-000000000002";

describe("cloudCredentials: what a run gets for its identity", () => {
  test("aws: the phase's role, the token file, a session named after the run", () => {
    const aws = credentialsOf(`aws:\n  plan_role_arn: ${PLAN_ROLE}\n  apply_role_arn: ${APPLY_ROLE}`);
    expect(audiencesOf(aws)).toEqual(["sts.amazonaws.com"]);
    const plan = cloudCredentials(aws, "plan", DIR, ["T1"], 31);
    expect(plan).toEqual({
      files: [{ path: `${DIR}/token-0.jwt`, content: "T1" }],
      env: { AWS_ROLE_ARN: PLAN_ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: `${DIR}/token-0.jwt`, AWS_ROLE_SESSION_NAME: "plangate-31" },
    });
    expect(cloudCredentials(aws, "apply", DIR, ["T1"], 32).env).toMatchObject({ AWS_ROLE_ARN: APPLY_ROLE, AWS_ROLE_SESSION_NAME: "plangate-32" });
    const shared = credentialsOf(`aws:\n  role_arn: ${PLAN_ROLE}`);
    expect(cloudCredentials(shared, "apply", DIR, ["T1"], 1).env.AWS_ROLE_ARN).toBe(PLAN_ROLE);
    // The phase's own role wins over the shared one.
    const both = credentialsOf(`aws:\n  role_arn: ${PLAN_ROLE}\n  apply_role_arn: ${APPLY_ROLE}`);
    expect(cloudCredentials(both, "apply", DIR, ["T1"], 1).env.AWS_ROLE_ARN).toBe(APPLY_ROLE);
    expect(cloudCredentials(both, "plan", DIR, ["T1"], 1).env.AWS_ROLE_ARN).toBe(PLAN_ROLE);
  });

  test("gcp: an external_account file impersonating the phase's service account; the token's audience defaults to https: and the provider", () => {
    const gcp = credentialsOf(`gcp:\n  workload_identity_provider: ${PROVIDER}\n  plan_service_account: plan@proj.iam.gserviceaccount.com\n  apply_service_account: apply@proj.iam.gserviceaccount.com`);
    expect(audiencesOf(gcp)).toEqual([`https:${PROVIDER}`]);
    for (const [phase, account] of [["plan", "plan@proj.iam.gserviceaccount.com"], ["apply", "apply@proj.iam.gserviceaccount.com"]] as const) {
      const { files, env } = cloudCredentials(gcp, phase, DIR, ["T1"], 5);
      expect(env).toEqual({ GOOGLE_APPLICATION_CREDENTIALS: `${DIR}/gcp-external-account.json` });
      expect(files.find((f) => f.path === `${DIR}/token-0.jwt`)?.content).toBe("T1");
      const external = JSON.parse(files.find((f) => f.path === env.GOOGLE_APPLICATION_CREDENTIALS)!.content);
      expect(external).toMatchObject({
        type: "external_account",
        audience: PROVIDER,
        subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
        credential_source: { file: `${DIR}/token-0.jwt` },
        service_account_impersonation_url: `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${account}:generateAccessToken`,
      });
    }
    const named = credentialsOf(`gcp:\n  workload_identity_provider: ${PROVIDER}\n  service_account: sa@proj.iam.gserviceaccount.com\n  audience: my-audience`);
    expect(audiencesOf(named)).toEqual(["my-audience"]);
  });

  test("azure: ARM_USE_OIDC with the phase's client id", () => {
    const azure = credentialsOf(`azure:\n  tenant_id: ${TENANT}\n  plan_client_id: ${PLAN_CLIENT}\n  apply_client_id: ${APPLY_CLIENT}`);
    expect(audiencesOf(azure)).toEqual(["api://AzureADTokenExchange"]);
    expect(cloudCredentials(azure, "plan", DIR, ["T1"], 5).env).toEqual({
      ARM_USE_OIDC: "true",
      ARM_OIDC_TOKEN_FILE_PATH: `${DIR}/token-0.jwt`,
      ARM_CLIENT_ID: PLAN_CLIENT,
      ARM_TENANT_ID: TENANT,
    });
    expect(cloudCredentials(azure, "apply", DIR, ["T1"], 5).env.ARM_CLIENT_ID).toBe(APPLY_CLIENT);
  });

  test("bare tokens: a file each, PLANGATE_OIDC_TOKEN_FILE for the first, the token itself in the named env", () => {
    const tokens = credentialsOf("tokens:\n  - { audience: vault.example.com, env: VAULT_JWT }\n  - { audience: other.example.com }");
    expect(audiencesOf(tokens)).toEqual(["vault.example.com", "other.example.com"]);
    expect(cloudCredentials(tokens, "plan", DIR, ["T1", "T2"], 5)).toEqual({
      files: [
        { path: `${DIR}/token-0.jwt`, content: "T1" },
        { path: `${DIR}/token-1.jwt`, content: "T2" },
      ],
      env: { PLANGATE_OIDC_TOKEN_FILE: `${DIR}/token-0.jwt`, VAULT_JWT: "T1" },
    });
  });

  test("one token per distinct audience: clouds that share an audience share its token", () => {
    const mixed = credentialsOf(`aws:\n  role_arn: ${PLAN_ROLE}\ntokens:\n  - { audience: sts.amazonaws.com, env: SAME_JWT }\n  - { audience: vault.example.com, env: VAULT_JWT }`);
    expect(audiencesOf(mixed)).toEqual(["sts.amazonaws.com", "vault.example.com"]);
    const { files, env } = cloudCredentials(mixed, "plan", DIR, ["AWS", "VAULT"], 5);
    expect(files.map((f) => [f.path, f.content])).toEqual([[`${DIR}/token-0.jwt`, "AWS"], [`${DIR}/token-1.jwt`, "VAULT"]]);
    expect(env).toMatchObject({ AWS_WEB_IDENTITY_TOKEN_FILE: `${DIR}/token-0.jwt`, PLANGATE_OIDC_TOKEN_FILE: `${DIR}/token-0.jwt`, SAME_JWT: "AWS", VAULT_JWT: "VAULT" });
    expect(() => cloudCredentials(mixed, "plan", DIR, ["AWS"], 5)).toThrow("one token per audience");
  });
});

describe("identityFor: which identity a sandboxed step gets", () => {
  const credentials = credentialsOf(`aws:\n  role_arn: ${PLAN_ROLE}`);
  const project = { credentials };

  test("every plan gets the plan phase's identity, only an apply the apply phase's, a synth none", () => {
    for (const reason of ["pull_request", "merge", "command", "merge_group", "drift"] as const) {
      expect(identityFor(project, "plan", reason, true)).toEqual({ phase: "plan", event: reason, credentials });
      expect(identityFor(project, "synth", reason, true)).toBeUndefined();
    }
    expect(identityFor(project, "apply", "merge", true)).toEqual({ phase: "apply", event: "merge", credentials });
    expect(identityFor(project, "apply", "command", true)).toEqual({ phase: "apply", event: "command", credentials });
  });

  test("a local plan, a run without an identity, or a project without credentials gets none", () => {
    expect(identityFor(project, "plan", "local", true)).toBeUndefined();
    expect(identityFor(project, "plan", "pull_request", false)).toBeUndefined();
    expect(identityFor({}, "plan", "pull_request", true)).toBeUndefined();
    expect(identityFor({}, "apply", "merge", true)).toBeUndefined();
  });
});

describe(".plangate.yml credentials", () => {
  /** The problems as a comment shows them: `.plangate.yml:LINE:COLUMN message`. */
  const problems = (credentials: string) => {
    const indented = credentials.trim().split("\n").map((l) => `      ${l}`).join("\n");
    const result = loadRepoConfig(`version: 1\nprojects:\n  - dir: infra\n    credentials:\n${indented}\n`, ENGINES.names);
    if (result.ok) throw new Error("expected problems");
    return result.problems.map((p) => `${CONFIG_FILE}:${p.line}:${p.column} ${p.message}`);
  };

  test("every cloud, and tokens, as the design shows them, are valid", () => {
    expect(credentialsOf(`aws:\n  plan_role_arn: ${PLAN_ROLE}\n  apply_role_arn: ${APPLY_ROLE}`).aws).toEqual({ plan_role_arn: PLAN_ROLE, apply_role_arn: APPLY_ROLE, audience: "sts.amazonaws.com" });
    expect(credentialsOf(`azure:\n  tenant_id: ${TENANT}\n  client_id: ${PLAN_CLIENT}`).azure).toMatchObject({ audience: "api://AzureADTokenExchange" });
  });

  test("aws without role_arn nor both phases' roles", () => {
    expect(problems(`aws:\n  plan_role_arn: ${PLAN_ROLE}`)).toEqual([`${CONFIG_FILE}:6:9 projects[0].credentials.aws: needs role_arn, or both plan_role_arn and apply_role_arn`]);
    expect(problems("aws: {}")).toEqual([`${CONFIG_FILE}:5:12 projects[0].credentials.aws: needs role_arn, or both plan_role_arn and apply_role_arn`]);
  });

  test("a malformed role ARN", () => {
    expect(problems("aws:\n  role_arn: arn:aws:iam::12345:user/bob")).toEqual([
      `${CONFIG_FILE}:6:19 projects[0].credentials.aws.role_arn: must be an IAM role ARN, such as arn:aws:iam::123456789012:role/plangate-plan`,
    ]);
  });

  test("an empty credentials object", () => {
    expect(problems("{}")).toEqual([`${CONFIG_FILE}:5:7 projects[0].credentials: names no cloud: give aws, gcp, azure or tokens`]);
    expect(problems("tokens: []")).toEqual([`${CONFIG_FILE}:5:7 projects[0].credentials: names no cloud: give aws, gcp, azure or tokens`]);
  });

  test("a tokens env that would set one of AWS's, Azure's, Google's or plangate's own variables", () => {
    expect(problems("tokens:\n  - { audience: vault, env: AWS_FOO }")).toEqual([`${CONFIG_FILE}:6:35 projects[0].credentials.tokens[0].env: must not be a PLANGATE_, AWS_, ARM_ or GOOGLE_ variable`]);
    expect(problems("tokens:\n  - { audience: vault, env: PLANGATE_OIDC_TOKEN_FILE }")[0]).toMatch(/tokens\[0\]\.env: must not be/);
  });
});
