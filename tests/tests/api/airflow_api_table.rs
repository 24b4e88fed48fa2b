//! README.md's table of Airflow's API areas stays true: it is built from
//! Airflow 3.3.2's own OpenAPI document and gust's.

use gust_tests::airflow_api::{self, TABLE_END, TABLE_START};

#[test]
fn the_readme_table_of_airflow_api_areas_says_which_operations_gust_serves() {
    let airflow = airflow_api::airflow_document();
    let table = airflow_api::coverage_table(&airflow, &airflow_api::gust_document());
    let readme_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("reading README.md");
    let in_readme = airflow_api::readme_table(&readme).unwrap_or_else(|| {
        panic!("README.md has no `{TABLE_START}` … `{TABLE_END}` section; put this table between them:\n\n{table}")
    });
    assert!(
        in_readme == table.trim_end(),
        "README.md's table of Airflow's API areas is out of date; replace it (between `{TABLE_START}` and \
         `{TABLE_END}`) with:\n\n{table}"
    );
}
