import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet } from "jose";
import { cliConfigText } from "../../src/engines/terraform-home.js";

/** The machine image's read-only provider mirror: hashicorp/aws 5.100.0 only (FIELD-NOTES "The real AWS provider, offline"). */
export const AWS_PROVIDER_MIRROR = "/opt/tf-plugins";

/** Whether the mirror holds the AWS provider (a test that needs it is a toolTest on this). */
export const awsMirrorUsable = (): boolean => existsSync(path.join(AWS_PROVIDER_MIRROR, "registry.terraform.io/hashicorp/aws"));

/** Writes a terraform CLI config into `dir` that installs providers only from the mirror; returns its path (for TF_CLI_CONFIG_FILE). */
export function awsMirrorCliConfig(dir: string): string {
  const file = path.join(dir, "terraformrc");
  writeFileSync(file, cliConfigText({ kind: "filesystem", path: AWS_PROVIDER_MIRROR }));
  return file;
}

/** The account every fake role lives in. */
export const FAKE_ACCOUNT = "123456789012";

export interface FakeRole {
  /** The one phase whose tokens the role trusts: the token's `sub` must end in `:phase:<phase>`. */
  phase: "plan" | "apply";
  /** The audience the role's trust policy expects; sts.amazonaws.com by default. */
  audience?: string;
}

/** One request the STS answered. */
export interface StsRequest {
  action: string;
  roleArn?: string;
  sessionName?: string;
  accepted: boolean;
  /** Why it was refused: the error code and message sent back. */
  reason?: string;
  /** The web identity token as presented (so a test can look for it elsewhere). */
  token?: string;
  /** The access key issued (AssumeRoleWithWebIdentity) or presented (GetCallerIdentity). */
  accessKeyId?: string;
}

export interface FakeSts {
  url: string;
  port: number;
  /** The OpenID Connect issuer trusted, read at each request: set it once the issuer's URL is known. */
  issuer: string;
  requests: StsRequest[];
  close(): Promise<void>;
}

