-- The audit log (Airflow's event log): every state-changing API or UI action
-- and every login, with who did it. No foreign keys: a record outlives the
-- DAG, run or user it names. `gust db clean` deletes records older than its
-- cutoff.
CREATE TABLE event_log (
    id           bigserial PRIMARY KEY,
    dttm         timestamptz NOT NULL DEFAULT now(),
    event        text NOT NULL,
    owner        text,
    dag_id       text,
    run_id       text,
    task_id      text,
    map_index    integer,
    try_number   integer,
    logical_date timestamptz,
    extra        jsonb
);
CREATE INDEX event_log_by_time ON event_log (dttm);
CREATE INDEX event_log_by_dag ON event_log (dag_id, run_id, task_id);

-- Who triggered a run (API, UI, CLI or a backfill); null for scheduled runs.
ALTER TABLE dag_runs ADD COLUMN triggering_user_name text;
