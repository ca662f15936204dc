-- The archive a task's sample was unpacked from (CAPE's sample association, shown as
-- `info.parent_sample`): set for the members CAPE's demux turns into tasks, NULL
-- otherwise. The archive stays a sample of its own.
ALTER TABLE tasks ADD COLUMN parent_sample_id INTEGER REFERENCES samples (id);
