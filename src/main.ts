import http from "node:http";
import type { AddressInfo } from "node:net";
import { chmod, mkdir } from "node:fs/promises";
import path from "node:path";
import { pino, type Logger } from "pino";
import { Probot, Server, run as runProbotSetup } from "probot";
import { openDatabase } from "./db/open-database.js";
import { migrate } from "./db/migrate.js";
import { createPool, warmPool, type Pool } from "./db/pool.js";
import { chooseSandbox, Sandbox } from "./sandbox/sandbox.js";
import { databaseExposureWarnings, egressFilterFor } from "./sandbox/egress/egress-from-settings.js";
import { capSettings, formatSize, SandboxCaps } from "./sandbox/limits.js";
import { ENGINES } from "./engines/registry.js";
import type { Clock } from "./sandbox/clock.js";
import { ProjectRuns } from "./run/project-runs.js";
import { TerraformHomes } from "./engines/terraform-home.js";
import { octokitGitHubFactory, warmAppAuth } from "./github/octokit-github.js";
import { OrgPolicySource } from "./worker/org-policies.js";
import { plangateOctokit } from "./github/rate-limits.js";
import { healthHandler } from "./web/health.js";
import { Metrics } from "./web/metrics.js";
import { CommitExports } from "./git/commit-exports.js";
import { RepoMirrors } from "./git/repo-mirror.js";
import { plangateApp } from "./index.js";
import { CommentRenderer } from "./render/comment-renderer.js";
import { ReportHandoff } from "./worker/plan/report-handoff.js";
import { loadTemplates, type Templates } from "./render/templates.js";
import { RunLinks } from "./web/run-links.js";
import { runPageHandler } from "./web/run-page.js";
import { dashboardHandler } from "./web/dashboard.js";
import { socketFolderProblem } from "./sandbox/egress/egress-filter.js";
import { keepConnectionsAlive } from "./web/keep-alive.js";
import { limitRequestBodies } from "./web/body-limit.js";
import { encryptionKeyFor } from "./settings/encryption-key.js";
import { verifyEncryptionKey } from "./db/encryption-key-check.js";
import { findBinary } from "./settings/find-binary.js";
import { SettingsError, type Settings } from "./settings/settings.js";
import type { WorkerDeps } from "./worker/deps.js";
import { EXPRESS_SLOTS, startWorker } from "./worker/start-worker.js";
import { SandboxLanes } from "./sandbox/lanes.js";
import { SigningKeys } from "./credentials/signing-keys.js";
import { RunTokens } from "./credentials/run-tokens.js";
import { systemClock } from "./sandbox/clock.js";
import { oidcIssuerHandler } from "./web/oidc-issuer.js";
import { RedeliverySweeps } from "./redelivery/redelivery-sweeps.js";
import type { SweepResult } from "./redelivery/sweep-deliveries.js";

export interface StartOptions {
  server: boolean;
  worker: boolean;
  host?: string;
  log?: Logger;
  /** What sandboxed runs' timeouts and jobs' deadlines are measured on (default: the system's clock); a test's can be moved by hand. */
  clock?: Clock;
}

export interface Plangate {
  /** The port the webhook server listens on, when it runs; else the probes and metrics port (PLANGATE_METRICS_PORT). */
  port?: number;
  pool: Pool;
  /** A server's redelivery sweeps (on start and every PLANGATE_REDELIVER_EVERY); sweep() sweeps now. */
  redeliveries?: { sweep(): Promise<SweepResult> };
  stop(): Promise<void>;
}

function resolveEngine(variable: string, configured: string, isDefault: boolean, log: Logger): string {
  const found = findBinary(configured);
  if (found) return found;
  if (!isDefault) throw new SettingsError(`${variable} is "${configured}", which is not an executable file`);
  log.warn({ variable }, `${configured} is not on PATH: projects using it will fail to plan until it is installed or ${variable} is set`);
  return configured;
}

/** Where run pages are served: PLANGATE_PUBLIC_URL, else this server on localhost (said once at start). */
function publicUrlOf(settings: Settings, log: Logger): string {
  if (settings.publicUrl) return settings.publicUrl;
  const url = `http://localhost:${settings.port}`;
  log.warn({ url }, "PLANGATE_PUBLIC_URL is not set: run page links (check runs' details, comments) point at this machine; set it to the address GitHub users can reach");
  return url;
}

