-- Typed search values of reports for CAPE's tasks/extendedsearch (see
-- nestbox_core::report_fields): one row per (option, value, task). Written with the report
-- index; same conventions as 0001_init.sql.

CREATE TABLE report_fields (
    field    TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    task_id  INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    PRIMARY KEY (field, value, task_id)
) WITHOUT ROWID;
CREATE INDEX report_fields_task_id_idx ON report_fields (task_id);
