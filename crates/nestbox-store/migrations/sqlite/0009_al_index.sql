-- Assemblyline indexes: the result index of search/result/, the file index of
-- search/file/, and the quota counters shared by every API node (see
-- nestbox_core::al_result and nestbox_core::assemblyline). Same conventions as
-- 0001_init.sql.

-- One row per result key: the newest report of the file by one service. Written with the
-- report index (TaskRepo::index_report); a task's rows go when the task goes.
CREATE TABLE al_results (
    key        TEXT    PRIMARY KEY,
    task_id    INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    sha256     TEXT    NOT NULL,
    service    TEXT    NOT NULL,
    score      INTEGER NOT NULL DEFAULT 0,
    created    INTEGER NOT NULL,
    file_type  TEXT    NOT NULL DEFAULT '',
    size       INTEGER NOT NULL DEFAULT 0
);
-- search/result/'s default order, `created desc`.
CREATE INDEX al_results_created_idx ON al_results (created, key);
CREATE INDEX al_results_task_id_idx ON al_results (task_id);

-- The searchable values of each result, lower-cased, under Assemblyline's field names.
-- Keyed by (field, value) first: a `field:value` term is one index range; bare words use
-- the value index.
CREATE TABLE al_result_fields (
    field  TEXT NOT NULL,
    value  TEXT NOT NULL,
    key    TEXT NOT NULL REFERENCES al_results (key) ON DELETE CASCADE,
    PRIMARY KEY (field, value, key)
) WITHOUT ROWID;
CREATE INDEX al_result_fields_key_idx ON al_result_fields (key);
CREATE INDEX al_result_fields_value_idx ON al_result_fields (value, key);

-- Files submitted through the Assemblyline API (Assemblyline's file index): the AL type
-- and the `seen` block; hashes and libmagic output are the samples row's. Files of
-- earlier submissions get an empty type (it was never stored for them).
CREATE TABLE al_files (
    sha256      TEXT    PRIMARY KEY,
    file_type   TEXT    NOT NULL DEFAULT '',
    seen_count  INTEGER NOT NULL DEFAULT 0,
    seen_first  INTEGER NOT NULL,
    seen_last   INTEGER NOT NULL
);
CREATE INDEX al_files_seen_last_idx ON al_files (seen_last, sha256);
INSERT INTO al_files (sha256, file_type, seen_count, seen_first, seen_last)
    SELECT sha256, '', COUNT(*), MIN(created_on), MAX(created_on)
    FROM al_submissions GROUP BY sha256;

-- Quota counters (Assemblyline keeps them in Redis): per user, kind (`api_daily`,
-- `submission_daily`, `api_inflight`, `submission_reserved`) and period (the UTC day for
-- daily counters, 0 otherwise). A row past `expires_on` counts as 0, so a counter of a
-- node that died mid-request frees itself.
CREATE TABLE quota_counters (
    user_id     INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    period      INTEGER NOT NULL,
    n           INTEGER NOT NULL,
    expires_on  INTEGER NOT NULL,
    PRIMARY KEY (user_id, kind, period)
) WITHOUT ROWID;
CREATE INDEX quota_counters_expires_idx ON quota_counters (expires_on);
