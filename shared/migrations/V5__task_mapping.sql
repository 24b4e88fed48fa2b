-- The element of its task's `expand` list a mapped task instance runs for.
ALTER TABLE task_instances ADD COLUMN map_item jsonb;
