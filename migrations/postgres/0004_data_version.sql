-- basinlab schema 4 on PostgreSQL: the change counter of the rendered-response cache of
-- GET /v1/runs/{id} (server/resp_cache.h), the twin of migrations/sqlite/0005_data_version.sql.
--
-- The counter is the SUM of 16 shard rows. Every transaction that inserts, updates or deletes a
-- row of runs, run_params or experiments adds 1 to one shard (pg_backend_pid() % 16) exactly
-- once, at commit time (deferred constraint triggers; a transaction-local setting remembers that
-- this transaction already bumped). Why not a SEQUENCE bumped by nextval(): nextval is not
-- transactional, so a reader can see the new value while the change is still uncommitted,
-- render the old data and cache it under the new value, and after the commit the counter does
-- not move again: a stale answer served forever. An UPDATE becomes visible exactly with the
-- change, so the sum read before rendering is never ahead of the data (server/resp_cache.c).
-- Why shards: one row would serialise every writer on its lock; with 16 rows two writers wait
-- only when their backends share a shard, and since the bump runs at commit, after every other
-- lock the transaction takes, the shard lock is always taken last and cannot close a deadlock.
CREATE TABLE data_version (
    shard integer PRIMARY KEY CHECK (shard BETWEEN 0 AND 15),
    v bigint NOT NULL DEFAULT 0
);
INSERT INTO data_version (shard) SELECT generate_series(0, 15);

CREATE FUNCTION basinlab_bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('basinlab.data_version_tx', true) IS DISTINCT FROM txid_current()::text
    THEN
        PERFORM set_config('basinlab.data_version_tx', txid_current()::text, true);
        UPDATE data_version SET v = v + 1 WHERE shard = pg_backend_pid() % 16;
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER runs_data_version AFTER INSERT OR UPDATE OR DELETE ON runs
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION basinlab_bump_data_version();
CREATE CONSTRAINT TRIGGER run_params_data_version AFTER INSERT OR UPDATE OR DELETE ON run_params
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION basinlab_bump_data_version();
CREATE CONSTRAINT TRIGGER experiments_data_version AFTER INSERT OR UPDATE OR DELETE ON experiments
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION basinlab_bump_data_version();
