-- basinlab schema 5: a database-wide change counter for the rendered-response cache of
-- GET /v1/runs/{id} (server/resp_cache.h).
--
-- data_version.v grows by at least one in every transaction that inserts, updates or deletes a
-- row of a table the run view depends on: runs (the run itself, and through final_risk the best
-- risk of its objective that judges every run with the same objective key: the `spurious` block)
-- experiments (the spec with the spurious tolerance and the objective key; deleting one
-- cascades to its runs) and run_params (the view's has_params). The bump is part of the writer's transaction, so a reader sees the new
-- value exactly when it sees the change: a response rendered after reading v is never older than
-- v. Triggers are per row (SQLite has no statement triggers); writers are serialised by SQLite's
-- write lock anyway, so the single row costs no concurrency.
CREATE TABLE data_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    v INTEGER NOT NULL
) STRICT;
INSERT INTO data_version (id, v) VALUES (1, 0);

CREATE TRIGGER runs_data_version_ins AFTER INSERT ON runs
BEGIN UPDATE data_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER runs_data_version_upd AFTER UPDATE ON runs
BEGIN UPDATE data_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER runs_data_version_del AFTER DELETE ON runs
BEGIN UPDATE data_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER experiments_data_version_ins AFTER INSERT ON experiments
BEGIN UPDATE data_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER experiments_data_version_upd AFTER UPDATE ON experiments
BEGIN UPDATE data_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER experiments_data_version_del AFTER DELETE ON experiments
BEGIN UPDATE data_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER run_params_data_version_ins AFTER INSERT ON run_params
BEGIN UPDATE data_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER run_params_data_version_upd AFTER UPDATE ON run_params
BEGIN UPDATE data_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER run_params_data_version_del AFTER DELETE ON run_params
BEGIN UPDATE data_version SET v = v + 1 WHERE id = 1; END;
