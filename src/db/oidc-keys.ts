import type { Queryable } from "./pool.js";

/** One of the issuer's signing keys as stored (the private half sealed). */
export interface StoredSigningKey {
  kid: string;
  publicJwk: Record<string, unknown>;
  privateSealed: Buffer;
  publishFrom: Date;
  signFrom: Date;
  signUntil: Date;
  publishedUntil: Date;
}

type Row = { kid: string; public_jwk: Record<string, unknown>; private_sealed: Buffer; publish_from: Date; sign_from: Date; sign_until: Date; published_until: Date };

const fromRow = (r: Row): StoredSigningKey => ({
  kid: r.kid,
  publicJwk: r.public_jwk,
  privateSealed: r.private_sealed,
  publishFrom: r.publish_from,
  signFrom: r.sign_from,
  signUntil: r.sign_until,
  publishedUntil: r.published_until,
});

/** Every key still published at `now` or later (the retired ones that outlived their tokens are left out), oldest signing period first. */
export async function liveSigningKeys(db: Queryable, now: Date): Promise<StoredSigningKey[]> {
  const { rows } = await db.query<Row>("select * from oidc_signing_keys where published_until > $1 order by sign_from", [now]);
  return rows.map(fromRow);
}

/** Stores a new key; false when another process stored the key of that signing period first. */
export async function insertSigningKey(db: Queryable, key: StoredSigningKey): Promise<boolean> {
  const { rowCount } = await db.query(
    `insert into oidc_signing_keys (kid, public_jwk, private_sealed, publish_from, sign_from, sign_until, published_until)
     values ($1, $2, $3, $4, $5, $6, $7) on conflict (sign_from) do nothing`,
    [key.kid, JSON.stringify(key.publicJwk), key.privateSealed, key.publishFrom, key.signFrom, key.signUntil, key.publishedUntil],
  );
  return rowCount === 1;
}

/** Removes keys no token can need any more (their publication ended before `before`). */
export async function dropExpiredSigningKeys(db: Queryable, before: Date): Promise<number> {
  const { rowCount } = await db.query("delete from oidc_signing_keys where published_until <= $1", [before]);
  return rowCount ?? 0;
}

/** Serialises the issuer's key decisions across processes until the transaction ends (two processes never create two keys for one period). */
export async function lockSigningKeys(tx: Queryable): Promise<void> {
  await tx.query("select pg_advisory_xact_lock(hashtext('plangate oidc signing keys'))");
}
