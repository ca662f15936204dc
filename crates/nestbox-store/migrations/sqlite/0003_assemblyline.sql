-- Assemblyline view records (see nestbox_core::assemblyline for the model).
-- Same conventions as 0001_init.sql (INTEGER microsecond timestamps, 0/1 booleans).

-- A sid names a core Submission (`submissions` row) which owns the task analysing the file.
-- metadata and params are JSON objects; results are derived from the task's report.
CREATE TABLE al_submissions (
    sid            TEXT    PRIMARY KEY,
    submission_id  INTEGER NOT NULL REFERENCES submissions (id),
    task_id        INTEGER NOT NULL,
    user_id        INTEGER NOT NULL,
    name           TEXT    NOT NULL,
    sha256         TEXT    NOT NULL,
    size           INTEGER NOT NULL,
    metadata       TEXT    NOT NULL DEFAULT '{}',
    params         TEXT    NOT NULL DEFAULT '{}',
    scan_key       TEXT    NOT NULL DEFAULT '',
    created_on     INTEGER NOT NULL
);
CREATE INDEX al_submissions_user_idx ON al_submissions (user_id, created_on);
CREATE INDEX al_submissions_created_idx ON al_submissions (created_on);
CREATE INDEX al_submissions_scan_key_idx ON al_submissions (scan_key, created_on);
CREATE INDEX al_submissions_task_idx ON al_submissions (task_id);

-- Ingest requests; those with a queue wait there until their task finishes. The queue key
-- is (user_id, queue): Assemblyline's per-user `nq-<HEX(uname)>-<name>`.
CREATE TABLE al_ingests (
    ingest_id       TEXT    PRIMARY KEY,
    user_id         INTEGER NOT NULL,
    sid             TEXT    NOT NULL REFERENCES al_submissions (sid),
    queue           TEXT    NOT NULL DEFAULT '',
    threshold       INTEGER,
    generate_alert  INTEGER NOT NULL DEFAULT 0 CHECK (generate_alert IN (0, 1)),
    created_on      INTEGER NOT NULL,
    notified_on     INTEGER
);
CREATE INDEX al_ingests_queue_idx ON al_ingests (user_id, queue, created_on)
    WHERE notified_on IS NULL;
