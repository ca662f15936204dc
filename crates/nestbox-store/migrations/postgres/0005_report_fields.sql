-- Typed search values of reports (CAPE tasks/extendedsearch):
-- migrations/sqlite/0005_report_fields.sql in PostgreSQL types.

CREATE TABLE report_fields (
    field    TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    task_id  BIGINT  NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    PRIMARY KEY (field, value, task_id)
);
CREATE INDEX report_fields_task_id_idx ON report_fields (task_id);
