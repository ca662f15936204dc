-- The archive a task's sample was unpacked from (see migrations/sqlite/0010_parent_sample.sql).
ALTER TABLE tasks ADD COLUMN parent_sample_id BIGINT REFERENCES samples (id);
