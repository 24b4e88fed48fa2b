//! `limit` and `offset` query parameters, as Airflow reads them: `limit`
//! defaults to 50 and is capped silently at 1000; negative values are a 400.

use serde::Deserialize;

use crate::error::ApiError;

/// Page size when the client names none.
pub(crate) const DEFAULT_LIMIT: i64 = 50;
/// Largest page; bigger requests get this many (Airflow's `maximum_page_limit`).
pub(crate) const MAX_LIMIT: i64 = 1000;

/// The raw `limit` and `offset` query parameters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageParams {
    limit: Option<i64>,
    offset: Option<i64>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    /// Most items to return.
    pub(crate) limit: i64,
    /// Items to skip.
    pub(crate) offset: i64,
}

impl PageParams {
    /// Checks the parameters and applies the default and the cap.
    pub(crate) fn page(&self) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        let offset = self.offset.unwrap_or(0);
        if limit < 0 {
            return Err(ApiError::BadRequest(format!("`limit` must be 0 or more, got {limit}")));
        }
        if offset < 0 {
            return Err(ApiError::BadRequest(format!("`offset` must be 0 or more, got {offset}")));
        }
        Ok(Page { limit: limit.min(MAX_LIMIT), offset })
    }
}

impl Page {
    /// The part of an in-memory list this page covers.
    pub(crate) fn slice<T>(self, items: Vec<T>) -> Vec<T> {
        let offset = usize::try_from(self.offset).unwrap_or(usize::MAX);
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        items.into_iter().skip(offset).take(limit).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(limit: Option<i64>, offset: Option<i64>) -> Result<Page, ApiError> {
        PageParams { limit, offset }.page()
    }

    #[test]
    fn no_parameters_mean_the_first_fifty() {
        assert_eq!(page(None, None).unwrap(), Page { limit: 50, offset: 0 });
    }

    #[test]
    fn a_limit_over_the_maximum_is_capped_silently() {
        assert_eq!(page(Some(5000), Some(10)).unwrap(), Page { limit: MAX_LIMIT, offset: 10 });
        assert_eq!(page(Some(0), None).unwrap().limit, 0);
    }

    #[test]
    fn negative_limit_or_offset_is_a_bad_request_naming_the_parameter() {
        let limit = page(Some(-1), None).unwrap_err().to_string();
        assert!(limit.contains("`limit`"), "{limit}");
        let offset = page(None, Some(-3)).unwrap_err().to_string();
        assert!(offset.contains("`offset`"), "{offset}");
    }

    #[test]
    fn query_strings_parse_into_page_params() {
        let params: PageParams = serde_urlencoded_like("limit=7&offset=2&other=x");
        assert_eq!(params.page().unwrap(), Page { limit: 7, offset: 2 });
    }

    #[test]
    fn a_page_slices_an_in_memory_list() {
        let items: Vec<i32> = (0..10).collect();
        assert_eq!(Page { limit: 3, offset: 8 }.slice(items.clone()), vec![8, 9]);
        assert_eq!(Page { limit: 2, offset: 20 }.slice(items), Vec::<i32>::new());
    }

    /// Parses a query string the way the `Query` extractor does.
    fn serde_urlencoded_like(query: &str) -> PageParams {
        let uri: axum::http::Uri = format!("/x?{query}").parse().unwrap();
        axum::extract::Query::<PageParams>::try_from_uri(&uri).unwrap().0
    }
}
