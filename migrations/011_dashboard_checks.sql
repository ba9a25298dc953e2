-- Issue 21 (rows 16 and "also noted"): the dashboard's audit page and sessions do bounded work per load.

-- How far the audit chain has been verified for the dashboard: each /audit load verifies only
-- the events after this point (a bounded number) and moves it on. One row.
create table audit_chain_checkpoint (
  singleton    boolean primary key default true check (singleton),
  last_id      bigint not null,             -- the last event verified (0: none yet)
  last_hash    text not null,               -- its hash: the next event's prev_hash must be this
  verified_at  timestamptz not null default now()
);
insert into audit_chain_checkpoint (last_id, last_hash) values (0, repeat('0', 64));

-- When the session's repositories were last asked of GitHub: they are asked again after a few minutes.
alter table dashboard_sessions add column repos_checked_at timestamptz not null default now();
