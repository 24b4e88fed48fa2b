//! The webapi's HTTP API, one module per area, each test over its own
//! migrated database (no scheduler, no workers): the router is driven in
//! process through [`gust_tests::api::TestApi`]. One binary, so the
//! workspace is linked once for all of them.

mod auth;
mod backfills;
mod connections;
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
mod task_instances;
mod untrusted_input;
mod users;
mod variables;
