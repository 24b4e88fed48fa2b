-- Airflow's Connections: how tasks reach outside systems. `password_encrypted` is a
-- Fernet token (GUST__SECRETS__KEY), never the password; in `extra` (JSON text) the
-- values of fields whose name looks secret are Fernet tokens too.
CREATE TABLE connections (
    connection_id      text PRIMARY KEY,
    conn_type          text NOT NULL,
    description        text,
    host               text,
    login              text,
    schema             text,
    port               integer,
    password_encrypted text,
    extra              text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
