-- Issue 24: what each policy found in a run's plan, kept with the run so that
-- the comment, the checks, the approval status and /override read it without
-- evaluating the policies again; and the PR's labels when it was planned (rules read pull_request.labels).
alter table runs add column policy jsonb;
alter table run_groups add column labels jsonb not null default '[]';
alter table run_groups add column pull_base text;
