import type { IncomingMessage, ServerResponse } from "node:http";
import { SIGNING_ALG, type SigningKeys } from "../credentials/signing-keys.js";

/** The claims a run token may carry (DESIGN.md section 3). */
export const CLAIMS_SUPPORTED = [
  "iss", "sub", "aud", "iat", "nbf", "exp", "jti",
  "repository", "repository_id", "repository_owner", "project", "workspace", "phase", "event",
  "pull_request", "sha", "ref", "actor", "run_id", "plan_fingerprint", "approvers",
];

/** Relying parties may keep both documents this long; a key is published an hour before it signs (signing-keys.ts). */
const CACHE = "public, max-age=300";

/** The discovery document of plangate's run-token issuer. */
export function discoveryDocument(issuer: string) {
  return {
    issuer,
    jwks_uri: `${issuer}/.well-known/jwks`,
    response_types_supported: ["id_token"],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: [SIGNING_ALG],
    claims_supported: CLAIMS_SUPPORTED,
  };
}

/**
 * GET /.well-known/openid-configuration and /.well-known/jwks: the issuer's
 * discovery document and public keys, with no login, from every server
 * process (they all read the one key ring). Also under the issuer URL's own
 * path, for an issuer such as https://example.com/plangate.
 */
export function oidcIssuerHandler(issuer: string, keys: SigningKeys) {
  const prefix = new URL(issuer).pathname.replace(/\/+$/, "");
  const paths = new Set(["", prefix]);
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const url = (req.url ?? "/").split("?", 1)[0]!;
    const base = [...paths].find((p) => url === `${p}/.well-known/openid-configuration` || url === `${p}/.well-known/jwks`);
    if (base === undefined) return false;
    let body: unknown;
    try {
      body = url.endsWith("/jwks") ? await keys.jwks() : discoveryDocument(issuer);
    } catch (error) {
      res.writeHead(503, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" }).end(`issuer keys unavailable: ${(error as Error).message}\n`);
      return true;
    }
    res.writeHead(200, { "content-type": "application/json", "cache-control": CACHE, "access-control-allow-origin": "*" }).end(req.method === "HEAD" ? undefined : JSON.stringify(body));
    return true;
  };
}
