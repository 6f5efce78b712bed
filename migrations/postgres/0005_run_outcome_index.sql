-- basinlab schema 5 on PostgreSQL: a covering index for the experiment summary
-- (GET /v1/experiments/{id}); the same as SQLite's 0006_run_outcome_index.sql.
--
-- The summary counts an experiment's runs by stop reason and by verdict label and, over its
-- finished runs, by label and spurious flag (server/store_pg_summary.c and
-- store_pg_experiment_spurious_stats). This index holds every column they read, so they can be
-- answered from the experiment's slice of the index (an index-only scan once the table is
-- vacuumed) instead of fetching every run's row with its verdict JSON.
CREATE INDEX runs_experiment_outcome
    ON runs (experiment_id, status, verdict_label, stop_reason, final_risk);
