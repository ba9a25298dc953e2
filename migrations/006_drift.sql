-- Drift detection (issue: operating plangate): scheduled plans of the default branch.

-- Repositories whose base branch config asks for drift checks (seen when their pull requests are planned).
create table drift_repos (
  repo            text primary key,            -- owner/name
  installation_id bigint not null,
  seen_at         timestamptz not null default now()
);

-- The last drift check of each project: when, what it found, and the open plangate:drift issue.
create table drift_checks (
  repo          text not null,
  project       text not null,
  workspace     text not null,
  checked_at    timestamptz not null,
  sha           text not null check (length(sha) = 40),
  status        text not null check (status in ('clean', 'drifted', 'failed')),
  issue_number  integer,
  primary key (repo, project, workspace)
);
