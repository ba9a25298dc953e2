import type { Settings } from "../../settings/settings.js";
import { EgressFilter } from "./egress-filter.js";
import { databaseAddress } from "./egress-policy.js";

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
