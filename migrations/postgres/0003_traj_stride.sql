-- basinlab schema 3 on PostgreSQL: trajectory chunks with implied steps (server/traj_codec.h),
-- the twin of migrations/sqlite/0004_traj_stride.sql.
--
-- stride > 0: data holds risk, grad_norm, param_norm (little-endian float64) per point; point i
-- has step first_step + i·stride except the last, whose step is last_step. stride = 0: the old
-- explicit format, 32 bytes per point with the step first. Existing rows become stride 0 and
-- keep reading as before; the writer re-encodes a chunk it tops up. Adding a column with a
-- constant default rewrites nothing; only the length check is replaced.
ALTER TABLE trajectory_chunks ADD COLUMN stride bigint NOT NULL DEFAULT 0 CHECK (stride >= 0);
-- The old check was written on the data column but names count too, so PostgreSQL named it
-- trajectory_chunks_check<N> like the other two-column check: find it by its definition.
DO $$
DECLARE
    c text;
    dropped integer := 0;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
             WHERE conrelid = 'trajectory_chunks'::regclass AND contype = 'c'
               AND pg_get_constraintdef(oid) LIKE '%octet_length(data)%'
    LOOP
        EXECUTE format('ALTER TABLE trajectory_chunks DROP CONSTRAINT %I', c);
        dropped := dropped + 1;
    END LOOP;
    IF dropped <> 1 THEN
        RAISE EXCEPTION 'trajectory_chunks: expected one data length check, found %', dropped;
    END IF;
END $$;
ALTER TABLE trajectory_chunks ADD CONSTRAINT trajectory_chunks_data_check
    CHECK (octet_length(data) = (CASE WHEN stride > 0 THEN 24 ELSE 32 END) * count);
ALTER TABLE trajectory_chunks ALTER COLUMN stride DROP DEFAULT;
