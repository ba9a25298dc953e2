-- A plan's rendered changes are written once and read whole, never queried inside:
-- json keeps the text as written (jsonb's decomposition cost ~50 ms on a 3,000-resource plan).
alter table plans alter column changes type json using changes::json;
