-- Parent and child tasks (see migrations/sqlite/0007_parent_tasks.sql).
ALTER TABLE tasks ADD COLUMN parent_id BIGINT REFERENCES tasks (id) ON DELETE SET NULL;
CREATE INDEX tasks_parent_id_idx ON tasks (parent_id, id) WHERE parent_id IS NOT NULL;
