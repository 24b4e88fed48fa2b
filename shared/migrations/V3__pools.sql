-- Pools: named sets of slots that bound how many task instances run at once.
CREATE TABLE pools (
    name             text PRIMARY KEY,
    slots            integer NOT NULL CHECK (slots >= 0),
    description      text,
    include_deferred boolean NOT NULL DEFAULT false
);
INSERT INTO pools (name, slots, description) VALUES ('default_pool', 128, 'Default pool');

ALTER TABLE task_instances
    ADD COLUMN pool            text NOT NULL DEFAULT 'default_pool',
    ADD COLUMN pool_slots      integer NOT NULL DEFAULT 1,
    ADD COLUMN priority_weight integer NOT NULL DEFAULT 1;

ALTER TABLE dags ADD COLUMN max_active_tasks integer NOT NULL DEFAULT 16;

-- Dispatch: the best waiting task instances per DAG and pool, and what is in flight.
CREATE INDEX task_instances_to_dispatch_by_priority ON task_instances (dag_id, pool, priority_weight DESC, run_pk, id)
    WHERE state = 'scheduled';
CREATE INDEX task_instances_in_flight ON task_instances (pool, dag_id) INCLUDE (pool_slots)
    WHERE state IN ('queued', 'running');
