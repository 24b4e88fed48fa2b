//! One module per page or page family of the UI.

pub(crate) mod admin;
pub(crate) mod dag;
pub(crate) mod dags;
pub(crate) mod home;
pub(crate) mod run;
pub(crate) mod task;
pub(crate) mod trigger;
