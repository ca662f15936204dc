-- Worker heartbeats (see migrations/sqlite/0008_worker_beats.sql).
CREATE TABLE worker_beats (
    name TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    task_id BIGINT,
    started_on BIGINT NOT NULL,
    seen_on BIGINT NOT NULL,
    expires_on BIGINT NOT NULL
);
