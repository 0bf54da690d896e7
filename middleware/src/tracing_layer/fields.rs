//! `tracing` fields to span attributes and span events, with tracing-opentelemetry 0.33's rules
//! (default configuration, which tracebridge used before it had its own layer), so a span reads
//! the same in Jaeger whichever layer recorded it:
//!
//! - span fields become attributes under their field name; `otel.name`, `otel.kind`,
//!   `otel.status_code` and `otel.status_description` set the span's name, kind and status;
//! - an event's `message` becomes the span event's name; its other fields its attributes;
//! - an `error` field of an event without a message makes it an `exception` event with
//!   `exception.message` and sets the span's status to an error;
//! - an `&dyn Error` field adds `exception.message` / `exception.stacktrace` (the source chain)
//!   and `<field>.chain`.
//!
//! The difference is the storage: a span's attributes go into [`Attrs`] (static keys, integers
//! inline, every dynamic string into one shared buffer) instead of a `KeyValue` with a `String`
//! each.

use std::fmt;
use std::fmt::Write as _;

use opentelemetry::trace::{Event, SpanKind, Status};
use opentelemetry::{Array, Key, KeyValue, StringValue, Value};
use tracing::field::{Field, Visit};

use crate::pipeline::record::Attrs;
use crate::pipeline::recorder::Recorder;

pub(super) const SPAN_NAME_FIELD: &str = "otel.name";
pub(super) const SPAN_KIND_FIELD: &str = "otel.kind";
pub(super) const SPAN_STATUS_CODE_FIELD: &str = "otel.status_code";
pub(super) const SPAN_STATUS_DESCRIPTION_FIELD: &str = "otel.status_description";
const EVENT_EXCEPTION_NAME: &str = "exception";
const FIELD_EXCEPTION_MESSAGE: &str = "exception.message";
const FIELD_EXCEPTION_STACKTRACE: &str = "exception.stacktrace";

/// What a span's fields change besides its attributes.
#[derive(Default)]
pub(super) struct SpanUpdates {
    pub(super) name: Option<String>,
    pub(super) kind: Option<SpanKind>,
    pub(super) status: Option<Status>,
}

/// A span's fields (at creation or `Span::record`) into attributes and [`SpanUpdates`].
pub(super) struct SpanFields<'a> {
    pub(super) attrs: &'a mut Attrs,
    pub(super) updates: &'a mut SpanUpdates,
}

impl Visit for SpanFields<'_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attrs.push(KeyValue::new(field.name(), value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attrs.push(KeyValue::new(field.name(), value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attrs.push_i64(field.name(), value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            SPAN_NAME_FIELD => self.updates.name = Some(value.to_owned()),
            SPAN_KIND_FIELD => self.updates.kind = str_to_span_kind(value),
            SPAN_STATUS_CODE_FIELD => self.updates.status = Some(str_to_status(value)),
            SPAN_STATUS_DESCRIPTION_FIELD => {
                self.updates.status = Some(Status::error(value.to_owned()))
            }
            name => self.attrs.push_str(name, value),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            SPAN_NAME_FIELD => self.updates.name = Some(format!("{value:?}")),
            SPAN_KIND_FIELD => self.updates.kind = str_to_span_kind(&format!("{value:?}")),
            SPAN_STATUS_CODE_FIELD => {
                self.updates.status = Some(str_to_status(&format!("{value:?}")))
            }
            SPAN_STATUS_DESCRIPTION_FIELD => {
                self.updates.status = Some(Status::error(format!("{value:?}")))
            }
            name => self.attrs.push_debug(name, value),
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let (message, chain) = error_chain(value);
        self.attrs.push(KeyValue::new(
            FIELD_EXCEPTION_MESSAGE,
            Value::from(message.clone()),
        ));
        self.attrs.push(KeyValue::new(
            FIELD_EXCEPTION_STACKTRACE,
            Value::Array(chain.clone().into()),
        ));
        self.attrs.push_str(field.name(), &message);
        self.attrs.push(KeyValue::new(
            Key::new(format!("{}.chain", field.name())),
            Value::Array(chain.into()),
        ));
    }
}

