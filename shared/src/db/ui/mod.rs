//! Read models of the web UI's pages: statements shaped for one page each
//! (the grid's runs × tasks, the DAG list's last runs, the home page's
//! counts), kept apart from the engine's statements and the API's reads.

pub mod grid;
pub mod overview;
pub mod run_pages;
