import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importPKCS8, type CryptoKey, type JWK } from "jose";
import { dropExpiredSigningKeys, insertSigningKey, liveSigningKeys, lockSigningKeys, type StoredSigningKey } from "../db/oidc-keys.js";
import { inTransaction, type Pool } from "../db/pool.js";
import { seal, unseal } from "../plans/seal.js";
import type { Clock } from "../sandbox/clock.js";

export const SIGNING_ALG = "RS256";

/** The longest a run token lives (DESIGN.md section 3: the phase's time limit, at most 2 h). */
export const MAX_TOKEN_MS = 2 * 3_600_000;

/** Relying parties and clocks disagree a little: a retired key stays published this much longer. */
const SKEW_MS = 5 * 60_000;

/** How long a process trusts the key set it read before reading it again (another process may have added the next key). */
const REREAD_MS = 60_000;

export interface KeyTimes {
  kid: string;
  publishFrom: number;
  signFrom: number;
  signUntil: number;
  publishedUntil: number;
}

export interface KeyringOptions {
  /** PLANGATE_OIDC_KEY_ROTATION: how long one key signs. */
  rotationMs: number;
}

/**
 * How long before a key starts signing it is published: relying parties
 * cache the JWKS (the endpoint says 5 minutes; clouds keep it up to an hour),
 * so a token's kid must be known to them before the first token carries it.
 */
export const leadOf = (rotationMs: number) => Math.min(3_600_000, Math.floor(rotationMs / 4));

export type KeyDecision = { signWith: string; create?: Omit<KeyTimes, "kid"> } | { signWith?: undefined; create: Omit<KeyTimes, "kid"> };

/**
 * The key ring's one decision, pure: which key signs at `now`, and which key
 * to create. The signing key is the newest whose signing period holds `now`.
 * The next key is created `lead` before the current one stops signing, so it
 * is published before its first token; a retired key stays published until
 * every token it could have signed has expired (MAX_TOKEN_MS and a margin).
 */
export function keyDecision(keys: KeyTimes[], now: number, options: KeyringOptions): KeyDecision {
  const { rotationMs } = options;
  const period = (signFrom: number, publishFrom = now) => ({ publishFrom, signFrom, signUntil: signFrom + rotationMs, publishedUntil: signFrom + rotationMs + MAX_TOKEN_MS + SKEW_MS });
  const signing = keys.filter((k) => k.signFrom <= now && now < k.signUntil).sort((a, b) => b.signFrom - a.signFrom)[0];
  // No key signs now (the first start, or a ring left unused past its period): one is made that signs at once.
  if (!signing) return { create: period(now) };
  const nextMade = keys.some((k) => k.signFrom >= signing.signUntil);
  if (!nextMade && now >= signing.signUntil - leadOf(rotationMs)) return { signWith: signing.kid, create: period(signing.signUntil) };
  return { signWith: signing.kid };
}

/** The keys a JWKS publishes at `now`: every key whose publication has begun and not ended. */
export const publishedAt = <K extends KeyTimes>(keys: K[], now: number): K[] => keys.filter((k) => k.publishFrom <= now && now < k.publishedUntil);

const timesOf = (k: StoredSigningKey): KeyTimes => ({ kid: k.kid, publishFrom: k.publishFrom.getTime(), signFrom: k.signFrom.getTime(), signUntil: k.signUntil.getTime(), publishedUntil: k.publishedUntil.getTime() });

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
}

interface Loaded {
  keys: StoredSigningKey[];
  /** When this process reads the ring again. */
  until: number;
}

/**
 * The issuer's signing keys, shared by every plangate process through
 * Postgres: generated here, stored sealed with PLANGATE_ENCRYPTION_KEY,
 * rotated every PLANGATE_OIDC_KEY_ROTATION. Processes that race to create a
 * key serialise on an advisory lock, so every process publishes the same set.
 */
export class SigningKeys {
  private loaded?: Loaded;
  private loading?: Promise<Loaded>;
  private readonly privateKeys = new Map<string, Promise<CryptoKey>>();

  constructor(
    private readonly pool: Pool,
    private readonly encryptionKey: Buffer,
    private readonly options: KeyringOptions,
    private readonly clock: Pick<Clock, "now">,
  ) {}

