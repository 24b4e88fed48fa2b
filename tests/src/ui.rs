//! Helpers of the `ui` test binary: fetch a UI page through a [`TestApi`]
//! and read it as HTML with CSS selectors, and send forms as a browser would.

use axum::{
    body::Body,
    http::{header, HeaderMap, Method, Request, StatusCode},
};
use scraper::{ElementRef, Html, Selector};

use crate::api::{Reply, TestApi};

/// A UI page as the server sent it, parsed.
pub struct Page {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body as text.
    pub body: String,
    /// Its body parsed as an HTML document.
    pub html: Html,
}

impl Page {
    fn from_reply(reply: Reply) -> Self {
        let body = reply.text();
        Page { status: reply.status, headers: reply.headers, html: Html::parse_document(&body), body }
    }

    /// Every element matching the CSS selector `css`.
    pub fn select(&self, css: &str) -> Vec<ElementRef<'_>> {
        let selector = Selector::parse(css).unwrap_or_else(|e| panic!("bad selector {css:?}: {e:?}"));
        self.html.select(&selector).collect()
    }

    /// The text of every element matching `css`, whitespace trimmed.
    pub fn texts(&self, css: &str) -> Vec<String> {
        self.select(css).iter().map(|e| e.text().collect::<String>().trim().to_string()).collect()
    }

    /// True when some element matches `css`.
    pub fn has(&self, css: &str) -> bool {
        !self.select(css).is_empty()
    }

    /// The value of attribute `name` of every element matching `css`.
    pub fn attrs(&self, css: &str, name: &str) -> Vec<String> {
        self.select(css).iter().filter_map(|e| e.value().attr(name).map(str::to_string)).collect()
    }

    /// Asserts a 200 HTML page; returns it for chaining.
    #[track_caller]
    pub fn assert_ok(self) -> Self {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.body);
        let content_type = self.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(content_type.starts_with("text/html"), "content-type {content_type:?}");
        self
    }
}

impl TestApi {
    /// `GET path` as the admin (bearer token), parsed as HTML.
    pub async fn page(&self, path: &str) -> Page {
        Page::from_reply(self.get(path).await)
    }

    /// `GET path` with `token` as bearer (`None`: no credentials), parsed as HTML.
    pub async fn page_as(&self, token: Option<&str>, path: &str) -> Page {
        Page::from_reply(self.send_as(token, Method::GET, path, None).await)
    }

    /// `POST path` with an urlencoded form, with `token` as bearer (no CSRF token needed, as for scripts).
    pub async fn post_form(&self, token: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_html_form_body(fields);
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        Page::from_reply(self.send_raw(request).await)
    }

    /// `POST path` with a form as a browser session sends it: the session
    /// cookie holding `token`, an `Origin` and `Host` of `origin_host`, and the fields as given
    /// (include `csrf` to pass the CSRF check).
    pub async fn post_form_with_cookie(
        &self,
        token: &str,
        origin_host: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Page {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::COOKIE, format!("gust_session={token}"))
            .header(header::HOST, "gust.test")
            .header(header::ORIGIN, origin_host)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(serde_html_form_body(fields)))
            .unwrap();
        Page::from_reply(self.send_raw(request).await)
    }
}

/// `a=1&b=two` with each key and value percent-encoded.
fn serde_html_form_body(fields: &[(&str, &str)]) -> String {
    fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
