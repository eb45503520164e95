-- Upload records: the columns that are queried or compared, and the whole record as JSONB.
CREATE TABLE sluice_uploads (
    id          text PRIMARY KEY,
    "offset"    bigint NOT NULL,
    length      bigint,
    fence       bigint NOT NULL,
    state       text NOT NULL,              -- 'receiving' or 'complete'
    kind        text NOT NULL,              -- 'whole', 'partial' or 'final'
    client      text,
    owner       text,
    unreceived  bigint NOT NULL,            -- declared bytes not received yet (0 once complete)
    created_at  timestamptz NOT NULL,
    modified_at timestamptz NOT NULL,
    gone_at     timestamptz,                -- terminated or expired (a tombstone)
    record      jsonb NOT NULL
);

-- Per-client quotas and the bytes promised: sums over unfinished uploads.
CREATE INDEX sluice_uploads_open_by_client ON sluice_uploads (client)
    WHERE state = 'receiving' AND gone_at IS NULL;
-- The expiry sweep: unfinished uploads by last write.
CREATE INDEX sluice_uploads_open_by_age ON sluice_uploads (modified_at)
    WHERE state = 'receiving' AND gone_at IS NULL;
-- Forgetting tombstones.
CREATE INDEX sluice_uploads_tombstones ON sluice_uploads (gone_at)
    WHERE gone_at IS NOT NULL;

-- Settings every instance must share (the key of ids derived from Flow.js identifiers).
CREATE TABLE sluice_settings (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
