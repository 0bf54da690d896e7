//! Keeping credentials out of spans: sensitive headers and URLs.
//!
//! The layers record no header values except `user-agent`; [`is_sensitive_header`] is the one
//! place that decides what must never be recorded, for any code that records headers.
//!
//! `url.full` on client spans is recorded by [`url_full`]: user and password are removed, the
//! fragment is dropped and every query *value* is replaced by `REDACTED` (the keys stay, so the
//! shape of the call is still visible). Redacting all values rather than guessing which look
//! secret is deliberate: signatures, tokens and API keys travel under arbitrary names.

use http::HeaderName;

/// Whether a header must never be recorded: the fixed credential headers plus the ones the user
/// marked sensitive (delegates to [`crate::global::Settings::is_sensitive_header`]).
pub fn is_sensitive_header(name: &HeaderName) -> bool {
    crate::global::settings().is_sensitive_header(name.as_str())
}

/// The value recorded as `url.full`: no credentials, no fragment, query values redacted.
pub fn url_full(url: &url::Url) -> String {
    let mut out = String::with_capacity(url.as_str().len());
    out.push_str(url.scheme());
    out.push_str("://");
    if let Some(host) = url.host_str() {
        out.push_str(host);
    }
    if let Some(port) = url.port() {
        out.push(':');
        out.push_str(&port.to_string());
    }
    out.push_str(url.path());
    if let Some(query) = url.query() {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((key, _)) => {
                    out.push_str(key);
                    out.push_str("=REDACTED");
                }
                None => out.push_str(pair),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_fragment_and_query_values_are_removed() {
        let url = url::Url::parse(
            "https://user:s3cret@api.example.com:8443/v1/items?token=abc&page=2&flag#frag",
        )
        .unwrap();
        assert_eq!(
            url_full(&url),
            "https://api.example.com:8443/v1/items?token=REDACTED&page=REDACTED&flag"
        );
    }

    #[test]
    fn plain_urls_are_unchanged() {
        let url = url::Url::parse("http://127.0.0.1:8080/trace").unwrap();
        assert_eq!(url_full(&url), "http://127.0.0.1:8080/trace");
    }

    #[test]
    fn credential_headers_are_sensitive() {
        for name in [
            "authorization",
            "cookie",
            "set-cookie",
            "proxy-authorization",
        ] {
            assert!(is_sensitive_header(&HeaderName::from_static(name)));
        }
        assert!(!is_sensitive_header(&HeaderName::from_static("user-agent")));
    }
}
