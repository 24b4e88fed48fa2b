-- Connection tests asked for with POST /api/v2/connections/enqueue-test. The
-- webapi that accepts one runs it in the background (gust's workers never see
-- connection tests) and records the outcome here, where GET …/enqueue-test
-- polls it by token. No credentials are stored: the webapi holds them in
-- memory for the test's few seconds.
CREATE TABLE connection_tests (
    id                bigserial PRIMARY KEY,
    token             text NOT NULL UNIQUE,
    connection_id     text NOT NULL,
    state             text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'queued', 'running', 'success', 'failed')),
    result_message    text,
    commit_on_success boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
-- One active test per connection, as Airflow.
CREATE UNIQUE INDEX connection_tests_one_active ON connection_tests (connection_id)
    WHERE state IN ('pending', 'queued', 'running');
