-- Airflow's Variables: named text values that templates read as `var.value.<key>`
-- (or `var.json.<key>` when the text is JSON). gust does not encrypt them.
CREATE TABLE variables (
    key         text PRIMARY KEY,
    value       text NOT NULL,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
