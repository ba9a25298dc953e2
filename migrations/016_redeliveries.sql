-- Issue 25: no delivery lost to an outage (DESIGN.md section 3, "Nothing lost").
-- GitHub does not retry a delivery that failed, so plangate sweeps the App's
-- delivery log and asks GitHub to send each failed one again.

-- Each attempt plangate asked GitHub to send again (GitHub's delivery id):
-- asked once per id, and a few times at most per delivery (guid).
create table webhook_redeliveries (
  delivery_id  bigint primary key,           -- the failed attempt in GET /app/hook/deliveries
  guid         text not null,                -- its X-GitHub-Delivery (webhook_deliveries.id once recorded)
  event        text not null,
  action       text,
  status_code  integer not null,             -- what that attempt got
  refused      integer,                      -- GitHub's answer when it refused the redelivery (400, 404, 422); null: accepted
  requested_at timestamptz not null default now()
);
create index webhook_redeliveries_guid on webhook_redeliveries (guid);

-- How far the delivery log has been swept: the newest delivered_at (GitHub's
-- clock) of a sweep that asked for everything it had to. One row.
create table webhook_redelivery_mark (
  only_row boolean primary key default true check (only_row),
  swept_to timestamptz not null,
  swept_at timestamptz not null default now()
);
