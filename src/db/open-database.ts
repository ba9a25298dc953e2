import type { Logger } from "pino";
import type { Settings } from "../settings/settings.js";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "./embedded.js";

/** The database of DATABASE_URL, or an embedded PostgreSQL under the data dir when it is unset. */
export async function openDatabase(settings: Pick<Settings, "databaseUrl" | "dataDir">, log: Logger): Promise<EmbeddedDatabase> {
  if (settings.databaseUrl) return { url: settings.databaseUrl, stop: async () => undefined };
  log.info({ dataDir: settings.dataDir }, "DATABASE_URL is not set: starting an embedded PostgreSQL");
  return startEmbeddedPostgres(settings.dataDir, (line) => log.debug({ postgres: line.trim() }, "embedded postgres"));
}
