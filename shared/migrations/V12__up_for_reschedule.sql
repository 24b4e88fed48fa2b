-- Sensors in `reschedule` mode wait between pokes as `up_for_reschedule`
-- (shared/src/state.rs: TaskState::UpForReschedule), an unfinished state the
-- scheduler's live-task index must cover.
ALTER TABLE task_instances DROP CONSTRAINT task_instances_state_check;
ALTER TABLE task_instances ADD CONSTRAINT task_instances_state_check CHECK (state IN (
    'none', 'scheduled', 'queued', 'running', 'success', 'failed',
    'up_for_retry', 'up_for_reschedule', 'upstream_failed', 'skipped', 'removed'));

ALTER TABLE task_instance_tries DROP CONSTRAINT task_instance_tries_state_check;
ALTER TABLE task_instance_tries ADD CONSTRAINT task_instance_tries_state_check CHECK (state IN (
    'none', 'scheduled', 'queued', 'running', 'success', 'failed',
    'up_for_retry', 'up_for_reschedule', 'upstream_failed', 'skipped', 'removed'));

DROP INDEX task_instances_live;
CREATE INDEX task_instances_live ON task_instances (run_pk)
    WHERE state IN ('none', 'scheduled', 'queued', 'running', 'up_for_retry', 'up_for_reschedule');
