-- Parent and child tasks (CAPE's `tasks.parent_id`): the task a task was spawned from —
-- the task it reboots, or the task whose dropped file it analyses. NULL for tasks a
-- client submitted. Deleting the parent keeps the children and forgets the link.
ALTER TABLE tasks ADD COLUMN parent_id INTEGER REFERENCES tasks (id) ON DELETE SET NULL;
-- A task's children in id order. Partial: almost every task has no parent, so the index
-- stays small at a million tasks (`parent_id = ?` implies the NOT NULL).
CREATE INDEX tasks_parent_id_idx ON tasks (parent_id, id) WHERE parent_id IS NOT NULL;
