-- Issue 25: a push re-plans only the projects whose inputs changed; the others
-- keep the plan of the earlier commit, copied to the new head's run. The run
-- says which commit's plan it reused (shown in the comment as "reused from").
alter table runs add column reused_from text;
