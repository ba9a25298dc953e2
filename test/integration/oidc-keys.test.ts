import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from "jose";
import { RunTokens, type TokenRequest } from "../../src/credentials/run-tokens.js";
import { leadOf, MAX_TOKEN_MS, SigningKeys } from "../../src/credentials/signing-keys.js";
import { liveSigningKeys, type StoredSigningKey } from "../../src/db/oidc-keys.js";
import { createPool, type Pool } from "../../src/db/pool.js";
import type { CredentialsConfig } from "../../src/settings/repo-config.js";
import { oidcIssuerHandler } from "../../src/web/oidc-issuer.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

/**
 * plangate's OIDC issuer against real Postgres: the key ring every process
 * shares, its rotation as relying parties see it, the sealed private keys,
 * the audit of each issuance, and the two public endpoints.
 */

const HOUR = 3_600_000;
const ROTATION = 30 * 24 * HOUR;
const LEAD = leadOf(ROTATION);
const ISSUER = "https://plangate.example.com";

let db: TestDatabase;
const pools: Pool[] = [];
const encryptionKey = randomBytes(32);

/** The test's clock: it moves only when the test moves it. */
let t = Date.UTC(2027, 0, 4, 9);
const clock = { now: () => t };

/** A pool of its own: another plangate process, as far as the key ring can tell. */
const processPool = () => {
  const pool = createPool(db.url, 2);
  pools.push(pool);
  return pool;
};
const keysOn = (pool: Pool, key = encryptionKey) => new SigningKeys(pool, key, { rotationMs: ROTATION }, clock);

/** Every stored key, retired ones included, oldest first. */
const storedKeys = (): Promise<StoredSigningKey[]> => liveSigningKeys(db.pool, new Date(0));
const rowCount = async () => Number((await db.pool.query<{ n: string }>("select count(*) as n from oidc_signing_keys")).rows[0]!.n);
const kidsOf = (jwks: { keys: { kid?: string }[] }) => jwks.keys.map((k) => k.kid);

beforeAll(async () => {
  db = await createTestDatabase();
});
beforeEach(async () => {
  // Each test starts with an issuer that has never signed.
  await db.pool.query("delete from oidc_signing_keys");
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await db?.drop();
});

const credentials: CredentialsConfig = {
  aws: { role_arn: "arn:aws:iam::123456789012:role/plangate-plan", audience: "sts.amazonaws.com" },
  tokens: [{ audience: "vault.example.com", env: "VAULT_JWT" }, { audience: "sts.amazonaws.com" }],
};
const request = (runId: number): TokenRequest => ({
  credentials,
  phase: "plan",
  event: "pull_request",
  project: { name: "network", workspace: "default" },
  identity: { repository: "acme/infra", repositoryId: 42, pullRequest: 7, sha: "b".repeat(40), ref: "refs/pull/7/head", actor: "octocat", runId },
  deadline: clock.now() + 3 * HOUR,
  dir: "/plangate/credentials",
});

/** Verifies `token` as a relying party would at the test clock's time, against the JWKS the issuer publishes now. */
const verify = async (keys: SigningKeys, token: string, audience = "sts.amazonaws.com", at = clock.now()) =>
  jwtVerify(token, createLocalJWKSet(await keys.jwks()), { issuer: ISSUER, audience, algorithms: ["RS256"], currentDate: new Date(at) });

