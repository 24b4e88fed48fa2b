-- DAGs a user marked as a favorite (Airflow's dag_favorite), for the DAG
-- lists' `is_favorite` filter. A user or DAG deleted takes its marks along.

CREATE TABLE dag_favorites (
    username   text NOT NULL REFERENCES users (username) ON DELETE CASCADE ON UPDATE CASCADE,
    dag_id     text NOT NULL REFERENCES dags (dag_id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (username, dag_id)
);

CREATE INDEX dag_favorites_dag_id ON dag_favorites (dag_id);
