-- Every state change of a task instance is a non-HOT update (`state` is in
-- the predicates of its partial indexes), so each row version goes into
-- every index whose predicate it matches. task_instances_running
-- (last_heartbeat_at) WHERE state = 'running' served only the zombie sweep,
-- which reads the running tries through task_instances_in_flight instead
-- (queued and running tries: bounded by the pools' slots). Without it a
-- running try's version costs one index insert less, and a heartbeat, which
-- changes no other column, can be a HOT update instead of a new entry in
-- every index each time.
DROP INDEX task_instances_running;
