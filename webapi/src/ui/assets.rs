//! The UI's static files, embedded in the binary: its stylesheet, and htmx
//! 2.0.11 (Zero-Clause BSD, `assets/htmx-LICENSE.txt`), served under names
//! that change with their content so browsers may cache them for good.

use std::sync::LazyLock;

use axum::{
    extract::Path,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

use super::error::UiError;

const CSS: &str = include_str!("../../assets/gust.css");
const HTMX: &str = include_str!("../../assets/htmx-2.0.11.min.js");
const HTMX_LICENSE: &str = include_str!("../../assets/htmx-LICENSE.txt");

/// The stylesheet's file name, with the first hex digits of its hash.
static CSS_NAME: LazyLock<String> = LazyLock::new(|| {
    let hash = hex::encode(Sha256::digest(CSS.as_bytes()));
    format!("gust-{}.css", &hash[..12])
});

/// The URL of the stylesheet.
pub(crate) fn css_href() -> String {
    format!("/static/{}", *CSS_NAME)
}

/// The URL of htmx.
pub(crate) fn htmx_href() -> &'static str {
    "/static/htmx-2.0.11.min.js"
}

/// `GET /static/{name}`: an embedded file, cacheable for a year (its name changes with its content).
pub(crate) async fn serve(Path(name): Path<String>) -> Result<Response, UiError> {
    let (content_type, body, immutable) = if name == *CSS_NAME {
        ("text/css; charset=utf-8", CSS, true)
    } else if name == "htmx-2.0.11.min.js" {
        ("text/javascript; charset=utf-8", HTMX, true)
    } else if name == "htmx-LICENSE.txt" {
        ("text/plain; charset=utf-8", HTMX_LICENSE, false)
    } else {
        return Err(UiError::NotFound(format!("no static file `{name}`")));
    };
    let cache = if immutable { "public, max-age=31536000, immutable" } else { "public, max-age=3600" };
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(response)
}