describe("the signing keys every plangate process shares", () => {
  test("two processes publish the same JWKS, before and after a rotation", async () => {
    const a = keysOn(processPool());
    const b = keysOn(processPool());
    const first = await a.jwks();
    expect(first.keys).toHaveLength(1);
    expect(await b.jwks()).toEqual(first);
    const [key] = await storedKeys();

    // The next key is made when the current one nears its end; the other process publishes it too.
    t = key!.signUntil.getTime() - LEAD;
    await a.signingKey();
    const both = await a.jwks();
    expect(both.keys).toHaveLength(2);
    expect(await b.jwks()).toEqual(both);

    t = key!.signUntil.getTime() + HOUR;
    expect((await b.signingKey()).kid).toBe(both.keys[1]!.kid);
    expect(await b.jwks()).toEqual(await a.jwks());
    t = key!.publishedUntil.getTime();
    const after = await a.jwks();
    expect(kidsOf(after)).toEqual([both.keys[1]!.kid]);
    expect(await b.jwks()).toEqual(after);
  });

  test("eight processes racing on an empty table make one key, and one next key at rotation time", async () => {
    const racers = Array.from({ length: 8 }, () => keysOn(processPool()));
    const signing = await Promise.all(racers.map((k) => k.signingKey()));
    expect(await rowCount()).toBe(1);
    expect(new Set(signing.map((s) => s.kid)).size).toBe(1);

    const [key] = await storedKeys();
    t = key!.signUntil.getTime() - LEAD;
    const again = await Promise.all(racers.map((k) => k.signingKey()));
    expect(await rowCount()).toBe(2);
    // Every racer kept the next key that was stored, not one of its own making.
    const published = await Promise.all(racers.map((k) => k.jwks()));
    expect(published[0]!.keys).toHaveLength(2);
    for (const jwks of published) expect(jwks).toEqual(published[0]);
    // The current key still signs until its period ends; the next one is only published.
    expect(again.map((s) => s.kid)).toEqual(signing.map((s) => s.kid));
    t += 1;
    expect(await Promise.all(racers.map((k) => k.signingKey().then((s) => s.kid)))).toEqual(signing.map((s) => s.kid));
    expect(await rowCount()).toBe(2);
  });

  test("rotation: tokens of the old and new key both verify while the old one's tokens live; then the old kid leaves the JWKS", async () => {
    const keys = keysOn(db.pool);
    const tokens = new RunTokens(db.pool, keys, ISSUER, clock);
    await keys.jwks();
    const [key] = await storedKeys();

    t = key!.signUntil.getTime() - 10 * 60_000;
    const [before] = (await tokens.issue(request(1))).tokens;
    t = key!.signUntil.getTime() + 10 * 60_000;
    const [after] = (await tokens.issue(request(2))).tokens;

    const [oldKid, newKid] = (await storedKeys()).map((k) => k.kid);
    expect(decodeProtectedHeader(before!)).toMatchObject({ alg: "RS256", kid: oldKid, typ: "JWT" });
    expect(decodeProtectedHeader(after!)).toMatchObject({ alg: "RS256", kid: newKid });
    expect(newKid).not.toBe(oldKid);
    // The first token has a while to live yet, and relying parties can check it and the new one alike.
    expect(decodeJwt(before!).exp! * 1000).toBeGreaterThan(clock.now());
    expect((await verify(keys, before!)).payload).toMatchObject({ sub: "repo:acme/infra:project:network:workspace:default:phase:plan", run_id: 1 });
    expect((await verify(keys, after!)).payload).toMatchObject({ run_id: 2 });

    // The last moment a token of the old key can live, it is still published.
    t = key!.signUntil.getTime() + MAX_TOKEN_MS;
    expect(kidsOf(await keys.jwks())).toEqual([oldKid, newKid]);
    t = key!.publishedUntil.getTime();
    expect(kidsOf(await keys.jwks())).toEqual([newKid]);
    // Checked at its own issue time, the old token no longer finds its key.
    await expect(verify(keys, before!, "sts.amazonaws.com", decodeJwt(before!).iat! * 1000)).rejects.toMatchObject({ code: "ERR_JWKS_NO_MATCHING_KEY" });
    expect((await verify(keys, after!)).payload.run_id).toBe(2);
  });

  test("the private key is stored sealed: another encryption key cannot sign with it", async () => {
    const keys = keysOn(db.pool);
    const { kid } = await keys.signingKey();
    const { rows } = await db.pool.query<{ private_sealed: Buffer; public_jwk: Record<string, unknown> }>("select private_sealed, public_jwk from oidc_signing_keys");
    expect(rows).toHaveLength(1);
    // No RSA private key in the clear in any form: PEM, its base64 body, or DER (their fixed PKCS#8 header; a check of
    // the sealed bytes' base64 for "MII" failed whenever the random ciphertext held those three characters).
    const sealed = rows[0]!.private_sealed;
    expect(sealed.toString("latin1")).not.toContain("PRIVATE KEY");
    expect(sealed.toString("latin1")).not.toContain("ADANBgkqhkiG9w0BAQEF");
    expect(sealed.includes(Buffer.from("020100300d06092a864886f70d0101010500", "hex"))).toBe(false);
    expect(Object.keys(rows[0]!.public_jwk).sort()).toEqual(["alg", "e", "kid", "kty", "n", "use"]);

    const stranger = keysOn(db.pool, randomBytes(32));
    await expect(stranger.signingKey()).rejects.toThrow(new RegExp(`${kid}.*PLANGATE_ENCRYPTION_KEY`));
    // Publishing needs no private key: the same JWKS either way.
    expect(await stranger.jwks()).toEqual(await keys.jwks());
  });
});

