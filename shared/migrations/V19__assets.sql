-- Assets and data-aware scheduling (Airflow 3's assets).
--
-- An asset is named in DAG files by its URI or its name (a bare string is
-- both). The scheduler registers the assets a DAG's tasks produce (`outlets`)
-- and consume (`inlets`) and those its schedule waits for on every sync; a
-- successful try with outlets, or `POST /api/v2/assets/events`, records an
-- event and queues it for every DAG scheduled on the asset
-- (`asset_queued_events`, Airflow's asset_dag_run_queue). A scheduler turns a
-- DAG's queued events into one `asset_triggered` run when its condition holds,
-- deleting the queue rows in the same transaction, so however many schedulers
-- run, each set of events triggers once.

CREATE TABLE assets (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    uri         text NOT NULL UNIQUE,
    asset_group text NOT NULL DEFAULT 'asset',
    extra       jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE asset_aliases (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    alias_group text NOT NULL DEFAULT 'asset'
);

-- The assets an alias has resolved to, from the events recorded through it.
CREATE TABLE asset_alias_assets (
    alias_id bigint NOT NULL REFERENCES asset_aliases (id) ON DELETE CASCADE,
    asset_id bigint NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    PRIMARY KEY (alias_id, asset_id)
);

CREATE TABLE asset_events (
    id               bigserial PRIMARY KEY,
    asset_id         bigint NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    extra            jsonb NOT NULL DEFAULT '{}',
    source_dag_id    text,
    source_task_id   text,
    source_run_id    text,
    source_map_index integer NOT NULL DEFAULT -1,
    partition_key    text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX asset_events_by_asset ON asset_events (asset_id, created_at);
CREATE INDEX asset_events_by_time ON asset_events (created_at);

-- The DAGs whose schedule names an asset (directly or inside any/all).
CREATE TABLE dag_schedule_assets (
    dag_id     text NOT NULL REFERENCES dags (dag_id) ON DELETE CASCADE,
    asset_id   bigint NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_id, asset_id)
);
CREATE INDEX dag_schedule_assets_by_asset ON dag_schedule_assets (asset_id);

-- The DAGs whose schedule names an alias.
CREATE TABLE dag_schedule_asset_aliases (
    dag_id   text NOT NULL REFERENCES dags (dag_id) ON DELETE CASCADE,
    alias_id bigint NOT NULL REFERENCES asset_aliases (id) ON DELETE CASCADE,
    PRIMARY KEY (dag_id, alias_id)
);

-- The tasks that produce (`outlet`) or consume (`inlet`) an asset.
CREATE TABLE task_asset_references (
    dag_id     text NOT NULL REFERENCES dags (dag_id) ON DELETE CASCADE,
    task_id    text NOT NULL,
    asset_id   bigint NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    direction  text NOT NULL CHECK (direction IN ('outlet', 'inlet')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_id, task_id, asset_id, direction)
);
CREATE INDEX task_asset_references_by_asset ON task_asset_references (asset_id);

-- Events waiting to trigger a DAG scheduled on their asset: one row per
-- (asset, DAG), holding when the first waiting event came.
CREATE TABLE asset_queued_events (
    asset_id   bigint NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    dag_id     text NOT NULL REFERENCES dags (dag_id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (asset_id, dag_id)
);
CREATE INDEX asset_queued_events_by_dag ON asset_queued_events (dag_id);

-- The events that triggered an asset_triggered run.
CREATE TABLE dag_run_asset_events (
    run_pk   bigint NOT NULL REFERENCES dag_runs (id) ON DELETE CASCADE,
    event_id bigint NOT NULL REFERENCES asset_events (id) ON DELETE CASCADE,
    PRIMARY KEY (run_pk, event_id)
);
CREATE INDEX dag_run_asset_events_by_event ON dag_run_asset_events (event_id);
