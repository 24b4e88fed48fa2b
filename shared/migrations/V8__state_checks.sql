-- The database refuses a state name outside gust's state machine
-- (shared/src/state.rs: ALL_TASK_STATES, ALL_RUN_STATES). The
-- compare-and-set tests check that these lists equal the Rust ones.
ALTER TABLE task_instances ADD CONSTRAINT task_instances_state_check CHECK (state IN (
    'none', 'scheduled', 'queued', 'running', 'success', 'failed',
    'up_for_retry', 'upstream_failed', 'skipped', 'removed'));

ALTER TABLE task_instance_tries ADD CONSTRAINT task_instance_tries_state_check CHECK (state IN (
    'none', 'scheduled', 'queued', 'running', 'success', 'failed',
    'up_for_retry', 'upstream_failed', 'skipped', 'removed'));

ALTER TABLE dag_runs ADD CONSTRAINT dag_runs_state_check CHECK (state IN (
    'queued', 'running', 'success', 'failed'));
