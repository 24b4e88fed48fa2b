-- Values tasks hand to their downstream tasks, one row per task instance and key.
CREATE TABLE xcom (
    ti_id      uuid NOT NULL REFERENCES task_instances (id) ON DELETE CASCADE,
    key        text NOT NULL,
    value      jsonb NOT NULL,
    try_number int NOT NULL,
    timestamp  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ti_id, key)
);

-- The operator arguments as rendered from templates for the latest dispatched try.
ALTER TABLE task_instances ADD COLUMN rendered_fields jsonb;
