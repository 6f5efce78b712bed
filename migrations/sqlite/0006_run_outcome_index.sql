-- basinlab schema 6: a covering index for the experiment summary (GET /v1/experiments/{id}).
--
-- The summary counts an experiment's runs by stop reason and by verdict label and, over its
-- finished runs, by label and spurious flag (server/store_sqlite_summary.c and
-- store_sq_experiment_spurious_stats). Those read only these columns, but from the table they
-- would read every run's row, verdict JSON included (~13 KB for a certified run, in overflow
-- pages): ~130 MB for 10,000 runs per GET. This index holds every column they read, so each
-- grouping is a scan of the experiment's slice of the index (a few ms for 10,000 runs).
CREATE INDEX runs_experiment_outcome
    ON runs (experiment_id, status, verdict_label, stop_reason, final_risk);
