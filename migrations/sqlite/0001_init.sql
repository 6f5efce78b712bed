-- basinlab schema 1: datasets, architectures, experiments, the run queue, run end points,
-- trajectory chunks and SSE events. Applied by server/migrate.c in one transaction that also
-- sets PRAGMA user_version = 1. Append-only: change the schema with a new NNNN_name.sql file.
--
-- Conventions: STRICT tables; every enum column has a CHECK; JSON columns are TEXT checked with
-- json_valid; float64 arrays are little-endian BLOBs whose length is checked against their count;
-- times are INTEGER milliseconds since the Unix epoch. Each table has an INTEGER PRIMARY KEY
-- `seq` (stable insertion order for keyset pagination) and the opaque public `id`.

CREATE TABLE datasets (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE
        CHECK (length(id) = 19 AND substr(id, 1, 3) = 'ds_' AND substr(id, 4) NOT GLOB '*[^0-9a-f]*'),
    name TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('inline', 'csv', 'generator', 'teacher_gaussian')),
    spec TEXT NOT NULL CHECK (json_valid(spec)),
    input_shape TEXT NOT NULL CHECK (json_valid(input_shape)),
    n INTEGER NOT NULL CHECK (n >= 0),
    in_dim INTEGER NOT NULL CHECK (in_dim >= 1),
    y_dim INTEGER NOT NULL CHECK (y_dim >= 1),
    task TEXT NOT NULL CHECK (task IN ('regression', 'binary', 'multiclass')),
    n_classes INTEGER NOT NULL DEFAULT 0 CHECK (n_classes >= 0),
    x BLOB NOT NULL CHECK (length(x) = 8 * n * in_dim),
    y BLOB NOT NULL CHECK (length(y) = 8 * n * y_dim),
    linear_fit TEXT CHECK (linear_fit IS NULL OR json_valid(linear_fit)),
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE architectures (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE
        CHECK (length(id) = 19 AND substr(id, 1, 3) = 'ar_' AND substr(id, 4) NOT GLOB '*[^0-9a-f]*'),
    name TEXT,
    spec TEXT NOT NULL CHECK (json_valid(spec)),
    param_count INTEGER NOT NULL CHECK (param_count >= 1),
    out_dim INTEGER NOT NULL CHECK (out_dim >= 1),
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE experiments (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE
        CHECK (length(id) = 19 AND substr(id, 1, 3) = 'ex_' AND substr(id, 4) NOT GLOB '*[^0-9a-f]*'),
    dataset_id TEXT NOT NULL REFERENCES datasets (id) ON DELETE RESTRICT,
    architecture_id TEXT NOT NULL REFERENCES architectures (id) ON DELETE RESTRICT,
    spec TEXT NOT NULL CHECK (json_valid(spec)),
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'finished', 'cancelled')),
    restarts INTEGER NOT NULL CHECK (restarts BETWEEN 1 AND 1000000),
    seed INTEGER NOT NULL, -- the uint64 seed, bit-cast to int64
    idempotency_key TEXT UNIQUE,
    request_hash TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER,
    summary TEXT CHECK (summary IS NULL OR json_valid(summary)),
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    last_claim_seq INTEGER NOT NULL DEFAULT 0, -- fairness: when the queue last served it
    CHECK (idempotency_key IS NULL OR request_hash IS NOT NULL),
    CHECK ((status IN ('finished', 'cancelled')) = (finished_at IS NOT NULL)),
    CHECK (status <> 'cancelled' OR cancel_requested = 1)
) STRICT;
CREATE INDEX experiments_dataset ON experiments (dataset_id);
CREATE INDEX experiments_architecture ON experiments (architecture_id);
CREATE INDEX experiments_last_claim ON experiments (last_claim_seq);

CREATE TABLE runs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE
        CHECK (length(id) = 20 AND substr(id, 1, 4) = 'run_' AND substr(id, 5) NOT GLOB '*[^0-9a-f]*'),
    experiment_id TEXT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    restart_index INTEGER NOT NULL CHECK (restart_index >= 0),
    seed INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'finished', 'failed', 'cancelled')),
    origin TEXT NOT NULL DEFAULT 'trained' CHECK (origin IN ('trained', 'construction', 'imported')),
    steps INTEGER CHECK (steps IS NULL OR steps >= 0),
    stop_reason TEXT,
    final_risk REAL,
    grad_norm REAL,
    param_norm REAL,
    initial_risk REAL,
    verdict TEXT CHECK (verdict IS NULL OR json_valid(verdict)),
    verdict_label TEXT,
    error TEXT,
    claim_token TEXT,
    claimed_by TEXT,
    lease_at INTEGER,
    started_at INTEGER,
    finished_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    UNIQUE (experiment_id, restart_index),
    CHECK ((status = 'running') = (claim_token IS NOT NULL AND lease_at IS NOT NULL)),
    CHECK ((status IN ('finished', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
) STRICT;
CREATE INDEX runs_experiment_status ON runs (experiment_id, status, restart_index);
CREATE INDEX runs_status ON runs (status);
CREATE INDEX runs_claim_token ON runs (claim_token) WHERE claim_token IS NOT NULL;
CREATE INDEX runs_lease ON runs (lease_at) WHERE status = 'running';

CREATE TABLE run_params (
    run_id TEXT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    count INTEGER NOT NULL CHECK (count >= 0),
    data BLOB NOT NULL CHECK (length(data) = 8 * count)
) STRICT;

-- A run's trajectory in chunks of up to 512 points (32 bytes each: step, risk, grad_norm,
-- param_norm as float64), never a row per point.
CREATE TABLE trajectory_chunks (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    chunk_no INTEGER NOT NULL CHECK (chunk_no >= 0),
    first_step INTEGER NOT NULL CHECK (first_step >= 0),
    last_step INTEGER NOT NULL CHECK (last_step >= first_step),
    count INTEGER NOT NULL CHECK (count BETWEEN 1 AND 512),
    data BLOB NOT NULL CHECK (length(data) = 32 * count),
    PRIMARY KEY (run_id, chunk_no)
) STRICT;

-- The SSE stream of an experiment; AUTOINCREMENT so an id is never reused after a delete.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id TEXT NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    type TEXT NOT NULL CHECK (length(type) BETWEEN 1 AND 63),
    data TEXT NOT NULL CHECK (json_valid(data)),
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX events_experiment ON events (experiment_id, id);
