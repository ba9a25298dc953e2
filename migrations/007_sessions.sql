-- Dashboard logins (issue 10): GitHub OAuth states in flight and the sessions they open.

-- A login started at /login: its state, until GitHub sends the browser back (or it expires).
create table oauth_states (
  state_hash  text primary key,              -- sha256 of the state: the value itself lives only in the browser's cookie
  expires_at  timestamptz not null
);

-- A logged-in browser. The cookie holds the session id; only its hash is stored.
create table dashboard_sessions (
  id_hash     text primary key,              -- sha256 of the cookie value
  login       text not null,
  token       bytea not null,                -- the user's OAuth token, AES-256-GCM sealed with the encryption key
  repos       jsonb not null,                -- [{repo, write}]: the installations' repositories the user can read, at login
  csrf        text not null,                 -- the token every form of this session carries
  created_at  timestamptz not null default now(),
  expires_at  timestamptz not null
);
create index dashboard_sessions_expiry on dashboard_sessions (expires_at);
