//! The webapi's HTTP API, one module per area, each test over its own
//! migrated database (no scheduler, no workers): the router is driven in
//! process through [`gust_tests::api::TestApi`]. One binary, so the
//! workspace is linked once for all of them.

mod admin;
mod airflow_api_table;
mod assets;
mod auth;
mod backfills;
mod connections;
mod dag_details;
mod dag_runs;
mod dags;
mod errors;
mod event_logs;
mod health;
mod metrics;
mod openapi;
mod params;
mod pools;
mod repair;
mod routes;
mod run_operations;
mod task_instances;
mod ti_operations;
mod untrusted_input;
mod users;
mod variables;
