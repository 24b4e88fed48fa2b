//! The web UI: pages rendered against a real database through
//! [`gust_tests::api::TestApi`] and read with CSS selectors, and the whole
//! flow driven in headless Chromium against a running stack. One binary, so
//! the workspace is linked once for all of them.

mod browser;
mod dag_pages;
mod forms;
mod pages;
mod run_pages;
mod security;
