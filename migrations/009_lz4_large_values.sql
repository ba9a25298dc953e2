-- A plan's changes and terraform's output are the large values plangate
-- writes on the way to a PR's comment (megabytes for thousands of
-- resources): lz4 compresses them in about half of pglz's time. The sealed
-- plan file is ciphertext, which no method compresses: stored as it is.
-- A server built without lz4 keeps its default (pglz).
do $$
begin
  execute 'alter table plans alter column changes set compression lz4';
  execute 'alter table runs alter column output set compression lz4';
exception when feature_not_supported or invalid_parameter_value or syntax_error then
  raise notice 'lz4 compression is not available on this server: plans and outputs keep pglz';
end
$$;
alter table plans alter column plan_file set storage external;
