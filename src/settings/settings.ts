import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { parseDuration } from "./duration.js";
import { parseEgressRules, type EgressRule } from "./egress-rules.js";
import { envAllowlist, parseEnvAllowlist, type EnvAllowlist } from "./env-allow.js";
import { parseProviderMirror, type ProviderMirror } from "./provider-mirror.js";
import { parseSize } from "./size.js";

/** Thrown when an environment setting is invalid; the message names the variable. */
export class SettingsError extends Error {}

export type SandboxMode = "auto" | "bwrap" | "none";

/** The validated server settings (DESIGN.md section 2). */
export interface Settings {
  appId?: string;
  privateKey?: string;
  webhookSecret: string;
  webhookProxyUrl?: string;
  /** REST base URL, e.g. https://api.github.com or http://ghe.local/api/v3 */
  githubApiUrl: string;
  /** Where repositories are cloned from, e.g. https://github.com */
  githubWebUrl: string;
  gheHost?: string;
  port: number;
  /** The address the webhook server (or a worker's probes port) listens on (HOST; default: Probot's, localhost). */
  host?: string;
  logLevel: "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";
  databaseUrl?: string;
  dataDir: string;
  encryptionKey?: Buffer;
  workers: number;
  sandbox: SandboxMode;
  terraformBin: string;
  tofuBin: string;
  allowForkPrs: boolean;
  jobTimeoutMs: number;
  /** A worker process silent for this long is presumed dead and its jobs are retried. */
  workerStaleAfterMs: number;
  /** How often a server sweeps the App's delivery log for failed deliveries to ask for again (PLANGATE_REDELIVER_EVERY). */
  redeliverEveryMs: number;
  /** The gap between two GitHub writes (PLANGATE_GITHUB_WRITE_INTERVAL): GitHub asks an integration for a second. */
  githubWriteIntervalMs: number;
  /** A process without the webhook server (`plangate worker`) serves /healthz, /readyz and /metrics on this port. */
  metricsPort?: number;
  maskPatterns: RegExp[];
  maxComments: number;
  /** PLANGATE_REPO_CONCURRENCY: project jobs of one repository at once, at most (unset: no bound but one per project). */
  repoConcurrency?: number;
  /** PLANGATE_PLAN_BATCH: the most projects of a large PR one job plans, in one sandbox entry (1: each alone). */
  planBatch: number;
  templatesDir?: string;
  /** The URL users reach this server at, for run page links. */
  publicUrl?: string;
  /** The `iss` of run tokens, where clouds fetch its keys (PLANGATE_OIDC_ISSUER; default: the public URL). */
  oidcIssuer?: string;
  /** How long one signing key signs (PLANGATE_OIDC_KEY_ROTATION). */
  oidcKeyRotationMs: number;
  /** Worker variables projects' `env` may pass to plans and applies (PLANGATE_ENV_ALLOW). */
  envAllow: EnvAllowlist;
  /** More variables, passed to applies only (PLANGATE_APPLY_ENV_ALLOW). */
  applyEnvAllow: EnvAllowlist;
  /** Destinations the sandbox's egress filter opens although they are refused by default. */
  egressAllow: EgressRule[];
  /** Destinations the egress filter refuses besides its defaults. */
  egressDeny: EgressRule[];
  /** Caps of one sandboxed run. */
  sandboxMemoryBytes: number;
  sandboxPids: number;
  sandboxDiskBytes: number;
  /** Bytes of a commit plangate reads and exports at most, every path counted (PLANGATE_MAX_COMMIT_SIZE). */
  maxCommitBytes: number;
  /** Projects a repository's commit may list or hold at most (PLANGATE_MAX_PROJECTS). */
  maxProjects: number;
  /** Where terraform installs providers from when not the public registries (PLANGATE_PROVIDER_MIRROR). */
  providerMirror?: ProviderMirror;
  /** Where apply outcomes are announced (Slack-compatible JSON), and the HMAC key that signs them. */
  notify?: { url: string; secret: string };
  /** The App's OAuth client, for the dashboard's "Login with GitHub" (GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET). */
  oauthClient?: { id: string; secret: string };
  /** The repository whose default branch's .plangate-policies.yml applies to every plan (PLANGATE_POLICY_REPO). */
  policyRepo?: { owner: string; name: string };
}