  /** The key that signs a token now (creating the ring's next key when its time has come). */
  async signingKey(): Promise<SigningKey> {
    let ring = await this.ring();
    let decision = keyDecision(ring.keys.map(timesOf), this.clock.now(), this.options);
    if (decision.create) {
      ring = this.keep(await this.create());
      decision = keyDecision(ring.keys.map(timesOf), this.clock.now(), this.options);
    }
    const kid = decision.signWith;
    const stored = kid && ring.keys.find((k) => k.kid === kid);
    if (!stored) throw new Error("the OIDC issuer has no key that signs now");
    if (!this.privateKeys.has(kid)) this.privateKeys.set(kid, importPKCS8(this.unsealed(stored), SIGNING_ALG));
    return { kid, privateKey: await this.privateKeys.get(kid)! };
  }

  /** The key's PKCS#8 text; a key sealed under another PLANGATE_ENCRYPTION_KEY is named as such, not as AES-GCM's "unable to authenticate data". */
  private unsealed(stored: StoredSigningKey): string {
    try {
      return unseal(this.encryptionKey, stored.privateSealed).toString("utf8");
    } catch {
      throw new Error(`the OIDC signing key ${stored.kid} cannot be unsealed: it was sealed with another PLANGATE_ENCRYPTION_KEY than this process's`);
    }
  }

  /** The public keys to publish (/.well-known/jwks). */
  async jwks(): Promise<{ keys: JWK[] }> {
    let ring = await this.ring();
    // The first request of a new issuer makes a key, so that the JWKS is never empty; a request in the hour
    // before a rotation makes the next key, so that relying parties polling the JWKS learn it before it signs.
    if (!publishedAt(ring.keys.map(timesOf), this.clock.now()).length || keyDecision(ring.keys.map(timesOf), this.clock.now(), this.options).create) ring = this.keep(await this.create());
    const published = new Set(publishedAt(ring.keys.map(timesOf), this.clock.now()).map((k) => k.kid));
    return { keys: ring.keys.filter((k) => published.has(k.kid)).map((k) => k.publicJwk as JWK) };
  }

  private async ring(): Promise<Loaded> {
    if (this.loaded && this.clock.now() < this.loaded.until) return this.loaded;
    this.loading ??= liveSigningKeys(this.pool, new Date(this.clock.now()))
      .then((keys) => this.keep(keys))
      .finally(() => (this.loading = undefined));
    return this.loading;
  }

  /** Keeps a ring read: until REREAD_MS from now, or the next moment a key starts, stops or ends publication, whichever is first. */
  private keep(keys: StoredSigningKey[]): Loaded {
    const now = this.clock.now();
    const lead = leadOf(this.options.rotationMs);
    const moments = keys.flatMap((k) => [k.signUntil.getTime() - lead, k.signUntil.getTime(), k.publishFrom.getTime(), k.publishedUntil.getTime()]).filter((t) => t > now);
    this.loaded = { keys, until: Math.min(now + REREAD_MS, ...moments) };
    return this.loaded;
  }

  /** Under the ring's lock: reads it again, and creates the key the decision asks for if no other process has. */
  private async create(): Promise<StoredSigningKey[]> {
    return inTransaction(this.pool, async (tx) => {
      await lockSigningKeys(tx);
      const now = this.clock.now();
      const keys = await liveSigningKeys(tx, new Date(now));
      const { create } = keyDecision(keys.map(timesOf), now, this.options);
      if (!create) return keys;
      const made = await this.generate(create);
      await insertSigningKey(tx, made);
      await dropExpiredSigningKeys(tx, new Date(now));
      return [...keys, made].sort((a, b) => a.signFrom.getTime() - b.signFrom.getTime());
    });
  }

  private async generate(times: Omit<KeyTimes, "kid">): Promise<StoredSigningKey> {
    const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { modulusLength: 2048, extractable: true });
    const jwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    return {
      kid,
      publicJwk: { ...jwk, kid, use: "sig", alg: SIGNING_ALG },
      privateSealed: seal(this.encryptionKey, Buffer.from(await exportPKCS8(privateKey))),
      publishFrom: new Date(times.publishFrom),
      signFrom: new Date(times.signFrom),
      signUntil: new Date(times.signUntil),
      publishedUntil: new Date(times.publishedUntil),
    };
  }
}