describe("RunTokens.issue", () => {
  test("audits one credentials.issued per audience with the claims, never the token", async () => {
    const keys = keysOn(db.pool);
    const issued = await new RunTokens(db.pool, keys, ISSUER, clock).issue(request(77));
    expect(issued.tokens).toHaveLength(2);
    expect(issued.env).toMatchObject({ AWS_ROLE_SESSION_NAME: "plangate-77", VAULT_JWT: issued.tokens[1] });

    const { rows } = await db.pool.query("select * from audit_events where action = 'credentials.issued' and run_id = 77 order by id");
    expect(rows).toHaveLength(2);
    const payloads = issued.tokens.map((token) => decodeJwt(token));
    expect(payloads.map((p) => p.aud)).toEqual(["sts.amazonaws.com", "vault.example.com"]);
    expect(rows.map((r) => r.details)).toEqual(payloads.map((claims, i) => ({ kid: decodeProtectedHeader(issued.tokens[i]!).kid, claims })));
    expect(rows[0]).toMatchObject({ actor: "plangate", repo: "acme/infra", pull_number: 7, project: "network", workspace: "default", sha: "b".repeat(40) });
    for (const token of issued.tokens) {
      const signature = token.split(".")[2]!;
      for (const row of rows) {
        expect(JSON.stringify(row)).not.toContain(token);
        expect(JSON.stringify(row)).not.toContain(signature);
      }
    }
    expect((await verify(keys, issued.tokens[1]!, "vault.example.com")).payload.jti).toBe(payloads[1]!.jti);
  });
});

describe("the issuer's HTTP endpoints", () => {
  let server: Server;
  let base: string;
  let handle: ReturnType<typeof oidcIssuerHandler> | undefined;

  beforeAll(async () => {
    server = createServer((req, res) => {
      void (handle ? handle(req, res) : Promise.resolve(false)).then((handled) => handled || res.writeHead(404).end());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** A plain GET, without any credentials. */
  const get = async <T>(url: string) => {
    const res = await fetch(url);
    return { status: res.status, cacheControl: res.headers.get("cache-control") ?? "", contentType: res.headers.get("content-type"), body: (res.status === 200 ? await res.json() : undefined) as T };
  };

  for (const path of ["", "/plangate"]) {
    test(`discovery and JWKS, for an issuer at "${path || "/"}"`, async () => {
      const issuer = `${base}${path}`;
      const keys = keysOn(db.pool);
      handle = oidcIssuerHandler(issuer, keys);

      const discovery = await get<{ jwks_uri: string }>(`${issuer}/.well-known/openid-configuration`);
      expect(discovery.status).toBe(200);
      expect(discovery.contentType).toBe("application/json");
      expect(discovery.cacheControl).toMatch(/max-age=\d+/);
      expect(discovery.body).toEqual({
        issuer,
        jwks_uri: `${issuer}/.well-known/jwks`,
        response_types_supported: ["id_token"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
        claims_supported: expect.arrayContaining(["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "repository", "repository_id", "project", "workspace", "phase", "event", "pull_request", "sha", "ref", "actor", "run_id", "plan_fingerprint", "approvers"]),
      });

      const jwks = await get<JSONWebKeySet>(discovery.body.jwks_uri);
      expect(jwks.status).toBe(200);
      expect(jwks.cacheControl).toMatch(/max-age=\d+/);
      expect(jwks.body.keys).toHaveLength(1);
      const [key] = jwks.body.keys;
      expect(key).toMatchObject({ kty: "RSA", use: "sig", alg: "RS256", kid: (await storedKeys())[0]!.kid });
      for (const secret of ["d", "p", "q", "dp", "dq", "qi"]) expect(key).not.toHaveProperty(secret);

      // What the endpoints publish verifies what the issuer signs.
      const [token] = (await new RunTokens(db.pool, keys, issuer, clock).issue(request(90))).tokens;
      await expect(jwtVerify(token!, createLocalJWKSet(jwks.body), { issuer, audience: "sts.amazonaws.com", currentDate: new Date(clock.now()) })).resolves.toBeDefined();

      expect((await get<undefined>(`${issuer}/.well-known/other`)).status).toBe(404);
    });
  }
});
