//! One log stream: dropshot logs through `slog`, the server through
//! `tracing`; both writing to stderr on their own interleaved and garbled
//! lines under load. [`dropshot_logger`] gives dropshot a `slog` logger whose
//! every record becomes one `tracing` event (message and key-values on one
//! line), so the one `tracing` subscriber writes every line whole and its
//! filter (`server.log_level`, `RUST_LOG`) governs both.

use std::fmt::{self, Write as _};

use slog::{Drain, Key, Level, OwnedKVList, Record, Serializer, KV};

/// A `slog` logger that forwards to `tracing` under the target `dropshot`.
pub fn dropshot_logger() -> slog::Logger {
    slog::Logger::root(ToTracing.fuse(), slog::o!())
}

struct ToTracing;

impl Drain for ToTracing {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        // dropshot logs every request; below the filter's level, the
        // record is dropped before anything is formatted.
        if !self.is_enabled(record.level()) {
            return Ok(());
        }
        let mut line = Line(record.msg().to_string());
        // A key-value that does not serialize is left out, not fatal.
        let _ = record.kv().serialize(record, &mut line);
        let _ = values.serialize(record, &mut line);
        let line = line.0;
        match record.level() {
            Level::Critical | Level::Error => tracing::error!(target: "dropshot", "{line}"),
            Level::Warning => tracing::warn!(target: "dropshot", "{line}"),
            Level::Info => tracing::info!(target: "dropshot", "{line}"),
            Level::Debug => tracing::debug!(target: "dropshot", "{line}"),
            Level::Trace => tracing::trace!(target: "dropshot", "{line}"),
        }
        Ok(())
    }

    fn is_enabled(&self, level: Level) -> bool {
        use tracing::Level as T;
        match level {
            Level::Critical | Level::Error => tracing::enabled!(target: "dropshot", T::ERROR),
            Level::Warning => tracing::enabled!(target: "dropshot", T::WARN),
            Level::Info => tracing::enabled!(target: "dropshot", T::INFO),
            Level::Debug => tracing::enabled!(target: "dropshot", T::DEBUG),
            Level::Trace => tracing::enabled!(target: "dropshot", T::TRACE),
        }
    }
}

/// The message, then ` key=value` for each key-value.
struct Line(String);

impl Serializer for Line {
    fn emit_arguments(&mut self, key: Key, value: &fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, " {key}={value}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_line_with_its_values() {
        let mut line = Line("request completed".into());
        let kv = slog::o!("status" => 200, "uri" => "/_allauth/app/v1/config");
        let record_static = slog::record_static!(Level::Info, "");
        let args = format_args!("request completed");
        let record = Record::new(&record_static, &args, slog::b!());
        kv.serialize(&record, &mut line).unwrap();
        assert!(line.0.starts_with("request completed"));
        assert!(line.0.contains(" status=200"), "{}", line.0);
        assert!(
            line.0.contains(" uri=/_allauth/app/v1/config"),
            "{}",
            line.0
        );
        assert!(!line.0.contains('\n'));
    }
}
