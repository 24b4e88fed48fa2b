-- gust's first schema: DAGs and their versions, runs, task instances, logs, import errors.

CREATE TABLE dags (
    dag_id          text PRIMARY KEY,
    is_paused       boolean NOT NULL DEFAULT false,
    is_active       boolean NOT NULL DEFAULT true,
    fileloc         text NOT NULL,
    schedule        text,
    description     text,
    tags            text[] NOT NULL DEFAULT '{}',
    owners          text[] NOT NULL DEFAULT '{}',
    max_active_runs integer NOT NULL,
    definition      jsonb NOT NULL,
    version_hash    text NOT NULL,
    latest_version_id bigint,
    last_parsed_at  timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dag_versions (
    id             bigserial PRIMARY KEY,
    dag_id         text NOT NULL REFERENCES dags (dag_id) ON DELETE CASCADE,
    version_number integer NOT NULL,
    version_hash   text NOT NULL,
    definition     jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dag_id, version_number)
);

ALTER TABLE dags ADD FOREIGN KEY (latest_version_id) REFERENCES dag_versions (id) DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE dag_runs (
    id                  bigserial PRIMARY KEY,
    dag_id              text NOT NULL REFERENCES dags (dag_id) ON DELETE CASCADE,
    run_id              text NOT NULL,
    run_type            text NOT NULL,
    logical_date        timestamptz,
    data_interval_start timestamptz,
    data_interval_end   timestamptz,
    run_after           timestamptz NOT NULL DEFAULT now(),
    conf                jsonb NOT NULL DEFAULT '{}',
    state               text NOT NULL,
    dag_version_id      bigint NOT NULL REFERENCES dag_versions (id),
    queued_at           timestamptz NOT NULL DEFAULT now(),
    start_date          timestamptz,
    end_date            timestamptz,
    triggered_by        text NOT NULL DEFAULT 'rest_api',
    note                text,
    UNIQUE (dag_id, run_id)
);
CREATE UNIQUE INDEX dag_runs_logical_date ON dag_runs (dag_id, logical_date) WHERE logical_date IS NOT NULL;
-- Keeps the scheduler's scan proportional to live runs, not history.
CREATE INDEX dag_runs_live ON dag_runs (dag_id, id) WHERE state IN ('queued', 'running');

CREATE TABLE task_instances (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_pk      bigint NOT NULL REFERENCES dag_runs (id) ON DELETE CASCADE,
    dag_id      text NOT NULL,
    run_id      text NOT NULL,
    task_id     text NOT NULL,
    map_index   integer NOT NULL DEFAULT -1,
    operator    text NOT NULL,
    queue       text NOT NULL,
    state       text NOT NULL DEFAULT 'none',
    try_number  integer NOT NULL DEFAULT 0,
    max_tries   integer NOT NULL DEFAULT 0,
    hostname    text,
    pid         integer,
    exit_code   integer,
    failure_reason text,
    next_retry_at timestamptz,
    last_heartbeat_at timestamptz,
    queued_at   timestamptz,
    start_date  timestamptz,
    end_date    timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_pk, task_id, map_index)
);
-- Only unfinished task instances are scanned by the scheduler.
CREATE INDEX task_instances_live ON task_instances (run_pk)
    WHERE state IN ('none', 'scheduled', 'queued', 'running', 'up_for_retry');
CREATE INDEX task_instances_to_dispatch ON task_instances (run_pk) WHERE state = 'scheduled';
CREATE INDEX task_instances_by_dag ON task_instances (dag_id, run_id);
CREATE INDEX task_instances_running ON task_instances (last_heartbeat_at) WHERE state = 'running';

-- One row per finished try: its own times, worker, exit code and outcome.
CREATE TABLE task_instance_tries (
    ti_id          uuid NOT NULL REFERENCES task_instances (id) ON DELETE CASCADE,
    try_number     integer NOT NULL,
    state          text NOT NULL,
    hostname       text,
    exit_code      integer,
    failure_reason text,
    queued_at      timestamptz,
    start_date     timestamptz,
    end_date       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ti_id, try_number)
);

CREATE TABLE task_logs (
    id          bigserial PRIMARY KEY,
    ti_id       uuid NOT NULL REFERENCES task_instances (id) ON DELETE CASCADE,
    try_number  integer NOT NULL,
    ts          timestamptz NOT NULL DEFAULT now(),
    stream      text NOT NULL,
    line        text NOT NULL
);
CREATE INDEX task_logs_by_try ON task_logs (ti_id, try_number, id);

CREATE TABLE import_errors (
    id         bigserial PRIMARY KEY,
    filename   text NOT NULL UNIQUE,
    stacktrace text NOT NULL,
    timestamp  timestamptz NOT NULL DEFAULT now()
);

-- Messages that reached the dead queue, with why; filled by the schedulers' dead-letter consumer.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    queue       text NOT NULL,
    routing_key text NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL,
    ti_id       uuid,
    dag_id      text,
    run_id      text,
    task_id     text,
    try_number  integer,
    deliveries  bigint,
    body        text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Liveness of every scheduler and worker process, for health and for operators.
CREATE TABLE component_heartbeats (
    name              text PRIMARY KEY,
    kind              text NOT NULL,
    hostname          text NOT NULL,
    pid               integer NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at timestamptz NOT NULL DEFAULT now(),
    running_tasks     integer NOT NULL DEFAULT 0,
    stopped_at        timestamptz
);
