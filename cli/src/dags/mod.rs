//! `gust dags …`: commands about whole DAGs, one module each.

pub mod next_runs;
pub mod show;
pub mod test_run;
pub mod validate;