interface Session {
  roleArn: string;
  sessionName: string;
  assumedRoleId: string;
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const NS = "https://sts.amazonaws.com/doc/2011-06-15/";
const xmlEscape = (text: string) => text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
const roleName = (arn: string) => arn.slice(arn.lastIndexOf("/") + 1);
const uppercaseId = (prefix: string) => prefix + randomBytes(12).toString("base64url").toUpperCase().replace(/[^A-Z0-9]/g, "7").slice(0, 16);

/**
 * A small AWS STS for tests, trusting one OpenID Connect issuer: it answers
 * AssumeRoleWithWebIdentity (verifying the token against the issuer's
 * published keys on every request) and GetCallerIdentity (for the keys it
 * issued), in STS's XML, so the real AWS provider can be pointed at it.
 */
export async function startFakeSts(options: { issuer: string; roles: Record<string, FakeRole>; now?: () => Date }): Promise<FakeSts> {
  const sessions = new Map<string, Session>();
  const requests: StsRequest[] = [];
  const now = options.now ?? (() => new Date());

  const assume = async (form: URLSearchParams, record: StsRequest): Promise<string> => {
    const roleArn = form.get("RoleArn") ?? "";
    const sessionName = form.get("RoleSessionName") ?? "";
    const token = form.get("WebIdentityToken") ?? "";
    Object.assign(record, { roleArn, sessionName, token });
    const role = options.roles[roleArn];
    if (!role) throw new Refusal(403, "AccessDenied", `Not authorized to perform sts:AssumeRoleWithWebIdentity: no role ${roleArn}`);
    const audience = role.audience ?? "sts.amazonaws.com";
    const issuer = sts.issuer;
    const keys = await publishedKeys(issuer);
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(token, createLocalJWKSet(keys), { issuer, audience, algorithms: ["RS256"], currentDate: now() }));
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw new Refusal(400, "ExpiredTokenException", `Token expired: current date/time ${Math.floor(now().getTime() / 1000)} must be before the expiration date/time ${String(error.payload.exp)}`);
      if (error instanceof errors.JWTClaimValidationFailed && error.claim === "aud") throw new Refusal(400, "InvalidIdentityToken", "Incorrect token audience");
      if (error instanceof errors.JWTClaimValidationFailed && error.claim === "iss") throw new Refusal(400, "InvalidIdentityToken", "Incorrect token issuer");
      if (error instanceof errors.JWSSignatureVerificationFailed) throw new Refusal(400, "InvalidIdentityToken", "The token's signature does not verify with the issuer's key");
      throw new Refusal(400, "InvalidIdentityToken", `The token is invalid: ${(error as Error).message}`);
    }
    const subject = String(claims.sub ?? "");
    if (!subject.endsWith(`:phase:${role.phase}`)) throw new Refusal(403, "AccessDenied", `Not authorized to perform sts:AssumeRoleWithWebIdentity: the role trusts phase ${role.phase} only, the token's subject is ${subject}`);
    const accessKeyId = uppercaseId("ASIA");
    const assumedRoleId = `${uppercaseId("AROA")}:${sessionName}`;
    sessions.set(accessKeyId, { roleArn, sessionName, assumedRoleId });
    record.accessKeyId = accessKeyId;
    const expiration = new Date(now().getTime() + 3600_000).toISOString().replace(/\.\d+Z$/, "Z");
    return `<AssumeRoleWithWebIdentityResponse xmlns="${NS}">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>${xmlEscape(subject)}</SubjectFromWebIdentityToken>
    <Audience>${xmlEscape(audience)}</Audience>
    <AssumedRoleUser>
      <Arn>${xmlEscape(assumedRoleArn(roleArn, sessionName))}</Arn>
      <AssumedRoleId>${xmlEscape(assumedRoleId)}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>${randomBytes(96).toString("base64")}</SessionToken>
      <SecretAccessKey>${randomBytes(30).toString("base64")}</SecretAccessKey>
      <Expiration>${expiration}</Expiration>
      <AccessKeyId>${accessKeyId}</AccessKeyId>
    </Credentials>
    <Provider>arn:aws:iam::${FAKE_ACCOUNT}:oidc-provider/${xmlEscape(issuer.replace(/^https?:\/\//, ""))}</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>${randomUUID()}</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
`;
  };

  const callerIdentity = (req: IncomingMessage, record: StsRequest): string => {
    // Signature V4: "AWS4-HMAC-SHA256 Credential=AKID/date/region/sts/aws4_request, ..."; the signature itself is not checked.
    const accessKeyId = /Credential=([^/,\s]+)\//.exec(req.headers.authorization ?? "")?.[1];
    record.accessKeyId = accessKeyId;
    const session = accessKeyId ? sessions.get(accessKeyId) : undefined;
    if (!session) throw new Refusal(403, "InvalidClientTokenId", "The security token included in the request is invalid.");
    record.roleArn = session.roleArn;
    record.sessionName = session.sessionName;
    return `<GetCallerIdentityResponse xmlns="${NS}">
  <GetCallerIdentityResult>
    <Arn>${xmlEscape(assumedRoleArn(session.roleArn, session.sessionName))}</Arn>
    <UserId>${xmlEscape(session.assumedRoleId)}</UserId>
    <Account>${FAKE_ACCOUNT}</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata>
    <RequestId>${randomUUID()}</RequestId>
  </ResponseMetadata>
</GetCallerIdentityResponse>
`;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
    const record: StsRequest = { action: form.get("Action") ?? "", accepted: false };
    requests.push(record);
    try {
      const body =
        record.action === "AssumeRoleWithWebIdentity" ? await assume(form, record)
        : record.action === "GetCallerIdentity" ? callerIdentity(req, record)
        : (() => { throw new Refusal(400, "InvalidAction", `Could not find operation ${record.action}`); })();
      record.accepted = true;
      res.writeHead(200, { "content-type": "text/xml" }).end(body);
    } catch (error) {
      const refusal = error instanceof Refusal ? error : new Refusal(500, "InternalFailure", (error as Error).message);
      record.reason = `${refusal.code}: ${refusal.message}`;
      res.writeHead(refusal.status, { "content-type": "text/xml" }).end(errorXml(refusal));
    }
  };

  const server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const sts: FakeSts = {
    url: `http://127.0.0.1:${port}`,
    port,
    issuer: options.issuer,
    requests,
    close: () => new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((error) => (error ? reject(error) : resolve()));
    }),
  };
  return sts;
}

/** The ARN STS gives a role's session. */
export const assumedRoleArn = (roleArn: string, sessionName: string) => `arn:aws:sts::${FAKE_ACCOUNT}:assumed-role/${roleName(roleArn)}/${sessionName}`;

const errorXml = (refusal: Refusal) => `<ErrorResponse xmlns="${NS}">
  <Error>
    <Type>${refusal.status >= 500 ? "Receiver" : "Sender"}</Type>
    <Code>${refusal.code}</Code>
    <Message>${xmlEscape(refusal.message)}</Message>
  </Error>
  <RequestId>${randomUUID()}</RequestId>
</ErrorResponse>
`;

/** The issuer's keys, fetched afresh (discovery document, then jwks_uri) as STS does when it cannot use a cached copy. */
async function publishedKeys(issuer: string): Promise<JSONWebKeySet> {
  try {
    const discovery = (await (await fetch(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`)).json()) as { issuer?: string; jwks_uri?: string };
    if (discovery.issuer !== issuer || !discovery.jwks_uri) throw new Error(`the discovery document names issuer ${String(discovery.issuer)} and jwks_uri ${String(discovery.jwks_uri)}`);
    const response = await fetch(discovery.jwks_uri);
    if (!response.ok) throw new Error(`${discovery.jwks_uri} answered ${response.status}`);
    return (await response.json()) as JSONWebKeySet;
  } catch (error) {
    throw new Refusal(400, "InvalidIdentityToken", `Couldn't retrieve verification key from your identity provider: ${(error as Error).message}`);
  }
}
