-- Trust model (DESIGN.md sections 2 and 3): rules come from the base branch; keys are checked.

alter table run_groups
  add column base_ref text,                    -- the PR's base branch when planned
  add column base_sha text,                    -- the base commit whose .plangate.yml gave the rules
  add column config_from_file boolean not null default false, -- the PR's .plangate.yml existed (it may tighten)
  add column rule_changes jsonb not null default '[]';        -- rule keys the PR's file changes: effective once merged

-- The effective rules a run was planned under (base branch's, tightened by the PR): approvals, apply, env, depends_on.
alter table runs add column rules jsonb;

-- One row: a check value of the key plans are sealed with, so a process with another key refuses to start.
create table encryption_key_check (
  id          integer primary key default 1 check (id = 1),
  check_value text not null,
  created_at  timestamptz not null default now()
);
