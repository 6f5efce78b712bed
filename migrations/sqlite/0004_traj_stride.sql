-- basinlab schema 4: trajectory chunks with implied steps (server/traj_codec.h), 24 bytes per
-- point instead of 32 when the steps are evenly spaced, which is every run's normal case.
--
-- stride > 0: data holds risk, grad_norm, param_norm (little-endian float64) per point; point i
-- has step first_step + i·stride except the last, whose step is last_step (a run that stops
-- between recording steps still records its final step). stride = 0: the old explicit format,
-- 32 bytes per point with the step first. Existing rows are kept as they are, explicit
-- (SQL cannot decode their float64 steps), and stay readable; the writer re-encodes a chunk it
-- tops up, so an old run's last chunk becomes regular if its steps allow it.
--
-- The table stays a rowid table with its (run_id, chunk_no) index: rows are appended in rowid
-- order and pack the pages densely, whereas WITHOUT ROWID keyed by the random run ids would
-- insert all over the b-tree and leave pages about 70% full, which costs more (32.3 against
-- 29.5 bytes per point for 21-point runs) than the index saves. SQLite cannot drop a CHECK
-- constraint, hence the rebuild.
CREATE TABLE trajectory_chunks_v4 (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    chunk_no INTEGER NOT NULL CHECK (chunk_no >= 0),
    first_step INTEGER NOT NULL CHECK (first_step >= 0),
    last_step INTEGER NOT NULL CHECK (last_step >= first_step),
    count INTEGER NOT NULL CHECK (count BETWEEN 1 AND 512),
    stride INTEGER NOT NULL CHECK (stride >= 0),
    data BLOB NOT NULL CHECK (length(data) = (CASE WHEN stride > 0 THEN 24 ELSE 32 END) * count),
    PRIMARY KEY (run_id, chunk_no)
) STRICT;

INSERT INTO trajectory_chunks_v4 (run_id, chunk_no, first_step, last_step, count, stride, data)
SELECT run_id, chunk_no, first_step, last_step, count, 0, data
FROM trajectory_chunks ORDER BY rowid;

DROP TABLE trajectory_chunks;
ALTER TABLE trajectory_chunks_v4 RENAME TO trajectory_chunks;
