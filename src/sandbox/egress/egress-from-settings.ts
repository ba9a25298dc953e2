import type { Settings } from "../../settings/settings.js";
import { EgressFilter } from "./egress-filter.js";
import { databaseAddress, EgressPolicy, hostPort, type Lookup } from "./egress-policy.js";

/**
 * The egress filter an operator configured: PLANGATE_SANDBOX_EGRESS_ALLOW and
 * _DENY, with plangate's own database (the URL it actually connects to, the
 * embedded one included) and its own port refused unless allowed.
 */
export function egressFilterFor(settings: Pick<Settings, "egressAllow" | "egressDeny" | "port">, databaseUrl: string | undefined): EgressFilter {
  return new EgressFilter({
    allow: settings.egressAllow,
    deny: settings.egressDeny,
    database: databaseAddress(databaseUrl),
    ownPort: settings.port,
  });
}

/**
 * What the start log warns about: each PLANGATE_SANDBOX_EGRESS_ALLOW entry
 * that opens plangate's own database (the URL it really connects to) to
 * sandboxed plans and applies. The entry stays open: an operator may mean
 * it (terraform state in the same server), but must know what it exposes.
 */
export async function databaseExposureWarnings(settings: Pick<Settings, "egressAllow">, databaseUrl: string | undefined, lookup?: Lookup): Promise<string[]> {
  const database = databaseAddress(databaseUrl);
  if (!database) return [];
  const policy = new EgressPolicy({ allow: settings.egressAllow, deny: [], lookup });
  const where = hostPort(database.host, database.port);
  return (await policy.allowEntriesReaching(database)).map(
    (rule) =>
      `PLANGATE_SANDBOX_EGRESS_ALLOW entry ${rule.text} opens plangate's own database (${where}) to every sandboxed plan and apply: a pull request's state backend or provider can read and write plangate's tables; keep terraform state on another database server or port`,
  );
}
