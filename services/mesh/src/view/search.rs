//! `GET /api/traces?service=…` parameters and matching, as Jaeger v2's query service and its
//! in-memory storage do them: a trace matches when ONE of its spans has the service, the
//! operation, a duration within `minDuration`..=`maxDuration`, a start within `start`..=`end`
//! and every tag (`tag=key:value` or `tags={"key":"value"}`) — a tag matching the span's
//! attributes, its resource's or one of its events', compared as text, and `error=true` /
//! `error=false` meaning status ERROR / status OK. The trace received last first, at most
//! `limit`.
//!
//! Where the view differs from Jaeger: `service` may be left out (all services; Jaeger answers
//! 400); without `start` the view searches every stored trace, or `lookback` (`1h`, `2d`)
//! back from `end`; `error=true` finds ERROR spans (Jaeger 2.13's memory store finds OK ones,
//! see `tag_matches`).

use std::collections::BTreeMap;
use std::time::Duration;

use tracebridge_testkit::{SpanRecord, Status};

/// Jaeger's default number of traces per search.
pub const DEFAULT_LIMIT: usize = 100;

/// A parsed search.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// `service`.
    pub service: Option<String>,
    /// `operation`.
    pub operation: Option<String>,
    /// `tag=k:v` and `tags={…}` together.
    pub tags: BTreeMap<String, String>,
    /// `minDuration`.
    pub min_duration: Option<Duration>,
    /// `maxDuration`.
    pub max_duration: Option<Duration>,
    /// `start` (unix microseconds), or `end - lookback`.
    pub start_micros: Option<u64>,
    /// `end` (unix microseconds).
    pub end_micros: Option<u64>,
    /// `limit`.
    pub limit: usize,
    /// `traceID` (repeatable): these traces, whatever the other parameters say.
    pub trace_ids: Vec<String>,
}

