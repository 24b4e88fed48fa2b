//! (being built)
use crate::ui::error::UiError;
/// (being built)
pub(crate) async fn trigger_form() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn trigger() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn backfill_form() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn backfill() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
