-- Apply path (issue: one apply gate, merge queues, every merge answered).

-- 'queue': the plan of a merge queue commit (merge_group.head_sha), verified against the PR's approved plans.
alter table run_groups drop constraint run_groups_kind_check;
alter table run_groups add constraint run_groups_kind_check check (kind in ('plan', 'apply', 'queue'));

-- What an apply (or a queue verification) decided, written in the same transaction as its final state;
-- the report to GitHub is rendered from it by a job of its own, retried apart from the apply.
alter table run_groups add column outcome jsonb;

-- Apply runs not started because an earlier project (in dependency order) failed.
alter table runs drop constraint runs_status_check;
alter table runs add constraint runs_status_check
  check (status in ('queued', 'running', 'succeeded', 'failed', 'interrupted', 'denied', 'skipped'));

create index run_groups_sha on run_groups (repo, sha, kind);