fn nonempty(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

impl Query {
    /// Parses the query string's pairs; the error is Jaeger's message for the bad parameter.
    pub fn parse(pairs: &[(String, String)]) -> Result<Query, String> {
        let mut q = Query {
            limit: DEFAULT_LIMIT,
            ..Query::default()
        };
        let mut lookback = None;
        for (key, value) in pairs {
            let bad = |e: String| format!("unable to parse param '{key}': {e}");
            match key.as_str() {
                "service" => q.service = nonempty(value),
                "operation" => q.operation = nonempty(value),
                "tag" => {
                    let (k, v) = value.split_once(':').ok_or_else(|| {
                        format!("malformed 'tag' parameter, expecting key:value, received: {value}")
                    })?;
                    q.tags.insert(k.to_owned(), v.to_owned());
                }
                "tags" if !value.trim().is_empty() => {
                    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(value)
                        .map_err(|e| format!("malformed 'tags' parameter: {e}"))?;
                    for (k, v) in map {
                        let v = match v {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        };
                        q.tags.insert(k, v);
                    }
                }
                "minDuration" if !value.is_empty() => {
                    q.min_duration = Some(parse_duration(value).map_err(bad)?)
                }
                "maxDuration" if !value.is_empty() => {
                    q.max_duration = Some(parse_duration(value).map_err(bad)?)
                }
                "start" if !value.is_empty() => {
                    q.start_micros = Some(value.parse().map_err(|e| bad(format!("{e}")))?)
                }
                "end" if !value.is_empty() => {
                    q.end_micros = Some(value.parse().map_err(|e| bad(format!("{e}")))?)
                }
                "limit" if !value.is_empty() => {
                    q.limit = value.parse().map_err(|e| bad(format!("{e}")))?;
                    if q.limit == 0 {
                        return Err(
                            "search depth must be greater than 0 and less than max traces".into(),
                        );
                    }
                }
                // Jaeger UI's relative window; "custom" means start/end are given.
                "lookback" => lookback = parse_duration(value).ok(),
                "traceID" => {
                    let id = crate::view::jaeger::parse_trace_id(value)
                        .ok_or_else(|| format!("cannot parse traceID param: {value}"))?;
                    q.trace_ids.push(id);
                }
                _ => {}
            }
        }
        if let (None, Some(lookback)) = (q.start_micros, lookback) {
            let end = q.end_micros.unwrap_or_else(now_micros);
            q.start_micros = Some(end.saturating_sub(lookback.as_micros() as u64));
        }
        if let (Some(min), Some(max)) = (q.min_duration, q.max_duration) {
            if max < min {
                return Err("'maxDuration' should be greater than 'minDuration'".into());
            }
        }
        Ok(q)
    }

    /// True when one span of `trace` satisfies every criterion.
    pub fn matches(&self, trace: &[SpanRecord]) -> bool {
        if !self.trace_ids.is_empty() {
            return trace
                .first()
                .is_some_and(|s| self.trace_ids.contains(&s.trace_id));
        }
        trace.iter().any(|span| self.span_matches(span))
    }

    fn span_matches(&self, span: &SpanRecord) -> bool {
        let start_micros = span.start_unix_nanos / 1000;
        self.service
            .as_ref()
            .is_none_or(|s| span.service_name == *s)
            && self.operation.as_ref().is_none_or(|o| span.name == *o)
            && self.min_duration.is_none_or(|d| span.duration() >= d)
            && self.max_duration.is_none_or(|d| span.duration() <= d)
            && self.start_micros.is_none_or(|t| start_micros >= t)
            && self.end_micros.is_none_or(|t| start_micros <= t)
            && self.tags.iter().all(|(k, v)| tag_matches(span, k, v))
    }
}

fn tag_matches(span: &SpanRecord, key: &str, value: &str) -> bool {
    if key == "error" {
        // Jaeger v2.13's memory store means the same (`error=false`: status OK), but reads the
        // value with `Bool()` from a map of strings — always false — so there `error=true` finds
        // spans with status OK, a bug the view does not copy.
        return match value {
            "true" => span.status.is_error(),
            _ => span.status == Status::Ok,
        };
    }
    let is = |attrs: &BTreeMap<String, tracebridge_testkit::AttrValue>| {
        attrs.get(key).is_some_and(|v| v.to_string() == value)
    };
    is(&span.attributes) || is(&span.resource) || span.events.iter().any(|e| is(&e.attributes))
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A Go duration (`300ms`, `1.5s`, `1h30m`, `20us`), as Jaeger's API takes them, plus `d` and
/// `w` for lookbacks. Hand-written: Go's format is not humantime's (`1.5s`, `µs`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration \"{text}\"");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        if number_len == 0 {
            return Err(invalid());
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86400e9,
            "w" => 7.0 * 86400e9,
            _ => return Err(invalid()),
        };
        total += number * nanos_per;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("20us"), Ok(Duration::from_micros(20)));
        assert_eq!(parse_duration("20µs"), Ok(Duration::from_micros(20)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "bad", "10", "ms", "1x", "-"] {
            assert_eq!(
                parse_duration(bad),
                Err(format!("time: invalid duration \"{bad}\"")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parses_jaeger_params() {
        let q = Query::parse(&pairs(&[
            ("service", "service-c"),
            ("operation", "ping.PingC/Ping"),
            ("tag", "error:true"),
            (
                "tags",
                r#"{"rpc.grpc.status_code":13,"http.route":"/trace"}"#,
            ),
            ("minDuration", "1ms"),
            ("maxDuration", "2s"),
            ("start", "100"),
            ("end", "200"),
            ("limit", "20"),
            ("lookback", "custom"),
        ]))
        .unwrap();
        assert_eq!(q.service.as_deref(), Some("service-c"));
        assert_eq!(q.operation.as_deref(), Some("ping.PingC/Ping"));
        assert_eq!(
            q.tags.into_iter().collect::<Vec<_>>(),
            vec![
                ("error".to_owned(), "true".to_owned()),
                ("http.route".to_owned(), "/trace".to_owned()),
                ("rpc.grpc.status_code".to_owned(), "13".to_owned()),
            ]
        );
        assert_eq!(q.min_duration, Some(Duration::from_millis(1)));
        assert_eq!(q.max_duration, Some(Duration::from_secs(2)));
        assert_eq!((q.start_micros, q.end_micros), (Some(100), Some(200)));
        assert_eq!(q.limit, 20);

        let q = Query::parse(&pairs(&[("end", "10000000"), ("lookback", "1s")])).unwrap();
        assert_eq!(q.start_micros, Some(9_000_000));
        assert_eq!(q.limit, DEFAULT_LIMIT);
        assert_eq!(q.service, None);

        assert_eq!(
            Query::parse(&pairs(&[("minDuration", "bad")])),
            Err("unable to parse param 'minDuration': time: invalid duration \"bad\"".into())
        );
        assert!(Query::parse(&pairs(&[("tag", "novalue")])).is_err());
        assert!(Query::parse(&pairs(&[("limit", "0")])).is_err());
        assert!(Query::parse(&pairs(&[("minDuration", "2s"), ("maxDuration", "1s")])).is_err());
    }
}
