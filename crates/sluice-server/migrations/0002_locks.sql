-- One row per held upload: a lease with a fencing token, renewed by its instance.
CREATE TABLE sluice_locks (
    id         text PRIMARY KEY,
    holder     text NOT NULL,               -- the lease (random per acquisition)
    instance   text NOT NULL,               -- the instance that renews it
    fence      bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sluice_locks_by_instance ON sluice_locks (instance);

-- Fencing tokens: every lease gets a larger one than any before it.
CREATE SEQUENCE sluice_fences;
