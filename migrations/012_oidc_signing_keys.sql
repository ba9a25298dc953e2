-- Issue 23: plangate is an OpenID Connect issuer; every sandboxed plan and apply of a project with
-- `credentials` gets a short-lived token signed with one of these keys (DESIGN.md section 3).

-- The issuer's RSA signing keys. The private key is sealed with PLANGATE_ENCRYPTION_KEY; the public
-- half is published in /.well-known/jwks from publish_from until published_until, which lies past
-- the expiry of every token the key may sign. A key signs from sign_from (after it has been
-- published a while, so relying parties that cache the JWKS already know it) until sign_until.
create table oidc_signing_keys (
  kid              text primary key,
  public_jwk       jsonb not null,
  private_sealed   bytea not null,
  publish_from     timestamptz not null,
  sign_from        timestamptz not null,
  sign_until       timestamptz not null,
  published_until  timestamptz not null,
  check (publish_from <= sign_from and sign_from < sign_until and sign_until <= published_until)
);
-- One key per signing period: processes that race to create the next key insert one row between them.
create unique index oidc_signing_keys_period on oidc_signing_keys (sign_from);
