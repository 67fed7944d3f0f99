//! The server's operational log: every `tracing` event of the process, filtered by `[log] level` (or `RUST_LOG`)
//! and written to standard error as text or JSON lines, so standard output stays the CLI's own.

use std::io::IsTerminal;

use tracing::Dispatch;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use crate::config::{LogConfig, LogFormat};

/// The environment variable that, when set, replaces `[log] level`, as every `tracing` program lets it.
pub const RUST_LOG: &str = "RUST_LOG";

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The filter directive (from `[log] level` or `RUST_LOG`) does not parse.
    #[error("{origin} = {value:?} is not a log filter directive: {message}")]
    BadFilter {
        /// Where the directive came from: `log.level` or `RUST_LOG`.
        origin: &'static str,
        /// The directive.
        value: String,
        /// What the parser said.
        message: String,
    },
    /// A global subscriber was installed already (by an embedder, or a second call).
    #[error("cannot install the log subscriber: {0}")]
    AlreadySet(String),
}

/// Installs the process-wide subscriber described by `log`, writing to standard error. `RUST_LOG`, when set and
/// not empty, replaces `log.level`, so an operator can turn up one module without editing the file.
pub fn init(log: &LogConfig) -> Result<(), LoggingError> {
    let rust_log = std::env::var(RUST_LOG).ok();
    // Colours only for a person at a terminal; escape codes would litter a journal or a file.
    let ansi = std::io::stderr().is_terminal();
    let dispatch = dispatch(log, rust_log.as_deref(), std::io::stderr, ansi)?;
    tracing::dispatcher::set_global_default(dispatch)
        .map_err(|e| LoggingError::AlreadySet(e.to_string()))
}

/// The filter `init` uses: `rust_log` when set and not empty, else `level`.
fn filter(level: &str, rust_log: Option<&str>) -> Result<EnvFilter, LoggingError> {
    let (origin, value) = match rust_log {
        Some(v) if !v.trim().is_empty() => (RUST_LOG, v),
        _ => ("log.level", level),
    };
    EnvFilter::builder()
        .parse(value)
        .map_err(|e| LoggingError::BadFilter {
            origin,
            value: value.to_owned(),
            message: e.to_string(),
        })
}

/// The subscriber `init` installs, writing to `writer`; separate from `init` so tests can read what it writes.
fn dispatch<W>(
    log: &LogConfig,
    rust_log: Option<&str>,
    writer: W,
    ansi: bool,
) -> Result<Dispatch, LoggingError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = filter(&log.level, rust_log)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // Warnings and errors are also kept for the status page (`crate::status::errors`).
    let recent = crate::status::errors::global().layer();
    Ok(match log.format {
        LogFormat::Text => Dispatch::new(builder.with_ansi(ansi).finish().with(recent)),
        // JSON is for collectors: no colour codes inside the strings, whatever the terminal.
        LogFormat::Json => Dispatch::new(builder.json().with_ansi(false).finish().with(recent)),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer that keeps everything written to it.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("not poisoned").clone()).expect("utf-8")
        }
    }

    fn config(level: &str, format: LogFormat) -> LogConfig {
        LogConfig {
            level: level.into(),
            format,
        }
    }

    /// Emits one event at each of info and debug through the subscriber for `log`/`rust_log`; returns the output.
    fn emit(log: &LogConfig, rust_log: Option<&str>) -> String {
        let out = Captured::default();
        let d = dispatch(log, rust_log, out.clone(), false).expect("valid filter");
        tracing::dispatcher::with_default(&d, || {
            tracing::info!(user = "alice@example.com", "signed in");
            tracing::debug!("routine detail");
        });
        out.text()
    }

    #[test]
    fn the_level_filters_events() {
        let out = emit(&config("info", LogFormat::Text), None);
        assert!(out.contains("signed in"), "{out}");
        assert!(out.contains("alice@example.com"), "{out}");
        assert!(!out.contains("routine detail"), "{out}");

        let out = emit(&config("warn", LogFormat::Text), None);
        assert_eq!(out, "", "nothing at info passes warn");
    }

    #[test]
    fn rust_log_overrides_the_level_unless_empty() {
        let out = emit(&config("warn", LogFormat::Text), Some("debug"));
        assert!(
            out.contains("signed in") && out.contains("routine detail"),
            "{out}"
        );

        let out = emit(&config("info", LogFormat::Text), Some("error"));
        assert_eq!(out, "", "RUST_LOG=error hides info");

        let out = emit(&config("info", LogFormat::Text), Some("  "));
        assert!(
            out.contains("signed in"),
            "an empty RUST_LOG falls back: {out}"
        );
    }

    #[test]
    fn json_writes_one_object_per_event() {
        let out = emit(&config("info", LogFormat::Json), None);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        let line = lines[0];
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
        assert!(line.contains(r#""level":"INFO""#), "{line}");
        assert!(line.contains(r#""message":"signed in""#), "{line}");
        assert!(line.contains(r#""user":"alice@example.com""#), "{line}");
    }

    #[test]
    fn text_is_not_json() {
        let out = emit(&config("info", LogFormat::Text), None);
        assert!(!out.trim_start().starts_with('{'), "{out}");
        assert!(out.contains("INFO"), "{out}");
    }

    #[test]
    fn bad_directives_name_their_origin() {
        let e = filter("info", Some("server_sip=loud")).expect_err("bad RUST_LOG");
        let msg = e.to_string();
        assert!(
            msg.starts_with("RUST_LOG = \"server_sip=loud\" is not a log filter directive"),
            "{msg}"
        );
        let e = filter("info,x=loud", None).expect_err("bad level");
        assert!(
            e.to_string().starts_with("log.level = \"info,x=loud\""),
            "{e}"
        );
    }
}
