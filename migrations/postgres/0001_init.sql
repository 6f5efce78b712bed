-- basinlab schema 1 on PostgreSQL: the same tables, columns, constraints and meaning as
-- migrations/sqlite/0001_init.sql, so both backends answer identically. Applied by
-- server/store_pg.c under an advisory lock, in one transaction that also records version 1 in
-- schema_migrations. Append-only: change the schema with a new NNNN_name.sql file.
--
-- Differences from SQLite, and why:
--   - JSON columns are `json` (validated, text kept byte for byte), not `jsonb`: jsonb would
--     reorder keys and rewrite numbers, and the API returns stored specs as they were stored;
--   - float64 arrays are `bytea` (little-endian, as in SQLite), booleans are `boolean`;
--   - `seq` and event ids come from identity columns (never reused); the fairness counter
--     last_claim_seq from the sequence claim_seq instead of max()+1, which would race.
-- Times are bigint milliseconds since the Unix epoch, taken from the client's clock like the
-- SQLite backend (hosts sharing a database must keep their clocks in sync, e.g. with NTP).

CREATE TABLE datasets (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE CHECK (id ~ '^ds_[0-9a-f]{16}$'),
    name text,
    kind text NOT NULL CHECK (kind IN ('inline', 'csv', 'generator', 'teacher_gaussian')),
    spec json NOT NULL,
    input_shape json NOT NULL,
    n bigint NOT NULL CHECK (n >= 0),
    in_dim bigint NOT NULL CHECK (in_dim >= 1),
    y_dim bigint NOT NULL CHECK (y_dim >= 1),
    task text NOT NULL CHECK (task IN ('regression', 'binary', 'multiclass')),
    n_classes bigint NOT NULL DEFAULT 0 CHECK (n_classes >= 0),
    x bytea NOT NULL CHECK (octet_length(x) = 8 * n * in_dim),
    y bytea NOT NULL CHECK (octet_length(y) = 8 * n * y_dim),
    linear_fit json,
    created_at bigint NOT NULL
);

CREATE TABLE architectures (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE CHECK (id ~ '^ar_[0-9a-f]{16}$'),
    name text,
    spec json NOT NULL,
    param_count bigint NOT NULL CHECK (param_count >= 1),
    out_dim bigint NOT NULL CHECK (out_dim >= 1),
    created_at bigint NOT NULL
);

CREATE SEQUENCE claim_seq;

CREATE TABLE experiments (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE CHECK (id ~ '^ex_[0-9a-f]{16}$'),
    dataset_id text NOT NULL REFERENCES datasets (id) ON DELETE RESTRICT,
    architecture_id text NOT NULL REFERENCES architectures (id) ON DELETE RESTRICT,
    spec json NOT NULL,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'finished', 'cancelled')),
    restarts bigint NOT NULL CHECK (restarts BETWEEN 1 AND 1000000),
    seed bigint NOT NULL, -- the uint64 seed, bit-cast to int64
    idempotency_key text UNIQUE,
    request_hash text,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    finished_at bigint,
    summary json,
    cancel_requested boolean NOT NULL DEFAULT false,
    last_claim_seq bigint NOT NULL DEFAULT 0, -- fairness: when the queue last served it
    CHECK (idempotency_key IS NULL OR request_hash IS NOT NULL),
    CHECK ((status IN ('finished', 'cancelled')) = (finished_at IS NOT NULL)),
    CHECK (status <> 'cancelled' OR cancel_requested)
);
CREATE INDEX experiments_dataset ON experiments (dataset_id);
CREATE INDEX experiments_architecture ON experiments (architecture_id);
CREATE INDEX experiments_last_claim ON experiments (last_claim_seq);

CREATE TABLE runs (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE CHECK (id ~ '^run_[0-9a-f]{16}$'),
    experiment_id text NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    restart_index bigint NOT NULL CHECK (restart_index >= 0),
    seed bigint NOT NULL,
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'finished', 'failed', 'cancelled')),
    origin text NOT NULL DEFAULT 'trained' CHECK (origin IN ('trained', 'construction', 'imported')),
    steps bigint CHECK (steps IS NULL OR steps >= 0),
    stop_reason text,
    final_risk double precision,
    grad_norm double precision,
    param_norm double precision,
    initial_risk double precision,
    verdict json,
    verdict_label text,
    error text,
    claim_token text,
    claimed_by text,
    lease_at bigint,
    started_at bigint,
    finished_at bigint,
    attempts bigint NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    UNIQUE (experiment_id, restart_index),
    CHECK ((status = 'running') = (claim_token IS NOT NULL AND lease_at IS NOT NULL)),
    CHECK ((status IN ('finished', 'failed', 'cancelled')) = (finished_at IS NOT NULL))
);
CREATE INDEX runs_experiment_status ON runs (experiment_id, status, restart_index);
CREATE INDEX runs_status ON runs (status);
CREATE INDEX runs_claim_token ON runs (claim_token) WHERE claim_token IS NOT NULL;
CREATE INDEX runs_lease ON runs (lease_at) WHERE status = 'running';

CREATE TABLE run_params (
    run_id text PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    count bigint NOT NULL CHECK (count >= 0),
    data bytea NOT NULL CHECK (octet_length(data) = 8 * count)
);

-- A run's trajectory in chunks of up to 512 points (32 bytes each: step, risk, grad_norm,
-- param_norm as float64), never a row per point.
CREATE TABLE trajectory_chunks (
    run_id text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    chunk_no bigint NOT NULL CHECK (chunk_no >= 0),
    first_step bigint NOT NULL CHECK (first_step >= 0),
    last_step bigint NOT NULL CHECK (last_step >= first_step),
    count bigint NOT NULL CHECK (count BETWEEN 1 AND 512),
    data bytea NOT NULL CHECK (octet_length(data) = 32 * count),
    PRIMARY KEY (run_id, chunk_no)
);

-- The SSE stream of an experiment. Ids come from an identity column and are never reused;
-- writers append an experiment's events while holding its row lock, so within one experiment
-- ids also commit in increasing order and "id > last seen" never skips a late commit.
CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    experiment_id text NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    type text NOT NULL CHECK (length(type) BETWEEN 1 AND 63),
    data json NOT NULL,
    created_at bigint NOT NULL
);
CREATE INDEX events_experiment ON events (experiment_id, id);
