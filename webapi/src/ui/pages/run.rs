//! (being built)
use crate::ui::error::UiError;
/// (being built)
pub(crate) async fn page() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn clear_preview() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn clear() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn mark() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn delete() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