async function workerDeps(settings: Settings, pool: Pool, probot: Probot, log: Logger, shared: Shared, databaseUrl: string, clock?: Clock): Promise<WorkerDeps> {
  const env = process.env;
  const caps = new SandboxCaps(capSettings(settings));
  const { summary, ...how } = caps.mechanism;
  const mirrors = new RepoMirrors(path.join(settings.dataDir, "mirrors"), settings.githubWebUrl, undefined, {
    maxCommitBytes: settings.maxCommitBytes,
    maxProjects: settings.maxProjects,
  });
  // The data dir is this process's alone: exports left by a process that died are swept here.
  const mountPoints = [...new Set(ENGINES.all.flatMap((e) => e.writableDirs(".")))];
  const exports = new CommitExports(path.join(settings.dataDir, "exports"), mirrors, (derived) => {
    shared.metrics.commitExports.inc();
    if (derived) shared.metrics.commitExportsDerived.inc();
  }, mountPoints);
  await exports.sweep();
  for (const warning of await databaseExposureWarnings(settings, databaseUrl)) log.warn({ setting: "PLANGATE_SANDBOX_EGRESS_ALLOW" }, warning);
  log.info({ ...how, memoryCap: formatSize(settings.sandboxMemoryBytes), pidsCap: settings.sandboxPids, diskCap: formatSize(settings.sandboxDiskBytes) }, `sandbox caps: ${summary}`);
  // The egress filter refuses the database this process really uses (DATABASE_URL or the embedded one).
  const kind = chooseSandbox(settings.sandbox, (m) => log.warn(m));
  const sockets = kind === "bwrap" ? socketFolderProblem() : undefined;
  if (sockets) throw new SettingsError(sockets);
  const sandbox = new Sandbox(kind, { caps, egress: egressFilterFor(settings, databaseUrl), clock, lanes: settings.workers > 0 ? new SandboxLanes(settings.workers) : undefined });
  const tools = {
    sandbox,
    homes: new TerraformHomes(path.join(settings.dataDir, "terraform"), { providerMirror: settings.providerMirror }),
    binaries: {
      terraformBin: resolveEngine("PLANGATE_TERRAFORM_BIN", settings.terraformBin, !env.PLANGATE_TERRAFORM_BIN, log),
      tofuBin: resolveEngine("PLANGATE_TOFU_BIN", settings.tofuBin, !env.PLANGATE_TOFU_BIN, log),
    },
    depsCacheDir: path.join(settings.dataDir, "cdktf-deps"),
  };
  const tokens = new RunTokens(pool, shared.signingKeys, shared.issuer, clock ?? systemClock);
  const runs = new ProjectRuns({ engines: ENGINES, tools, maskPatterns: settings.maskPatterns, envAllow: settings.envAllow, applyEnvAllow: settings.applyEnvAllow, encryptionKey: shared.encryptionKey, tokens });
  const github = octokitGitHubFactory(probot, Number(settings.appId), shared.metrics.github);
  return {
    pool,
    github,
    ...(settings.policyRepo ? { orgPolicies: new OrgPolicySource(github, settings.policyRepo) } : {}),
    metrics: shared.metrics,
    notify: settings.notify,
    mirrors,
    exports,
    sandbox,
    runs,
    templates: shared.templates,
    commentRenderer: new CommentRenderer(shared.templates, settings.templatesDir),
    reportHandoff: new ReportHandoff(),
    log,
    dataDir: settings.dataDir,
    encryptionKey: shared.encryptionKey,
    jobTimeoutMs: settings.jobTimeoutMs,
    allowForkPrs: settings.allowForkPrs,
    maskPatterns: settings.maskPatterns,
    envAllow: settings.envAllow,
    applyEnvAllow: settings.applyEnvAllow,
    maxComments: settings.maxComments,
    repoConcurrency: settings.repoConcurrency,
    planBatch: settings.planBatch,
    runLinks: shared.runLinks,
  };
}

/** What the server and the worker of one process share. */
interface Shared {
  templates: Templates;
  encryptionKey: Buffer;
  runLinks: RunLinks;
  metrics: Metrics;
  /** The run-token issuer's URL and key ring (DESIGN.md section 3). */
  issuer: string;
  signingKeys: SigningKeys;
}

