//! The service contract's environment variables and their defaults, in one place for the
//! services, `mesh` and the end-to-end tests.

use std::net::SocketAddr;

/// a's HTTP listen address.
pub const A_LISTEN: &str = "A_LISTEN";
/// b's gRPC listen address.
pub const B_LISTEN: &str = "B_LISTEN";
/// c's gRPC listen address.
pub const C_LISTEN: &str = "C_LISTEN";
/// c's HTTP listen address (`GET /work`).
pub const C_HTTP_LISTEN: &str = "C_HTTP_LISTEN";
/// Where a reaches b (gRPC).
pub const B_URL: &str = "B_URL";
/// Where a reaches c (gRPC).
pub const C_URL: &str = "C_URL";
/// Where b reaches c (HTTP).
pub const C_HTTP_URL: &str = "C_HTTP_URL";
/// Artificial work in trace1, trace2, trace3, in milliseconds.
pub const DEMO_DELAY_MS: &str = "DEMO_DELAY_MS";
/// Directory of the built frontend (`index.html` + assets) that a serves at `/`.
pub const FRONTEND_DIR: &str = "FRONTEND_DIR";

/// Default of [`A_LISTEN`].
pub const DEFAULT_A_LISTEN: &str = "127.0.0.1:8080";
/// Default of [`B_LISTEN`].
pub const DEFAULT_B_LISTEN: &str = "127.0.0.1:50051";
/// Default of [`C_LISTEN`].
pub const DEFAULT_C_LISTEN: &str = "127.0.0.1:50052";
/// Default of [`C_HTTP_LISTEN`].
pub const DEFAULT_C_HTTP_LISTEN: &str = "127.0.0.1:8083";
/// Default of [`B_URL`].
pub const DEFAULT_B_URL: &str = "http://127.0.0.1:50051";
/// Default of [`C_URL`].
pub const DEFAULT_C_URL: &str = "http://127.0.0.1:50052";
/// Default of [`C_HTTP_URL`].
pub const DEFAULT_C_HTTP_URL: &str = "http://127.0.0.1:8083";

/// The variable's value, or `default` when it is unset or empty (an empty value in a compose
/// file or a shell means "not configured", as in the OpenTelemetry spec).
pub fn var_or(name: &str, default: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => default.to_owned(),
    }
}

/// The variable parsed as `ip:port`; the error names the variable and the bad value.
pub fn socket_addr(name: &'static str, default: &str) -> Result<SocketAddr, String> {
    let value = var_or(name, default);
    value
        .trim()
        .parse()
        .map_err(|e| format!("{name}={value:?} is not an ip:port address: {e}"))
}

/// The variable as a base URL, without a trailing slash, so `{url}/work` is well formed.
pub fn base_url(name: &str, default: &str) -> String {
    var_or(name, default)
        .trim()
        .trim_end_matches('/')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_and_empty_fall_back_to_the_default() {
        assert_eq!(var_or("DEMO_COMMON_TEST_UNSET_VAR", "x"), "x");
        std::env::set_var("DEMO_COMMON_TEST_EMPTY_VAR", "  ");
        assert_eq!(var_or("DEMO_COMMON_TEST_EMPTY_VAR", "x"), "x");
    }

    #[test]
    fn a_bad_address_names_the_variable() {
        std::env::set_var("DEMO_COMMON_TEST_BAD_ADDR", "localhost");
        let err = socket_addr("DEMO_COMMON_TEST_BAD_ADDR", DEFAULT_A_LISTEN).unwrap_err();
        assert!(
            err.starts_with("DEMO_COMMON_TEST_BAD_ADDR=\"localhost\""),
            "{err}"
        );
        assert_eq!(
            socket_addr("DEMO_COMMON_TEST_UNSET_ADDR", DEFAULT_A_LISTEN).unwrap(),
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn base_urls_lose_the_trailing_slash() {
        std::env::set_var("DEMO_COMMON_TEST_URL", "http://c:8083/");
        assert_eq!(
            base_url("DEMO_COMMON_TEST_URL", DEFAULT_C_HTTP_URL),
            "http://c:8083"
        );
    }
}
