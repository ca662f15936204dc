-- The report index: migrations/sqlite/0004_report_index.sql in PostgreSQL types.

CREATE TABLE reports_index (
    task_id     BIGINT  PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    score       DOUBLE PRECISION NOT NULL DEFAULT 0,
    malstatus   TEXT    NOT NULL DEFAULT '',
    signatures  BIGINT  NOT NULL DEFAULT 0,
    family      TEXT
);

CREATE TABLE report_terms (
    term     TEXT    NOT NULL,
    task_id  BIGINT  NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    PRIMARY KEY (term, task_id)
);
CREATE INDEX report_terms_task_id_idx ON report_terms (task_id);

CREATE INDEX tasks_status_id_idx ON tasks (status, id);
