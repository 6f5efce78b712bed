-- basinlab schema 2: the objective key of an experiment, and the indexes that find the best
-- evaluated point of an objective with indexed lookups (spurious flags, server/spurious.h).
--
-- An objective is (dataset, architecture, loss with its Huber delta, l2): two experiments with the
-- same key minimise the same function of θ, so a finished run of one is a witness against the
-- minima of the other. The key is "<dataset_id>|<architecture_id>|<loss>|l2=<l2>", <loss> being
-- the loss name ("squared", ...) or "huber:<delta>", each real in its shortest round-trip decimal
-- form (%.15g, %.16g or %.17g: the first that reads back exactly). The API handler writes it from
-- C (spurious_objective_key); when a writer gives none, store_experiment_create takes it from the
-- view below, which is also what fills the rows that existed before this migration.
--
-- The view reads the canonical spec (missing loss / l2 mean the parser's defaults: "squared",
-- Huber delta 1, l2 0). SQLite's printf cannot write the 16- and 17-digit forms exactly, so a real
-- that needs them gives a NULL key (such an experiment is compared with its own runs only); every
-- real that reads back exactly from 15 significant digits (all values a person types) gives the
-- same text as C, because at most one 15-digit decimal rounds to a given double.
ALTER TABLE experiments ADD COLUMN objective_key TEXT
    CHECK (objective_key IS NULL OR length(objective_key) BETWEEN 1 AND 159);

CREATE VIEW experiment_derived_keys AS
SELECT id,
    CASE WHEN lossp IS NULL OR l2p IS NULL THEN NULL
         ELSE dataset_id || '|' || architecture_id || '|' || lossp || '|l2=' || l2p END
        AS objective_key
FROM (SELECT id, dataset_id, architecture_id,
    CASE
        WHEN NOT json_valid(spec) THEN NULL
        WHEN json_type(spec, '$.loss') IS NULL THEN 'squared'
        WHEN json_type(spec, '$.loss') = 'text' AND json_extract(spec, '$.loss') = 'huber'
            THEN 'huber:1'
        WHEN json_type(spec, '$.loss') = 'text' THEN json_extract(spec, '$.loss')
        WHEN json_type(spec, '$.loss') = 'object' AND json_extract(spec, '$.loss.kind') = 'huber'
            THEN CASE
                WHEN json_type(spec, '$.loss.delta') IS NULL THEN 'huber:1'
                WHEN json_type(spec, '$.loss.delta') IN ('integer', 'real')
                    AND CAST(printf('%.15g', json_extract(spec, '$.loss.delta')) AS REAL)
                        = json_extract(spec, '$.loss.delta')
                    THEN 'huber:' || printf('%.15g', json_extract(spec, '$.loss.delta'))
            END
        WHEN json_type(spec, '$.loss') = 'object' AND json_type(spec, '$.loss.kind') = 'text'
            THEN json_extract(spec, '$.loss.kind')
    END AS lossp,
    CASE
        WHEN NOT json_valid(spec) THEN NULL
        WHEN json_type(spec, '$.l2') IS NULL THEN '0'
        WHEN json_type(spec, '$.l2') IN ('integer', 'real')
            AND CAST(printf('%.15g', json_extract(spec, '$.l2')) AS REAL)
                = json_extract(spec, '$.l2')
            THEN printf('%.15g', json_extract(spec, '$.l2'))
    END AS l2p
    FROM experiments);

UPDATE experiments SET objective_key =
    (SELECT k.objective_key FROM experiment_derived_keys k WHERE k.id = experiments.id);

CREATE INDEX experiments_objective_key ON experiments (objective_key)
    WHERE objective_key IS NOT NULL;

-- The best finished run of one experiment is the first entry of its slice of this index.
CREATE INDEX runs_finished_risk ON runs (experiment_id, final_risk)
    WHERE status = 'finished' AND final_risk IS NOT NULL;
