import { existsSync } from "node:fs";
import { pino } from "pino";
import { auditExport } from "./audit-export.js";
import { verifyAuditChain } from "../audit/verify.js";
import { migrate } from "../db/migrate.js";
import { openDatabase } from "../db/open-database.js";
import { createPool } from "../db/pool.js";
import { startPlangate } from "../main.js";
import { localPlan } from "./local-plan.js";
import { policyTest } from "./policy-test.js";
import { queueDriftCheck } from "./drift-now.js";
import { isSubcommand } from "./subcommands.js";
import { packageVersion } from "./version.js";
import { readSettings, SettingsError, type Settings } from "../settings/settings.js";

const USAGE = `usage: plangate <command>
       plangate --version


  start          webhook server and worker (what npm start runs)
  plan DIR       plan a local directory in the sandbox and print the comment plangate would post
                 (and its .plangate.yml policies' results; exits 1 when a deny matches)
  policy test PLAN.json [--config FILE]
                 evaluate .plangate.yml's policies (or FILE's) against a \`terraform show -json\` plan;
                 exits 1 when a deny matches (plangate policy test --help: every option)
  worker         a worker only, to scale out against the same database
  migrate        apply database migrations
  audit verify   check the audit log's hash chain; exits 1 at the first broken row
  audit export [--since ID|TIME]
                 the audit events as NDJSON on stdout, one per line with its hash and prev_hash;
                 --since: after event ID, or from the first event at or after an ISO 8601 TIME
  drift [OWNER/REPO]
                 check drift now: queue a plan of the default branch of every project with a drift schedule
                 (of OWNER/REPO, or of every repository that schedules drift); workers open or close the issues
`;

async function withPool<T>(settings: Settings, fn: (pool: ReturnType<typeof createPool>) => Promise<T>): Promise<T> {
  const log = pino({ level: settings.logLevel === "info" ? "warn" : settings.logLevel });
  const database = await openDatabase(settings, log);
  const pool = createPool(database.url, 2);
  try {
    return await fn(pool);
  } finally {
    await pool.end();
    await database.stop();
  }
}

async function serve(settings: Settings, server: boolean): Promise<void> {
  const app = await startPlangate(settings, { server, worker: true, host: settings.host });
  const shutdown = async () => {
    await app.stop();
    process.exit(0);
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

async function main(argv: string[]): Promise<number> {
  if (existsSync(".env")) process.loadEnvFile(".env"); // Probot's registration flow writes APP_ID and keys there
  const [command, sub] = argv;
  if (!command || command === "help" || command === "--help") {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  if (command === "--version" || command === "-v") {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const settings = readSettings(process.env);
  if (!isSubcommand(command)) return unknownCommand(argv);
  switch (command) {
    case "start":
      await serve(settings, true);
      return -1;
    case "worker":
      await serve(settings, false);
      return -1;
    case "policy":
      if (sub !== "test") break;
      return policyTest(argv.slice(2), (t) => process.stdout.write(`${t}\n`), (t) => process.stderr.write(`${t}\n`), settings.templatesDir);
    case "plan":
      if (!sub) break;
      return localPlan(settings, sub, (t) => process.stdout.write(`${t}\n`), (t) => process.stderr.write(`${t}\n`));
    case "migrate": {
      const applied = await withPool(settings, (pool) => migrate(pool));
      console.log(applied.length ? `applied: ${applied.join(", ")}` : "database is up to date");
      return 0;
    }
    case "drift":
      return withPool(settings, async (pool) => {
        const queued = await queueDriftCheck(pool, sub);
        if (!queued.ok) {
          console.error(`plangate: ${queued.message}`);
          return 2;
        }
        console.log(`drift check queued for ${sub ?? "every repository with a drift schedule"}: workers plan the default branch and open, update or close plangate:drift issues`);
        return 0;
      });
    case "audit":
      if (sub === "export") return auditExport(argv.slice(2), (fn) => withPool(settings, fn));
      if (sub !== "verify") break;
      return withPool(settings, async (pool) => {
        const result = await verifyAuditChain(pool);
        if (result.ok) {
          console.log(`audit chain intact: ${result.checked} events verified`);
          return 0;
        }
        console.error(`audit chain broken at audit_events.id=${result.brokenId}: ${result.reason} (${result.checked} events before it verified)`);
        return 1;
      });
    default:
      return unhandled(command);
  }
  return unknownCommand(argv);
}

function unknownCommand(argv: string[]): number {
  process.stderr.write(`plangate: unknown command "${argv.join(" ")}"\n\n${USAGE}`);
  return 2;
}

/** A SUBCOMMANDS entry without a case above does not compile. */
function unhandled(command: never): never {
  throw new Error(`plangate: no handler for the command "${String(command)}"`);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    const message = error instanceof SettingsError ? `invalid setting: ${error.message}` : (error as Error).stack ?? String(error);
    process.stderr.write(`plangate: ${message}\n`);
    process.exit(error instanceof SettingsError ? 2 : 1);
  },
);
