//! (being built)
use crate::ui::error::UiError;
/// (being built)
pub(crate) async fn grid() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn graph() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn gantt() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn runs() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn code() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn params() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
