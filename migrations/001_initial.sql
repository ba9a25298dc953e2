-- plangate's own tables. The job queue lives in graphile-worker's schema
-- (graphile_worker.jobs), which graphile-worker migrates itself.

create table webhook_deliveries (
  id              text primary key,            -- X-GitHub-Delivery: a redelivery is a duplicate
  event           text not null,
  action          text,
  repo            text,
  installation_id bigint,
  outcome         text not null,               -- what the handler decided: enqueued | ignored:<why>
  received_at     timestamptz not null default now()
);

-- One plan (or apply) of a pull request: the projects it covers are runs.
create table run_groups (
  id              bigserial primary key,
  kind            text not null check (kind in ('plan', 'apply')),
  trigger_id      text not null unique,        -- the delivery that caused it
  installation_id bigint not null,
  repo            text not null,               -- owner/name
  pull_number     integer,
  sha             text not null check (length(sha) = 40),
  check_run_id    bigint,
  created_at      timestamptz not null default now(),
  reported_at     timestamptz
);
create index run_groups_pull on run_groups (repo, pull_number, id desc);

create table runs (
  id           bigserial primary key,
  group_id     bigint not null references run_groups (id),
  parent_run_id bigint references runs (id),     -- a cdktf stack's run points at its program's synth run
  kind         text not null check (kind in ('plan', 'apply')),
  repo         text not null,
  pull_number  integer,
  sha          text not null check (length(sha) = 40),
  project      text not null,
  dir          text not null,
  engine       text not null,
  workspace    text not null,
  config       jsonb not null default '{}',      -- the project's settings this run used
  status       text not null default 'queued'
               check (status in ('queued', 'running', 'succeeded', 'failed', 'interrupted')),
  summary      jsonb,                          -- counts per action
  output       text,                           -- terraform's output, capped and masked
  error        jsonb,                          -- why it failed: {stage, message, timedOut}
  created_at   timestamptz not null default now(),
  started_at   timestamptz,
  finished_at  timestamptz,
  unique (group_id, project, workspace)
);
create index runs_project on runs (repo, project, workspace, id desc);

create table plans (
  run_id      bigint primary key references runs (id),
  plan_file   bytea not null,                  -- terraform's binary plan, AES-256-GCM sealed
  changes     jsonb not null,                  -- the rendered model: sensitive values already replaced
  created_at  timestamptz not null default now()
);

-- Append-only, tamper-evident log of every decision (DESIGN.md section 5).
create table audit_events (
  id          bigserial primary key,
  created_at  timestamptz not null,
  action      text not null,
  actor       text,
  repo        text,
  pull_number integer,
  project     text,
  workspace   text,
  sha         text check (sha is null or length(sha) = 40),
  run_id      bigint,
  details     jsonb not null default '{}',
  prev_hash   text not null,
  hash        text not null unique
);

create function audit_events_refuse_change() returns trigger language plpgsql as $$
begin
  raise exception 'audit_events is append-only: % refused', tg_op;
end $$;

create trigger audit_events_append_only
  before update or delete on audit_events
  for each row execute function audit_events_refuse_change();

create trigger audit_events_no_truncate
  before truncate on audit_events
  for each statement execute function audit_events_refuse_change();
