-- Backfills (Airflow 3's shape): runs created for past data intervals of a DAG, started under their own limit.
CREATE TABLE backfills (
    id                 bigserial PRIMARY KEY,
    dag_id             text NOT NULL REFERENCES dags (dag_id) ON DELETE CASCADE,
    from_date          timestamptz NOT NULL,
    to_date            timestamptz NOT NULL,
    run_backwards      boolean NOT NULL DEFAULT false,
    dag_run_conf       jsonb NOT NULL DEFAULT '{}',
    is_paused          boolean NOT NULL DEFAULT false,
    reprocess_behavior text NOT NULL DEFAULT 'none' CHECK (reprocess_behavior IN ('none', 'failed', 'completed')),
    max_active_runs    integer NOT NULL DEFAULT 10 CHECK (max_active_runs > 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    completed_at       timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (from_date <= to_date)
);
-- One active (not completed or cancelled) backfill per DAG.
CREATE UNIQUE INDEX backfills_one_active_per_dag ON backfills (dag_id) WHERE completed_at IS NULL;
CREATE INDEX backfills_by_dag ON backfills (dag_id, id);

ALTER TABLE dag_runs ADD COLUMN backfill_id bigint REFERENCES backfills (id) ON DELETE SET NULL;
-- The live runs of a backfill, in logical-date order, for its start gate and completion check.
CREATE INDEX dag_runs_live_by_backfill ON dag_runs (backfill_id, logical_date)
    WHERE backfill_id IS NOT NULL AND state IN ('queued', 'running');
