-- Many worker processes on one store: task leases and per-node machines.
--
-- A worker holds a lease on each task it runs and renews it while the analysis goes on
-- (TaskRepo::renew_lease). A running task whose lease ended belongs to a worker that
-- died; TaskRepo::take_expired hands it to exactly one other worker for recovery.
-- NULL = no lease (rows from before leases; start-up recovery handles those).
ALTER TABLE tasks ADD COLUMN lease_until INTEGER;
CREATE INDEX tasks_lease_idx ON tasks (lease_until) WHERE status = 'running';

-- The worker node that owns a machine (its machinery slots are local to that node).
-- '' = the single node of a one-box install. sync_machines and claim only touch the
-- calling node's machines.
ALTER TABLE machines ADD COLUMN node TEXT NOT NULL DEFAULT '';
-- The claim looks for a free machine of its node in name order.
CREATE INDEX machines_node_idx ON machines (node, name);
