-- Worker heartbeats: one row per worker of any node, upserted every few seconds by its
-- pool (TaskRepo::beat_workers) and removed when it stops cleanly, so an API node can show
-- the whole cluster's workers (GET /health/workers, /metrics). A row whose expires_on has
-- passed belongs to a worker that died (or lost the database). Times in µs since the epoch.
CREATE TABLE worker_beats (
    name TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    task_id INTEGER,
    started_on INTEGER NOT NULL,
    seen_on INTEGER NOT NULL,
    expires_on INTEGER NOT NULL
);
