//! (being built)
use crate::ui::error::UiError;
/// (being built)
pub(crate) async fn pools() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn save_pool() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn delete_pool() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn variables() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn save_variable() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn delete_variable() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn import_errors() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn dead_letters() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn users() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn save_user() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
/// (being built)
pub(crate) async fn delete_user() -> Result<String, UiError> { Err(UiError::NotFound("not built yet".into())) }
