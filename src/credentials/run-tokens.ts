import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { appendAuditEvent } from "../audit/audit-log.js";
import { inTransaction, type Pool } from "../db/pool.js";
import { sha256Hex } from "../plans/canonical.js";
import type { Clock } from "../sandbox/clock.js";
import type { CredentialsConfig } from "../settings/repo-config.js";
import { audiencesOf, cloudCredentials, type RunIdentityFiles, type TokenPhase } from "./cloud-credentials.js";
import { MAX_TOKEN_MS, SIGNING_ALG, type SigningKeys } from "./signing-keys.js";

/** The event a run answers, as the token's `event` claim names it. */
export type TokenEvent = "pull_request" | "command" | "merge" | "merge_group" | "drift";

/** Who and what a run is for: everything the token's claims say besides the project and phase. */
export interface RunIdentity {
  /** owner/name */
  repository: string;
  /** GitHub's id of the repository, asked when a token is minted (a repository deleted and made again under its name has another). */
  repositoryId: number;
  /** Absent for drift. */
  pullRequest?: number;
  sha: string;
  /** The ref the commit was planned or applied for, e.g. refs/pull/12/head or refs/heads/main. */
  ref: string;
  /** Who caused the run: the PR's author, the commenter, the merger; "plangate" for drift. */
  actor: string;
  /** The run's id (absent for drift, which keeps no run). */
  runId?: number;
  /** An apply's: the change that was approved, and by whom (the apply token carries both). */
  approved?: { fingerprint: string; approvers: string[] };
}

export interface TokenRequest {
  credentials: CredentialsConfig;
  phase: TokenPhase;
  event: TokenEvent;
  project: { name: string; workspace: string };
  identity: RunIdentity;
  /** When the phase's time is up (ms since the epoch): the token expires then, at most MAX_TOKEN_MS from now. */
  deadline: number;
  /** The run's credentials folder, as the sandbox sees it. */
  dir: string;
}

/** A run's minted identity: files and variables for the sandbox, and the tokens (masked in everything the run outputs). */
export interface IssuedCredentials extends RunIdentityFiles {
  tokens: string[];
}

/** A token's claims (DESIGN.md section 3). */
export type RunClaims = Record<string, unknown> & { iss: string; sub: string; aud: string; exp: number; jti: string };

export const subjectOf = (repository: string, project: string, workspace: string, phase: TokenPhase) =>
  `repo:${repository}:project:${project}:workspace:${workspace}:phase:${phase}`;

/** The claims of one token, pure: `now` and `jti` are given. */
export function runClaims(issuer: string, request: Omit<TokenRequest, "credentials" | "dir">, audience: string, now: number, jti: string): RunClaims {
  const { identity, phase, project } = request;
  const iat = Math.floor(now / 1000);
  const exp = Math.max(iat + 60, Math.floor(Math.min(request.deadline, now + MAX_TOKEN_MS) / 1000));
  const [owner] = identity.repository.split("/");
  return {
    iss: issuer,
    sub: subjectOf(identity.repository, project.name, project.workspace, phase),
    aud: audience,
    iat,
    nbf: iat,
    exp,
    jti,
    repository: identity.repository,
    repository_id: identity.repositoryId,
    repository_owner: owner!,
    project: project.name,
    workspace: project.workspace,
    phase,
    event: request.event,
    ...(identity.pullRequest !== undefined ? { pull_request: identity.pullRequest } : {}),
    sha: identity.sha,
    ref: identity.ref,
    actor: identity.actor,
    ...(identity.runId !== undefined ? { run_id: identity.runId } : {}),
    // Only an apply's token names the approved change: a relying party can pin the apply role to it.
    ...(phase === "apply" && identity.approved ? { plan_fingerprint: sha256Hex(identity.approved.fingerprint), approvers: [...identity.approved.approvers].sort() } : {}),
  };
}

/**
 * plangate as an OpenID Connect issuer for its runs: mints one token per
 * audience a project's `credentials` need, just before a sandboxed plan or
 * apply, and audits each issuance (`credentials.issued`, its claims, never
 * the token). The token itself is never stored or logged.
 */
export class RunTokens {
  constructor(
    private readonly pool: Pool,
    private readonly keys: SigningKeys,
    readonly issuer: string,
    private readonly clock: Pick<Clock, "now">,
  ) {}

  async issue(request: TokenRequest): Promise<IssuedCredentials> {
    const { identity } = request;
    const key = await this.keys.signingKey();
    const now = this.clock.now();
    const claims = audiencesOf(request.credentials).map((audience) => runClaims(this.issuer, request, audience, now, randomUUID()));
    const tokens = await Promise.all(claims.map((c) => new SignJWT(c).setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid, typ: "JWT" }).sign(key.privateKey)));
    await inTransaction(this.pool, async (tx) => {
      for (const c of claims) {
        await appendAuditEvent(tx, {
          action: "credentials.issued",
          actor: "plangate",
          repo: identity.repository,
          pullNumber: identity.pullRequest ?? null,
          project: request.project.name,
          workspace: request.project.workspace,
          sha: identity.sha,
          runId: identity.runId,
          details: { kid: key.kid, claims: c },
        });
      }
    });
    return { ...cloudCredentials(request.credentials, request.phase, request.dir, tokens, identity.runId), tokens };
  }
}
