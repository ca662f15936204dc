-- Task leases and per-node machines (see migrations/sqlite/0006_leases.sql).
ALTER TABLE tasks ADD COLUMN lease_until BIGINT;
CREATE INDEX tasks_lease_idx ON tasks (lease_until) WHERE status = 'running';
ALTER TABLE machines ADD COLUMN node TEXT NOT NULL DEFAULT '';
CREATE INDEX machines_node_idx ON machines (node, name);
