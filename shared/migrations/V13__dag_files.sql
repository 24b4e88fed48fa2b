-- DAG files pushed over the API (PUT /api/v2/gust/dagFiles/{file_name}): a
-- second source of DAGs beside the DAG folder, so a deployment can ship DAGs
-- without a shared volume. The schedulers read them as they read the folder.
CREATE TABLE dag_files (
    file_name  text PRIMARY KEY,
    source     text NOT NULL,
    sha256     text NOT NULL,
    version    integer NOT NULL DEFAULT 1,
    updated_by text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
