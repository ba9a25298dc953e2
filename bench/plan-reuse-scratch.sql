-- Scratch data for timing the plan-reuse queries with EXPLAIN ANALYZE (bench/history/scale.md,
-- 2026-12-06, helper `reuse`): createdb NAME; psql -1 -f each migrations/*.sql in order; psql -f this
-- file (~5 min, ~1 GB on node-svc: 136,500 runs with outputs, 111,000 plans).
-- A 2,000-project monorepo with 1,200 past plan groups and 300 applies,
-- 30 small repos with 18,000 plan groups and 4,500 applies; outputs (~4 KB of hex text) and plans on every
-- succeeded plan run; then PR 9000 planned at sha A over 500 projects, PR 9001 over 2,000 projects.
\set ON_ERROR_STOP 1
create or replace function pg_temp.txt(n int, seed bigint) returns text language sql as
  $$ select string_agg(md5((seed * 1000 + i)::text), E'\n') from generate_series(1, n) i $$;
create or replace function pg_temp.sha(seed text) returns text language sql as $$ select md5(seed) || substr(md5(seed || 'y'), 1, 8) $$;

create temp table spec (gid bigint, kind text, repo text, pr int, push int, nproj int, projects int, base int);
-- the monorepo: 600 PRs, 2 pushes, 10 projects each; every other PR applied
insert into spec select p * 10 + s, 'plan', 'acme/mono', p, s, 10, 2000, p * 37 from generate_series(1, 600) p, generate_series(1, 2) s;
insert into spec select p * 10 + 5, 'apply', 'acme/mono', p, 2, 10, 2000, p * 37 from generate_series(2, 600, 2) p;
-- 30 service repos: 300 PRs, 2 pushes, 5 of 20 projects each
insert into spec select 100000 + k * 10000 + p * 10 + s, 'plan', 'acme/svc' || k, p, s, 5, 20, p from generate_series(1, 30) k, generate_series(1, 300) p, generate_series(1, 2) s;
insert into spec select 100000 + k * 10000 + p * 10 + 5, 'apply', 'acme/svc' || k, p, 2, 5, 20, p from generate_series(1, 30) k, generate_series(2, 300, 2) p;
-- the pull requests measured: 9000 (500 projects, one earlier push too), 9001 (2,000 projects)
insert into spec values (90001, 'plan', 'acme/mono', 9000, 1, 500, 2000, 0), (90002, 'plan', 'acme/mono', 9000, 2, 500, 2000, 0), (90011, 'plan', 'acme/mono', 9001, 1, 2000, 2000, 0);

insert into run_groups (id, kind, trigger_id, installation_id, repo, pull_number, sha, author, policies, base_ref, base_sha, created_at, reported_at)
select gid, kind, 'delivery-' || gid, 1, repo, pr, pg_temp.sha(repo || pr || '/' || push), 'dev' || (pr % 40),
       '[{"name":"no-deletes","deny":"delete","projects":["**"]},{"name":"tags","require_tags":["owner","cost-centre"],"projects":["projects/**"]}]'::jsonb,
       'main', pg_temp.sha('base' || gid), timestamptz '2026-01-01' + gid * interval '1 minute', timestamptz '2026-01-01' + gid * interval '1 minute' + interval '50 seconds'
  from spec;
select setval('run_groups_id_seq', (select max(id) from run_groups));

insert into runs (group_id, kind, repo, pull_number, sha, project, dir, engine, workspace, config, rules, status, summary, output, error, created_at, started_at, finished_at, fingerprint, policy)
select s.gid, s.kind, s.repo, s.pr, g.sha, 'p' || pi, 'projects/p' || pi, 'terraform', 'default',
       jsonb_build_object('name', 'p' || pi, 'dir', 'projects/p' || pi, 'workspace', 'default', 'engine', 'terraform', 'autoplan', jsonb_build_object('enabled', true, 'when_modified', jsonb_build_array('*.tf', '*.tfvars', '../../modules/**/*.tf')), 'terraform_version', '1.11.4', 'apply_requirements', jsonb_build_array('approved', 'mergeable'), 'drift', false, 'env', jsonb_build_array()),
       '{"approvals":{"required":1,"teams":["platform"],"users":[]},"apply":"on_merge","env":[],"depends_on":[]}'::jsonb,
       case when s.kind = 'plan' and (s.gid + j) % 10 = 3 and s.pr < 9000 then 'failed' else 'succeeded' end,
       '{"add":5,"change":0,"destroy":0,"import":0}'::jsonb,
       pg_temp.txt(120, s.gid * 2000 + j),
       case when s.kind = 'plan' and (s.gid + j) % 10 = 3 and s.pr < 9000 then '{"stage":"plan","message":"exit 1"}'::jsonb end,
       g.created_at, g.created_at + interval '5 seconds', g.created_at + interval '40 seconds',
       case when s.kind = 'apply' then md5('fp' || s.gid || j) end,
       null
  from spec s join run_groups g on g.id = s.gid, generate_series(0, s.nproj - 1) j, lateral (select ((s.base + j * (s.projects / s.nproj)) % s.projects) as pi) x;

-- cdktf-like programs in svc1: a program run whose two stacks are its children
insert into runs (group_id, parent_run_id, kind, repo, pull_number, sha, project, dir, engine, workspace, config, status, created_at, finished_at)
select r.group_id, r.id, 'plan', r.repo, r.pull_number, r.sha, r.project || '/stack' || k, r.dir, r.engine, r.workspace, r.config, 'succeeded', r.created_at, r.finished_at
  from runs r, generate_series(1, 2) k where r.repo = 'acme/svc1' and r.kind = 'plan';

insert into plans (run_id, plan_file, changes, fingerprint, created_at, consumed_at)
select r.id, decode(pg_temp.txt(64, -r.id), 'escape'), ('{"resources":' || to_json(pg_temp.txt(40, r.id + 7)) || '}')::json, md5('fp' || r.id), r.finished_at,
       case when exists (select 1 from runs a where a.kind = 'apply' and a.repo = r.repo and a.pull_number = r.pull_number) and r.pull_number < 9000 then r.finished_at + interval '1 hour' end
  from runs r where r.kind = 'plan' and r.status = 'succeeded' and r.parent_run_id is null;
analyze;