const booleanText = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ["true", "false", "1", "0", "yes", "no", ""].includes(v), "must be true or false")
  .transform((v) => ["true", "1", "yes"].includes(v));

const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be between ${min} and ${max}`);

const duration = z
  .string()
  .transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) ctx.addIssue({ code: "custom", message: 'must be a duration such as "600", "90s", "15m", "1h" or "30d"' });
    return ms ?? 0;
  });

const size = z.string().transform((v, ctx) => {
  const bytes = parseSize(v);
  if (bytes === undefined) ctx.addIssue({ code: "custom", message: 'must be a size such as "4g", "512m" or a number of bytes' });
  return bytes ?? 0;
});

const envAllow = z.string().transform((v, ctx) => {
  const parsed = parseEnvAllowlist(v);
  if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: `refused: ${parsed}` });
  return typeof parsed === "string" ? envAllowlist([]) : parsed;
});

const egressRules = z.string().transform((v, ctx) => {
  const parsed = parseEgressRules(v);
  if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: `must be a comma list of host:port, CIDR:port or CIDR: ${parsed}` });
  return typeof parsed === "string" ? [] : parsed;
});

const postgresUrl = z
  .string()
  .refine((v) => /^postgres(ql)?:\/\//.test(v) && URL.canParse(v), "must be a postgres:// URL");

const encryptionKey = z.string().transform((v, ctx) => {
  const text = v.trim();
  const key = /^[0-9a-f]{64}$/i.test(text) ? Buffer.from(text, "hex") : Buffer.from(text, "base64");
  if (key.length !== 32) ctx.addIssue({ code: "custom", message: "must be 32 bytes, as 64 hex digits or base64" });
  return key;
});

/** One schema per variable, so an error names exactly the variable at fault. */
const variables = {
  APP_ID: z.string().trim().regex(/^\d+$/, "must be the numeric App ID").optional(),
  PRIVATE_KEY: z.string().optional(),
  PRIVATE_KEY_PATH: z.string().optional(),
  WEBHOOK_SECRET: z.string().min(1, "must not be empty").optional(),
  WEBHOOK_PROXY_URL: z.url("must be a URL").optional(),
  GHE_HOST: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9.-]+(:\d+)?$/, "must be a host name (with an optional :port), without a scheme")
    .optional(),
  GHE_PROTOCOL: z.enum(["http", "https"], "must be http or https").optional(),
  PORT: wholeNumber(1, 65535).optional(),
  HOST: z.string().trim().min(1, "must not be empty").optional(),
  LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"], "must be trace, debug, info, warn, error, fatal or silent").optional(),
  DATABASE_URL: postgresUrl.optional(),
  PLANGATE_DATA_DIR: z.string().min(1).optional(),
  PLANGATE_ENCRYPTION_KEY: encryptionKey.optional(),
  PLANGATE_WORKERS: wholeNumber(0, 256).optional(),
  PLANGATE_REPO_CONCURRENCY: wholeNumber(1, 256).optional(),
  PLANGATE_PLAN_BATCH: wholeNumber(1, 32).optional(),
  PLANGATE_SANDBOX: z.enum(["auto", "bwrap", "none"], "must be auto, bwrap or none").optional(),
  PLANGATE_TERRAFORM_BIN: z.string().min(1).optional(),
  PLANGATE_TOFU_BIN: z.string().min(1).optional(),
  PLANGATE_ALLOW_FORK_PRS: booleanText.optional(),
  PLANGATE_JOB_TIMEOUT: duration.optional(),
  PLANGATE_WORKER_STALE_AFTER: duration.optional(),
  PLANGATE_GITHUB_WRITE_INTERVAL: duration.refine((ms) => ms <= 60_000, "must be at most 60s").optional(),
  PLANGATE_REDELIVER_EVERY: duration.refine((ms) => ms >= 10_000 && ms <= 86_400_000, "must be between 10s and 24h").optional(),
  PLANGATE_MASK_PATTERNS: z.string().transform((v, ctx) => {
    let list: unknown = v;
    if (v.trim().startsWith("[")) {
      try {
        list = JSON.parse(v);
      } catch {
        ctx.addIssue({ code: "custom", message: "must be a JSON array of regular expressions, or one regular expression" });
        return [];
      }
    }
    const sources = Array.isArray(list) ? list : [list];
    const patterns: RegExp[] = [];
    for (const source of sources) {
      try {
        if (typeof source !== "string" || !source) throw new Error("not a string");
        patterns.push(new RegExp(source, "g"));
      } catch {
        ctx.addIssue({ code: "custom", message: `holds an invalid regular expression: ${JSON.stringify(source)}` });
      }
    }
    return patterns;
  }).optional(),
  PLANGATE_MAX_COMMENTS: wholeNumber(1, 50).optional(),
  PLANGATE_METRICS_PORT: wholeNumber(1, 65535).optional(),
  PLANGATE_TEMPLATES_DIR: z.string().min(1).refine((d) => existsSync(d) && statSync(d).isDirectory(), "must be an existing directory").optional(),
  PLANGATE_PUBLIC_URL: z.url("must be a URL such as https://plangate.example.com").optional(),
  PLANGATE_OIDC_ISSUER: z
    .url("must be a URL such as https://plangate.example.com")
    .refine((v) => /^https?:\/\//.test(v) && !v.includes("?") && !v.includes("#"), "must be an http(s) URL without a query or fragment")
    .optional(),
  PLANGATE_OIDC_KEY_ROTATION: duration.refine((ms) => ms >= 3_600_000 && ms <= 366 * 86_400_000, "must be between 1h and 366d").optional(),
  PLANGATE_NOTIFY_URL: z.url("must be a URL such as https://hooks.slack.com/services/…").optional(),
  PLANGATE_NOTIFY_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
  GITHUB_CLIENT_ID: z.string().trim().regex(/^[A-Za-z0-9._-]+$/, "must be the App's client ID").optional(),
  GITHUB_CLIENT_SECRET: z.string().trim().min(16, "must be the App's client secret").optional(),
  PLANGATE_ENV_ALLOW: envAllow.optional(),
  PLANGATE_APPLY_ENV_ALLOW: envAllow.optional(),
  PLANGATE_SANDBOX_EGRESS_ALLOW: egressRules.optional(),
  PLANGATE_SANDBOX_EGRESS_DENY: egressRules.optional(),
  PLANGATE_SANDBOX_MEMORY: size.refine((n) => n >= 256 * 1024 ** 2, "must be at least 256m").optional(),
  PLANGATE_SANDBOX_PIDS: wholeNumber(16, 1_000_000).optional(),
  PLANGATE_SANDBOX_DISK: size.refine((n) => n >= 16 * 1024 ** 2, "must be at least 16m").optional(),
  PLANGATE_MAX_COMMIT_SIZE: size.refine((n) => n >= 1024 ** 2, "must be at least 1m").optional(),
  PLANGATE_MAX_PROJECTS: wholeNumber(1, 1_000_000).optional(),
  PLANGATE_POLICY_REPO: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/, "must be a repository as owner/name")
    .refine((v) => ![".", ".."].includes(v.split("/")[1]!), "must be a repository as owner/name")
    .transform((v) => {
      const [owner, name] = v.split("/") as [string, string];
      return { owner, name };
    })
    .optional(),
  PLANGATE_PROVIDER_MIRROR: z
    .string()
    .transform((v, ctx) => {
      const parsed = parseProviderMirror(v);
      if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: parsed });
      return typeof parsed === "string" ? undefined : parsed;
    })
    .optional(),
};

export type SettingName = keyof typeof variables;

/** Every environment variable plangate reads as a setting (Probot's included); deploy files are checked against it. */
export const SETTING_NAMES = Object.keys(variables) as readonly SettingName[];

type Parsed = { [K in SettingName]: z.output<(typeof variables)[K]> };

function parseVariables(env: NodeJS.ProcessEnv): Parsed {
  const parsed: Record<string, unknown> = {};
  for (const name of SETTING_NAMES) {
    const raw = env[name];
    const result = (variables[name] as z.ZodType).safeParse(raw === "" ? undefined : raw);
    if (!result.success) {
      const shown = name.includes("KEY") || name.includes("SECRET") || name.includes("MASK") || name === "DATABASE_URL" ? "" : ` (got "${raw}")`;
      throw new SettingsError(`${name} ${result.error.issues[0]?.message ?? "is invalid"}${shown}`);
    }
    parsed[name] = result.data;
  }
  return parsed as Parsed;
}

function readPrivateKey(v: Parsed): string | undefined {
  if (v.PRIVATE_KEY) {
    const text = v.PRIVATE_KEY.includes("-----BEGIN") ? v.PRIVATE_KEY : Buffer.from(v.PRIVATE_KEY, "base64").toString("utf8");
    if (!text.includes("-----BEGIN")) throw new SettingsError("PRIVATE_KEY must be a PEM private key (or its base64 encoding)");
    return text.replace(/\\n/g, "\n");
  }
  if (v.PRIVATE_KEY_PATH) {
    let text: string;
    try {
      text = readFileSync(v.PRIVATE_KEY_PATH, "utf8");
    } catch (error) {
      throw new SettingsError(`PRIVATE_KEY_PATH cannot be read: ${(error as Error).message}`);
    }
    if (!text.includes("-----BEGIN")) throw new SettingsError(`PRIVATE_KEY_PATH does not hold a PEM private key (${v.PRIVATE_KEY_PATH})`);
    return text;
  }
  return undefined;
}

/**
 * GitHub's web address for the host the App talks to: https://github.com, or
 * the GitHub Enterprise server's `<protocol>://<host>` (GHE_HOST, GHE_PROTOCOL).
 * Clones, the OAuth login and the dashboard's links to PRs all start here.
 */
