import path from "node:path";
import type { CredentialsConfig } from "../settings/repo-config.js";

/** The phase a token is for: plans (of every kind) get the plan phase's identity, applies the apply phase's. */
export type TokenPhase = "plan" | "apply";

/** A file the run reads its identity from, inside the sandbox. */
export interface CredentialFile {
  path: string;
  content: string;
}

/** What a run gets for its identity: files, variables, and the tokens themselves (to mask). */
export interface RunIdentityFiles {
  files: CredentialFile[];
  env: Record<string, string>;
}

const GCP_STS = "https://sts.googleapis.com/v1/token";
const GCP_IMPERSONATE = (account: string) => `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${account}:generateAccessToken`;

/** A phase's value of a `role_arn`-style key: its own (`plan_role_arn`), else the shared one. */
const forPhase = <T>(o: Record<string, unknown>, key: string, phase: TokenPhase): T => (o[`${phase}_${key}`] ?? o[key]) as T;

/**
 * The audiences a project's `credentials` need tokens for, each once, in a
 * fixed order (aws, gcp, azure, then `tokens`): one token per audience.
 */
export function audiencesOf(config: CredentialsConfig): string[] {
  const audiences = [
    config.aws?.audience,
    config.gcp && (config.gcp.audience ?? `https:${config.gcp.workload_identity_provider}`),
    config.azure?.audience,
    ...(config.tokens ?? []).map((t) => t.audience),
  ].filter((a): a is string => !!a);
  return [...new Set(audiences)];
}

/** Where the token of the `index`th audience is written, in the run's credentials folder. */
export const tokenFile = (dir: string, index: number) => path.join(dir, `token-${index}.jwt`);

/**
 * The files and variables each cloud's SDK reads for `phase` (DESIGN.md
 * section 3), given the tokens minted for audiencesOf(config), in that order.
 * Pure: the caller writes the files into the sandbox and passes the variables.
 */
export function cloudCredentials(config: CredentialsConfig, phase: TokenPhase, dir: string, tokens: string[], runId: number | undefined): RunIdentityFiles {
  const audiences = audiencesOf(config);
  if (tokens.length !== audiences.length) throw new Error("one token per audience");
  const fileOf = (audience: string) => tokenFile(dir, audiences.indexOf(audience));
  const files: CredentialFile[] = audiences.map((audience, i) => ({ path: fileOf(audience), content: tokens[i]! }));
  const env: Record<string, string> = {};
  if (config.aws) {
    env.AWS_ROLE_ARN = forPhase(config.aws, "role_arn", phase);
    env.AWS_WEB_IDENTITY_TOKEN_FILE = fileOf(config.aws.audience);
    env.AWS_ROLE_SESSION_NAME = runId === undefined ? "plangate-drift" : `plangate-${runId}`;
  }
  if (config.gcp) {
    const audience = config.gcp.audience ?? `https:${config.gcp.workload_identity_provider}`;
    const account = forPhase<string>(config.gcp, "service_account", phase);
    const externalAccount = path.join(dir, "gcp-external-account.json");
    files.push({
      path: externalAccount,
      content: JSON.stringify({
        type: "external_account",
        audience: config.gcp.workload_identity_provider,
        subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
        token_url: GCP_STS,
        credential_source: { file: fileOf(audience) },
        service_account_impersonation_url: GCP_IMPERSONATE(account),
      }, null, 2),
    });
    env.GOOGLE_APPLICATION_CREDENTIALS = externalAccount;
  }
  if (config.azure) {
    env.ARM_USE_OIDC = "true";
    env.ARM_OIDC_TOKEN_FILE_PATH = fileOf(config.azure.audience);
    env.ARM_CLIENT_ID = forPhase(config.azure, "client_id", phase);
    env.ARM_TENANT_ID = config.azure.tenant_id;
  }
  (config.tokens ?? []).forEach((entry, i) => {
    if (i === 0) env.PLANGATE_OIDC_TOKEN_FILE = fileOf(entry.audience);
    if (entry.env) env[entry.env] = tokens[audiences.indexOf(entry.audience)]!;
  });
  return { files, env };
}
