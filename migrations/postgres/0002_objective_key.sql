-- basinlab schema 2 on PostgreSQL: the objective key of an experiment and the indexes that find
-- the best evaluated point of an objective with indexed lookups (server/spurious.h), as in
-- migrations/sqlite/0002_objective_key.sql.
--
-- The key is "<dataset_id>|<architecture_id>|<loss>|l2=<l2>". Writers give it (the API handler
-- from spurious_objective_key); without one the PostgreSQL backend derives it in C with the same
-- function, so this file only has to fill rows that existed before it: their key comes from
-- the canonical spec (a missing loss is "squared", a missing Huber delta 1, a missing l2 0),
-- reals in PostgreSQL's shortest exact text (the digits C's shortest round-trip form gives for
-- every value a person types); a spec this cannot read leaves the key NULL (the experiment is
-- then compared with its own runs only).
ALTER TABLE experiments ADD COLUMN objective_key text
    CHECK (objective_key IS NULL OR length(objective_key) BETWEEN 1 AND 159);

UPDATE experiments e SET objective_key = k.key
FROM (SELECT id,
        CASE WHEN lossp IS NULL OR l2p IS NULL THEN NULL
             ELSE dataset_id || '|' || architecture_id || '|' || lossp || '|l2=' || l2p END AS key
      FROM (SELECT id, dataset_id, architecture_id,
              CASE
                WHEN spec -> 'loss' IS NULL THEN 'squared'
                WHEN json_typeof(spec -> 'loss') = 'string' AND spec ->> 'loss' = 'huber'
                    THEN 'huber:1'
                WHEN json_typeof(spec -> 'loss') = 'string' THEN spec ->> 'loss'
                WHEN json_typeof(spec -> 'loss') = 'object'
                     AND json_typeof(spec -> 'loss' -> 'kind') = 'string'
                     AND spec -> 'loss' ->> 'kind' = 'huber' THEN
                    CASE WHEN spec -> 'loss' -> 'delta' IS NULL THEN 'huber:1'
                         WHEN json_typeof(spec -> 'loss' -> 'delta') = 'number'
                             THEN 'huber:' || ((spec -> 'loss' ->> 'delta')::float8)::text
                    END
                WHEN json_typeof(spec -> 'loss') = 'object'
                     AND json_typeof(spec -> 'loss' -> 'kind') = 'string'
                    THEN spec -> 'loss' ->> 'kind'
              END AS lossp,
              CASE
                WHEN spec -> 'l2' IS NULL THEN '0'
                WHEN json_typeof(spec -> 'l2') = 'number'
                    THEN ((spec ->> 'l2')::float8)::text
              END AS l2p
            FROM experiments) d) k
WHERE k.id = e.id;

CREATE INDEX experiments_objective_key ON experiments (objective_key)
    WHERE objective_key IS NOT NULL;

-- The best finished run of one experiment is the first entry of its slice of this index.
CREATE INDEX runs_finished_risk ON runs (experiment_id, final_risk)
    WHERE status = 'finished' AND final_risk IS NOT NULL;