/** The composition root: builds the real database, queue, GitHub client, sandbox and server from settings. */
export async function startPlangate(settings: Settings, options: StartOptions): Promise<Plangate> {
  const log = options.log ?? pino({ level: settings.logLevel, name: "plangate" });
  // Workspaces are entered by the sandbox's unprivileged user: the data dir must be traversable.
  await mkdir(path.join(settings.dataDir, "runs"), { recursive: true });
  await chmod(settings.dataDir, 0o755);
  const database = await openDatabase(settings, log);
  // A worker keeps a connection per job slot open, beside the queue's LISTEN and the webhooks' (warmed below); at most one
  // per job slot of both worker pools, their two LISTENs and a few for the webhooks, the heartbeat and the run pages.
  const working = options.worker && settings.workers > 0;
  const pool = createPool(database.url, working ? Math.max(10, settings.workers + 1 + EXPRESS_SLOTS + 6) : 10, working ? settings.workers + 2 : 1);
  const applied = await migrate(pool);
  if (applied.length) log.info({ applied }, "migrations applied");

  if (!settings.appId) {
    if (!options.server) throw new SettingsError("APP_ID is not set: register the GitHub App first (npm start serves the registration page)");
    log.info("APP_ID is not set: serving the GitHub App registration page (Probot's manifest flow, from app.yml)");
    const setup = await runProbotSetup(() => undefined, { env: { ...process.env, PORT: String(settings.port) } });
    return { port: setup.port, pool, stop: async () => { await setup.stop(); await pool.end(); await database.stop(); } };
  }

  await warmPool(pool);
  const encryptionKey = await encryptionKeyFor(settings.encryptionKey, settings.dataDir, (m) => log.warn(m));
  try {
    await verifyEncryptionKey(pool, encryptionKey);
  } catch (error) {
    await pool.end();
    await database.stop();
    throw error;
  }
  const publicUrl = publicUrlOf(settings, log);
  const issuer = settings.oidcIssuer ?? publicUrl;
  if (!issuer.startsWith("https://")) log.warn({ issuer }, "the OIDC issuer (PLANGATE_OIDC_ISSUER, else PLANGATE_PUBLIC_URL) is not https: AWS, GCP and Azure refuse an issuer that is not, so projects' credentials work only with relying parties that accept it");
  const shared: Shared = {
    templates: await loadTemplates(settings.templatesDir),
    encryptionKey,
    runLinks: new RunLinks(encryptionKey, publicUrl),
    metrics: new Metrics(pool),
    issuer,
    signingKeys: new SigningKeys(pool, encryptionKey, { rotationMs: settings.oidcKeyRotationMs }, options.clock ?? systemClock),
  };
  const probotOptions = { appId: settings.appId, privateKey: settings.privateKey, secret: settings.webhookSecret, baseUrl: settings.githubApiUrl, log, Octokit: plangateOctokit(settings.githubWriteIntervalMs) };
  let server: Server | undefined;
  let sweeps: RedeliverySweeps | undefined;
  if (options.server) {
    server = new Server({ port: settings.port, host: options.host, webhookProxy: settings.webhookProxyUrl, log, Probot: Probot.defaults(probotOptions) });
    server.addHandler(runPageHandler(pool, shared.runLinks, shared.templates, settings.githubWebUrl));
    server.addHandler(healthHandler(pool, shared.metrics));
    server.addHandler(oidcIssuerHandler(shared.issuer, shared.signingKeys));
    server.addHandler(dashboardHandler({ ...shared, pool, publicUrl, githubWebUrl: settings.githubWebUrl, githubApiUrl: settings.githubApiUrl, oauthClient: settings.oauthClient, log }));
    await server.load(plangateApp({ pool, templates: shared.templates, allowForkPrs: settings.allowForkPrs }));
    const listening = await server.start();
    limitRequestBodies(listening, log);
    keepConnectionsAlive(listening);
    // GitHub does not retry a delivery that failed: the server asks for those again from the App's delivery log.
    const hooks = octokitGitHubFactory(new Probot(probotOptions), Number(settings.appId), shared.metrics.github).hookDeliveries();
    sweeps = new RedeliverySweeps({ pool, hooks, log }, settings.redeliverEveryMs, shared.metrics.redelivery);
    sweeps.start();
  }
  // A worker-only process has no webhook server: its health and metrics are served on a port of their own.
  const probe = !options.server && settings.metricsPort ? await serveProbes(settings.metricsPort, options.host, healthHandler(pool, shared.metrics)) : undefined;
  if (probe) log.info({ port: probe.port }, "serving /healthz, /readyz and /metrics");
  let runner: { stop(): Promise<void> } | undefined;
  let sandbox: Sandbox | undefined;
  let commentRenderer: CommentRenderer | undefined;
  if (options.worker && settings.workers > 0) {
    const probot = new Probot(probotOptions);
    const deps = await workerDeps(settings, pool, probot, log, shared, database.url, options.clock);
    sandbox = deps.sandbox;
    sandbox.warm();
    if (sandbox.kind === "bwrap" && settings.planBatch > 1 && !(await sandbox.nests())) {
      log.warn({ setting: "PLANGATE_PLAN_BATCH" }, "a bubblewrap cannot run inside the sandbox here (nested user namespaces refused): every project is planned in a sandbox entry of its own");
    }
    // A bad key fails the first plan's token mint, where it is reported: here it only loses the warm-up.
    await warmAppAuth(probot).catch((error: unknown) => log.debug({ err: error }, "could not sign an App JWT ahead"));
    commentRenderer = deps.commentRenderer;
    runner = await startWorker(deps, settings.workers, settings.workerStaleAfterMs);
    log.info({ concurrency: settings.workers }, "worker started");
  }
  return {
    port: server?.port ?? probe?.port,
    pool,
    redeliveries: sweeps,
    async stop() {
      await server?.stop();
      await sweeps?.stop();
      await probe?.stop();
      await runner?.stop();
      await sandbox?.close();
      await commentRenderer?.close();
      await pool.end();
      await database.stop();
    },
  };
}

/** A plain HTTP listener for the probes and metrics of a process without the webhook server; anything else is 404. */
async function serveProbes(port: number, host: string | undefined, handle: ReturnType<typeof healthHandler>): Promise<{ port: number; stop(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    handle(req, res).then(
      (answered) => void (answered || res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n")),
      () => void res.writeHead(500).end(),
    );
  });
  keepConnectionsAlive(server);
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
