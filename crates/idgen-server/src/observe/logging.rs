//! The log subscriber: `IDGEN_LOG` (or `RUST_LOG` when that is unset) filters, to stderr, as
//! text (`IDGEN_LOG_FORMAT=text`, the default) or one JSON object per line (`json`), each line
//! carrying the id of the request it was written for (`request_id`), if any. Call sites write
//! `tracing` events with fields; the shape comes from here.

use std::fmt;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use super::request_id;
use crate::config::LogFormat;

/// actix's HTTP/1 dispatcher reports every request a client got wrong (bad bytes, a head too
/// large, an HTTP/2 probe) as an ERROR `stream error`: client noise, already answered with a
/// JSON 400/431 and counted (`codec_errors`). Silenced unless the filter names actix_http.
const QUIET_DISPATCHER: &str = "actix_http::h1::dispatcher=off";

/// The filter `IDGEN_LOG` asks for, with the dispatcher's client noise off unless asked for.
fn directives(filter: &str) -> String {
    if filter.contains("actix_http") {
        filter.to_owned()
    } else {
        format!("{filter},{QUIET_DISPATCHER}")
    }
}

/// Installs the subscriber. Safe to call twice (the second call does nothing).
pub fn init(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(directives(filter))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(directives("info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(format == LogFormat::Text && std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.event_format(Text(format::Format::default())).try_init(),
        LogFormat::Json => builder.event_format(Json).try_init(),
    };
}

/// The default text format, with ` request_id=...` at the end of a request's lines.
struct Text(format::Format);

impl<S, N> FormatEvent<S, N> for Text
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(id) = request_id::current() else {
            return self.0.format_event(context, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(context, Writer::new(&mut line), event)?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        writeln!(writer, "{line} request_id={id}")
    }
}

/// One JSON object per line: `timestamp`, `level`, `target`, the event's fields (`message`
/// included), the fields of the spans it is in, and `request_id`.
struct Json;

impl<S, N> FormatEvent<S, N> for Json
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut object = Map::new();
        object.insert("timestamp".into(), Value::String(now_rfc3339()));
        object.insert("level".into(), Value::String(event.metadata().level().to_string()));
        object.insert("target".into(), Value::String(event.metadata().target().to_owned()));
        if let Some(scope) = context.event_scope() {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    object.insert(span.name().to_owned(), Value::String(fields.to_string()));
                }
            }
        }
        event.record(&mut Fields(&mut object));
        if let Some(id) = request_id::current() {
            object.entry("request_id").or_insert(Value::String(id));
        }
        let line = serde_json::to_string(&object).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

/// Collects an event's fields into a JSON object.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::String(value.to_owned()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
}

/// Now, RFC 3339 UTC with microseconds.
fn now_rfc3339() -> String {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let millis = idgen_core::wire::rfc3339_ms(now.as_millis() as u64);
    // `...T12:34:56.789Z` -> `...T12:34:56.789123Z`
    format!("{}{:03}Z", millis.trim_end_matches('Z'), now.subsec_micros() % 1000)
}
