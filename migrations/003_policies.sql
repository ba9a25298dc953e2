-- The repository's policies as read at the planned commit: approvals and applies use the same rules.
alter table run_groups add column policies jsonb not null default '[]';