/// An event's fields into a span event, and what they change on the span.
pub(super) struct EventFields<'a> {
    pub(super) event: &'a mut Event,
    /// Where the message's string comes from (a reused one when the recorder has one).
    pub(super) recorder: &'a Recorder,
    /// The span's status (an `error` field) and attributes (an `&dyn Error` field).
    pub(super) status: &'a mut Option<Status>,
    pub(super) span_attrs: &'a mut Vec<KeyValue>,
}

impl EventFields<'_> {
    fn error_field(&mut self, value: String) {
        *self.status = Some(Status::error(value.clone()));
        self.event.name = EVENT_EXCEPTION_NAME.into();
        self.event
            .attributes
            .push(KeyValue::new(FIELD_EXCEPTION_MESSAGE, value));
    }
}

impl Visit for EventFields<'_> {
    fn record_bool(&mut self, field: &Field, value: bool) {
        match field.name() {
            "message" => self.event.name = value.to_string().into(),
            name => self.event.attributes.push(KeyValue::new(name, value)),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        match field.name() {
            "message" => self.event.name = value.to_string().into(),
            name => self.event.attributes.push(KeyValue::new(name, value)),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            "message" => self.event.name = value.to_string().into(),
            name => self.event.attributes.push(KeyValue::new(name, value)),
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => {
                let mut name = self.recorder.name(value.len());
                name.push_str(value);
                self.event.name = name.into();
            }
            "error" if self.event.name.is_empty() => self.error_field(format!("{value:?}")),
            name => self
                .event
                .attributes
                .push(KeyValue::new(name, value.to_owned())),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                // The message is `format_args!`: written into a reused string, not `format!`.
                let mut name = self.recorder.name(32);
                let _ = write!(name, "{value:?}");
                self.event.name = name.into();
            }
            "error" if self.event.name.is_empty() => self.error_field(format!("{value:?}")),
            name => self
                .event
                .attributes
                .push(KeyValue::new(name, format!("{value:?}"))),
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let (message, chain) = error_chain(value);
        self.event.attributes.push(KeyValue::new(
            FIELD_EXCEPTION_MESSAGE,
            Value::String(StringValue::from(message.clone())),
        ));
        self.event.attributes.push(KeyValue::new(
            FIELD_EXCEPTION_STACKTRACE,
            Value::Array(chain.clone().into()),
        ));
        self.span_attrs.push(KeyValue::new(
            FIELD_EXCEPTION_MESSAGE,
            Value::String(message.clone().into()),
        ));
        self.span_attrs.push(KeyValue::new(
            FIELD_EXCEPTION_STACKTRACE,
            Value::Array(chain.clone().into()),
        ));
        self.event.attributes.push(KeyValue::new(
            field.name(),
            Value::String(StringValue::from(message)),
        ));
        self.event.attributes.push(KeyValue::new(
            Key::new(format!("{}.chain", field.name())),
            Value::Array(Array::String(chain)),
        ));
    }
}

/// The error's message and its source chain.
fn error_chain(value: &(dyn std::error::Error + 'static)) -> (String, Vec<StringValue>) {
    let mut chain = Vec::new();
    let mut next = value.source();
    while let Some(err) = next {
        chain.push(err.to_string().into());
        next = err.source();
    }
    (value.to_string(), chain)
}

fn str_to_span_kind(s: &str) -> Option<SpanKind> {
    match s {
        s if s.eq_ignore_ascii_case("server") => Some(SpanKind::Server),
        s if s.eq_ignore_ascii_case("client") => Some(SpanKind::Client),
        s if s.eq_ignore_ascii_case("producer") => Some(SpanKind::Producer),
        s if s.eq_ignore_ascii_case("consumer") => Some(SpanKind::Consumer),
        s if s.eq_ignore_ascii_case("internal") => Some(SpanKind::Internal),
        _ => None,
    }
}

fn str_to_status(s: &str) -> Status {
    match s {
        s if s.eq_ignore_ascii_case("ok") => Status::Ok,
        s if s.eq_ignore_ascii_case("error") => Status::error(""),
        _ => Status::Unset,
    }
}
