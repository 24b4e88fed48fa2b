//! (being built)
use crate::ui::error::UiError;
/// (being built)
pub(crate) async fn page() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
