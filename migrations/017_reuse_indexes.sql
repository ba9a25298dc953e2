-- A push's reuse of earlier plans (src/db/plan-reuse.ts) and a head's plans
-- (headRuns) ask, per run, whether a cdktf program's stacks replaced it: with
-- no index on parent_run_id that is a scan of every run ever made. Only stack
-- runs have a parent, so the index holds only those.
create index runs_parent on runs (parent_run_id) where parent_run_id is not null;

-- When each project was last applied, which voids its earlier plan: the
-- project's apply runs alone, not its plans too (runs_project holds both).
-- None of its columns (nor kind) changes once a run is made: a run's status,
-- output and times are updated as cheaply as before.
create index runs_applies on runs (repo, project, workspace) where kind = 'apply';