export function githubWebBase(gheHost?: string, protocol: "http" | "https" = "https"): string {
  return gheHost ? `${protocol}://${gheHost}` : "https://github.com";
}

/** Reads and validates every setting; throws SettingsError naming the first bad one. */
export function readSettings(env: NodeJS.ProcessEnv, cwd = process.cwd()): Settings {
  const v = parseVariables(env);
  const privateKey = readPrivateKey(v);
  if (v.APP_ID && !privateKey) throw new SettingsError("APP_ID is set, so PRIVATE_KEY or PRIVATE_KEY_PATH is required");
  if (v.APP_ID && !v.WEBHOOK_SECRET) throw new SettingsError("APP_ID is set, so WEBHOOK_SECRET is required");
  if (v.GHE_PROTOCOL && !v.GHE_HOST) throw new SettingsError("GHE_PROTOCOL is set without GHE_HOST");
  if (v.PLANGATE_NOTIFY_URL && !v.PLANGATE_NOTIFY_SECRET) throw new SettingsError("PLANGATE_NOTIFY_URL is set, so PLANGATE_NOTIFY_SECRET is required (notifications are signed)");
  if (!v.GITHUB_CLIENT_ID !== !v.GITHUB_CLIENT_SECRET) throw new SettingsError("GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET go together (the dashboard's GitHub login): set both or neither");
  const protocol = v.GHE_PROTOCOL ?? "https";
  return {
    appId: v.APP_ID,
    privateKey,
    webhookSecret: v.WEBHOOK_SECRET ?? "development",
    webhookProxyUrl: v.WEBHOOK_PROXY_URL,
    gheHost: v.GHE_HOST,
    githubApiUrl: v.GHE_HOST ? `${githubWebBase(v.GHE_HOST, protocol)}/api/v3` : "https://api.github.com",
    githubWebUrl: githubWebBase(v.GHE_HOST, protocol),
    port: v.PORT ?? 3000,
    host: v.HOST,
    logLevel: v.LOG_LEVEL ?? "info",
    databaseUrl: v.DATABASE_URL,
    dataDir: path.resolve(cwd, v.PLANGATE_DATA_DIR ?? ".plangate"),
    encryptionKey: v.PLANGATE_ENCRYPTION_KEY,
    workers: v.PLANGATE_WORKERS ?? 2,
    repoConcurrency: v.PLANGATE_REPO_CONCURRENCY,
    planBatch: v.PLANGATE_PLAN_BATCH ?? 8, // plan-jobs.ts MAX_BATCH
    sandbox: v.PLANGATE_SANDBOX ?? "auto",
    terraformBin: v.PLANGATE_TERRAFORM_BIN ?? "terraform",
    tofuBin: v.PLANGATE_TOFU_BIN ?? "tofu",
    allowForkPrs: v.PLANGATE_ALLOW_FORK_PRS ?? false,
    jobTimeoutMs: v.PLANGATE_JOB_TIMEOUT ?? 30 * 60_000,
    workerStaleAfterMs: v.PLANGATE_WORKER_STALE_AFTER ?? 60_000,
    redeliverEveryMs: v.PLANGATE_REDELIVER_EVERY ?? 5 * 60_000,
    githubWriteIntervalMs: v.PLANGATE_GITHUB_WRITE_INTERVAL ?? 1000,
    metricsPort: v.PLANGATE_METRICS_PORT,
    maskPatterns: v.PLANGATE_MASK_PATTERNS ?? [],
    maxComments: v.PLANGATE_MAX_COMMENTS ?? 3,
    templatesDir: v.PLANGATE_TEMPLATES_DIR ? path.resolve(cwd, v.PLANGATE_TEMPLATES_DIR) : undefined,
    publicUrl: v.PLANGATE_PUBLIC_URL?.replace(/\/+$/, ""),
    oidcIssuer: v.PLANGATE_OIDC_ISSUER?.replace(/\/+$/, ""),
    oidcKeyRotationMs: v.PLANGATE_OIDC_KEY_ROTATION ?? 30 * 86_400_000,
    envAllow: v.PLANGATE_ENV_ALLOW ?? envAllowlist([]),
    applyEnvAllow: v.PLANGATE_APPLY_ENV_ALLOW ?? envAllowlist([]),
    egressAllow: v.PLANGATE_SANDBOX_EGRESS_ALLOW ?? [],
    egressDeny: v.PLANGATE_SANDBOX_EGRESS_DENY ?? [],
    sandboxMemoryBytes: v.PLANGATE_SANDBOX_MEMORY ?? 4 * 1024 ** 3,
    sandboxPids: v.PLANGATE_SANDBOX_PIDS ?? 512,
    sandboxDiskBytes: v.PLANGATE_SANDBOX_DISK ?? 10 * 1024 ** 3,
    maxCommitBytes: v.PLANGATE_MAX_COMMIT_SIZE ?? 1024 ** 3,
    maxProjects: v.PLANGATE_MAX_PROJECTS ?? 2000,
    providerMirror: v.PLANGATE_PROVIDER_MIRROR,
    notify: v.PLANGATE_NOTIFY_URL ? { url: v.PLANGATE_NOTIFY_URL, secret: v.PLANGATE_NOTIFY_SECRET! } : undefined,
    oauthClient: v.GITHUB_CLIENT_ID ? { id: v.GITHUB_CLIENT_ID, secret: v.GITHUB_CLIENT_SECRET! } : undefined,
    policyRepo: v.PLANGATE_POLICY_REPO,
  };
}
