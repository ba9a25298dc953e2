-- Approvals, locks, applies and crash recovery (DESIGN.md section 3).

alter table plans
  add column fingerprint text,                 -- the change fingerprint approvals are given on
  add column consumed_at timestamptz,          -- applied by /apply, or discarded by /unlock
  add column consumed_by text;

alter table run_groups
  add column author text,                      -- the PR author: never counts as an approver
  add column approval_check_run_id bigint,
  add column approval_met boolean;             -- last evaluated state, for approval.changed

alter table runs drop constraint runs_status_check;
alter table runs add constraint runs_status_check
  check (status in ('queued', 'running', 'succeeded', 'failed', 'interrupted', 'denied'));
alter table runs add column fingerprint text;   -- apply runs: the fingerprint of what was applied

-- One PR at a time plans and applies a (repo, project, workspace).
create table locks (
  repo        text not null,
  project     text not null,
  workspace   text not null,
  pull_number integer not null,
  acquired_at timestamptz not null default now(),
  primary key (repo, project, workspace)
);
create index locks_pull on locks (repo, pull_number);

-- Live worker processes: jobs locked by a process that stopped beating are unlocked and retried.
create table worker_heartbeats (
  worker_id text primary key,
  seen_at   timestamptz not null default now()
);
