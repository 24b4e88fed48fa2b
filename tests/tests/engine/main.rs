//! Cross-component tests: whole gust stacks (scheduler, workers, webapi,
//! in process or as child processes) against the real PostgreSQL and
//! RabbitMQ, one module per subject. One binary, so the workspace is linked
//! once for all of them. The outage tests, which restart the services
//! themselves, are the separate binary `outages`.

mod airflow_compat;
mod assets;
mod backfills;
mod builtin_operators;
mod chaos;
mod compare_and_set;
mod connections;
mod custom_operators;
mod dag_files;
mod delivery;
mod end_to_end;
mod health_probes;
mod metrics;
mod paused_at_creation;
mod planner_statistics;
mod pools;
mod python_clients;
mod retries;
mod scheduling;
mod sensors;
mod startup;
mod task_mapping;
mod tls;
mod trigger_rules;
mod xcom_and_templates;
