-- Assemblyline view records: migrations/sqlite/0003_assemblyline.sql in PostgreSQL types.

CREATE TABLE al_submissions (
    sid            TEXT    PRIMARY KEY,
    submission_id  BIGINT  NOT NULL REFERENCES submissions (id),
    task_id        BIGINT  NOT NULL,
    user_id        BIGINT  NOT NULL,
    name           TEXT    NOT NULL,
    sha256         TEXT    NOT NULL,
    size           BIGINT  NOT NULL,
    metadata       TEXT    NOT NULL DEFAULT '{}',
    params         TEXT    NOT NULL DEFAULT '{}',
    scan_key       TEXT    NOT NULL DEFAULT '',
    created_on     BIGINT  NOT NULL
);
CREATE INDEX al_submissions_user_idx ON al_submissions (user_id, created_on);
CREATE INDEX al_submissions_created_idx ON al_submissions (created_on);
CREATE INDEX al_submissions_scan_key_idx ON al_submissions (scan_key, created_on);
CREATE INDEX al_submissions_task_idx ON al_submissions (task_id);

CREATE TABLE al_ingests (
    ingest_id       TEXT    PRIMARY KEY,
    user_id         BIGINT  NOT NULL,
    sid             TEXT    NOT NULL REFERENCES al_submissions (sid),
    queue           TEXT    NOT NULL DEFAULT '',
    threshold       BIGINT,
    generate_alert  BIGINT  NOT NULL DEFAULT 0 CHECK (generate_alert IN (0, 1)),
    created_on      BIGINT  NOT NULL,
    notified_on     BIGINT
);
CREATE INDEX al_ingests_queue_idx ON al_ingests (user_id, queue, created_on)
    WHERE notified_on IS NULL;
