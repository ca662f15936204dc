-- The report index: what the web UI's task list shows and searches without opening a
-- report blob (see nestbox_types::browse). Written by TaskRepo::index_report when a
-- report is stored; same conventions as 0001_init.sql.

-- One row per reported task: CAPE's malscore/malstatus, the signature count, the family.
CREATE TABLE reports_index (
    task_id     INTEGER PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    score       REAL    NOT NULL DEFAULT 0,
    malstatus   TEXT    NOT NULL DEFAULT '',
    signatures  INTEGER NOT NULL DEFAULT 0,
    family      TEXT
);

-- Exact-match search terms, lower-cased (hashes, file names, URLs, domains, IPs,
-- signature names). Keyed by term first: a search is one index range.
CREATE TABLE report_terms (
    term     TEXT    NOT NULL,
    task_id  INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    PRIMARY KEY (term, task_id)
) WITHOUT ROWID;
CREATE INDEX report_terms_task_id_idx ON report_terms (task_id);

-- The task list filtered by status, newest first (keyset on id).
CREATE INDEX tasks_status_id_idx ON tasks (status, id);
