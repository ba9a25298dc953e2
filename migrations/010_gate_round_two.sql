-- The gate, round two (DESIGN.md sections 2 and 3).

-- Everyone who pushed to a PR's branch (the sender of any pull_request.synchronize): they never approve it.
create table pull_pushers (
  repo        text not null,
  pull_number integer not null,
  login       text not null,
  first_at    timestamptz not null default now(),
  primary key (repo, pull_number, login)
);

-- Everyone who pushed to a branch of the repository (the sender of any push event), whether or not a PR
-- existed then: they never approve a PR whose head is that branch.
create table branch_pushers (
  repo     text not null,
  branch   text not null,
  login    text not null,
  first_at timestamptz not null default now(),
  primary key (repo, branch, login)
);

-- The PR's head branch when it lives in the same repository (its pushers never approve); null for a fork's.
alter table run_groups add column head_ref text;

-- Rules now come from the repository's default branch, whatever branch the PR targets:
-- run_groups.base_ref names that branch and base_sha the commit of it whose .plangate.yml gave the rules.
comment on column run_groups.base_ref is 'the branch whose .plangate.yml gave the rules (the default branch)';
comment on column run_groups.base_sha is 'the commit of base_ref whose .plangate.yml gave the rules';

-- Projects whose files the PR changes but this plan did not plan (autoplan off, or not selected):
-- plangate/plan and plangate/approval stay pending until a /plan plans them on the head.
alter table run_groups add column unplanned jsonb not null default '[]';
