-- Issue 24: a policy's owner lets one plan through a deny policy with /override NAME REASON.
-- An override holds only for the plan it was given on: its project's change fingerprint.
create table policy_overrides (
  id           bigserial primary key,
  repo         text not null,
  pull_number  integer not null,
  policy       text not null,
  project      text not null,
  workspace    text not null,
  fingerprint  text not null,            -- the change it was given on; another plan needs another override
  run_id       bigint not null references runs(id) on delete cascade,
  actor        text not null,
  reason       text not null,
  created_at   timestamptz not null default now(),
  unique (repo, pull_number, policy, project, workspace, fingerprint)
);
create index policy_overrides_pull on policy_overrides (repo, pull_number);
