-- nestbox task store, SQLite schema v1.
--
-- Written so that migrations/postgres/0001_init.sql can follow with the same tables,
-- columns and meanings; only the types and the SQLite-only clauses differ:
--   * timestamps are INTEGER microseconds since the Unix epoch (nestbox_types::Timestamp),
--     so both engines store and order the same values (PostgreSQL: BIGINT);
--   * booleans are INTEGER 0/1 (PostgreSQL: SMALLINT with the same CHECK, or BOOLEAN
--     mapped in that engine's row code);
--   * ids are INTEGER PRIMARY KEY AUTOINCREMENT where an id is shown to clients:
--     AUTOINCREMENT makes SQLite never hand out an id again after a delete, which Cuckoo
--     clients rely on (they poll "tasks newer than N"). PostgreSQL identity columns
--     behave like that already;
--   * WITHOUT ROWID on the pure link tables is an SQLite storage detail.
-- Strings the domain types hold as `String` (not Option) are NOT NULL DEFAULT ''.

-- Sample content identity. One row per SHA-256; the other hashes are indexed for the
-- Cuckoo /files/view/md5|sha1 lookups.
CREATE TABLE samples (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    file_size   INTEGER NOT NULL,
    file_type   TEXT    NOT NULL DEFAULT '',
    mime        TEXT    NOT NULL DEFAULT '',
    md5         TEXT    NOT NULL,
    crc32       TEXT    NOT NULL,
    sha1        TEXT    NOT NULL,
    sha256      TEXT    NOT NULL UNIQUE,
    sha512      TEXT    NOT NULL,
    ssdeep      TEXT,
    tlsh        TEXT,
    first_seen  INTEGER NOT NULL
);
CREATE INDEX samples_md5_idx  ON samples (md5);
CREATE INDEX samples_sha1_idx ON samples (sha1);

-- One client request that created 1..n tasks (Cuckoo's `submit`). `data` is JSON text.
CREATE TABLE submissions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    submit_type  TEXT    NOT NULL,
    data         TEXT    NOT NULL,
    added_on     INTEGER NOT NULL
);

-- Tasks are also the queue: a worker claims the first pending row (see tasks_queue_idx).
CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    target           TEXT    NOT NULL,
    category         TEXT    NOT NULL,
    timeout          INTEGER NOT NULL DEFAULT 0,
    priority         INTEGER NOT NULL DEFAULT 1,
    custom           TEXT    NOT NULL DEFAULT '',
    owner            TEXT    NOT NULL DEFAULT '',
    machine          TEXT    NOT NULL DEFAULT '',
    package          TEXT    NOT NULL DEFAULT '',
    -- Cuckoo's `k=v,k2=v2` string (TaskOptions::emit / TaskOptions::parse).
    options          TEXT    NOT NULL DEFAULT '',
    platform         TEXT    NOT NULL DEFAULT '',
    memory           INTEGER NOT NULL DEFAULT 0 CHECK (memory IN (0, 1)),
    enforce_timeout  INTEGER NOT NULL DEFAULT 0 CHECK (enforce_timeout IN (0, 1)),
    clock            INTEGER NOT NULL,
    added_on         INTEGER NOT NULL,
    started_on       INTEGER,
    completed_on     INTEGER,
    -- TaskStatus::as_str. No CHECK list, so a new upstream status needs no table rebuild.
    status           TEXT    NOT NULL DEFAULT 'pending',
    sample_id        INTEGER REFERENCES samples (id),
    submit_id        INTEGER REFERENCES submissions (id),
    -- Name of the worker that claimed the task.
    processing       TEXT,
    route            TEXT
);
-- The claim order: WHERE status = 'pending' ORDER BY priority DESC, added_on, id.
CREATE INDEX tasks_queue_idx        ON tasks (status, priority DESC, added_on, id);
-- tasks/list order (completed_on ASC NULLS FIRST, id ASC) and completed_after.
CREATE INDEX tasks_completed_on_idx ON tasks (completed_on, id);
CREATE INDEX tasks_sample_id_idx    ON tasks (sample_id);
CREATE INDEX tasks_submit_id_idx    ON tasks (submit_id);
CREATE INDEX tasks_owner_idx        ON tasks (owner);

-- A task's tags (machine selection), deduplicated.
CREATE TABLE tasks_tags (
    task_id  INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    tag      TEXT    NOT NULL,
    PRIMARY KEY (task_id, tag)
) WITHOUT ROWID;

-- Machines as configured, plus lock state. Rows are kept in step with the configuration
-- by name at start-up (TaskRepo::sync_machines).
CREATE TABLE machines (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL UNIQUE,
    label              TEXT    NOT NULL,
    platform           TEXT    NOT NULL DEFAULT '',
    arch               TEXT    NOT NULL DEFAULT '',
    ip                 TEXT    NOT NULL DEFAULT '',
    -- Machinery options as a JSON list of strings.
    options            TEXT    NOT NULL DEFAULT '[]',
    interface          TEXT,
    snapshot           TEXT,
    locked             INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
    locked_changed_on  INTEGER,
    status             TEXT,
    status_changed_on  INTEGER,
    resultserver_ip    TEXT    NOT NULL DEFAULT '',
    resultserver_port  INTEGER NOT NULL DEFAULT 0,
    -- The task holding the lock, for recovery and display; cleared with the lock.
    locked_by_task     INTEGER REFERENCES tasks (id) ON DELETE SET NULL
);

CREATE TABLE machines_tags (
    machine_id  INTEGER NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    tag         TEXT    NOT NULL,
    PRIMARY KEY (machine_id, tag)
) WITHOUT ROWID;
-- The claim's "every task tag is a machine tag" test probes (machine_id, tag) = the key.

-- One run of a machine for a task. Name and label are copied, not referenced, so the
-- row survives the machine leaving the configuration.
CREATE TABLE guests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    status       TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    label        TEXT    NOT NULL,
    manager      TEXT    NOT NULL,
    started_on   INTEGER NOT NULL,
    shutdown_on  INTEGER,
    task_id      INTEGER NOT NULL UNIQUE REFERENCES tasks (id) ON DELETE CASCADE
);

-- Error messages recorded for a task, shown in order of insertion.
CREATE TABLE errors (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id  INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    message  TEXT    NOT NULL,
    action   TEXT
);
CREATE INDEX errors_task_id_idx ON errors (task_id, id);

-- Index of the blobs an analysis produced (the blobs live in the blob store under `key`).
CREATE TABLE artifacts (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id   INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    kind      TEXT    NOT NULL,
    key       TEXT    NOT NULL UNIQUE,
    sha256    TEXT,
    size      INTEGER NOT NULL DEFAULT 0,
    added_on  INTEGER NOT NULL
);
CREATE INDEX artifacts_task_id_idx ON artifacts (task_id);
CREATE INDEX artifacts_sha256_idx  ON artifacts (sha256);
