//! Errors of message parsing and framing.

use std::borrow::Cow;

/// Which layer of the parser rejected the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorLayer {
    /// A configured limit was exceeded (message size, header count, line length).
    Limit,
    /// The message boundaries could not be determined (Content-Length, header terminator).
    Framing,
    /// The Request-Line or Status-Line is malformed.
    StartLine,
    /// A header line is malformed (no colon, bad name, not UTF-8).
    HeaderSyntax,
}

/// Why a byte sequence is not a SIP message; `reason` is short enough for a SIP reason phrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// The layer that rejected the input.
    pub layer: ErrorLayer,
    /// A short, printable explanation (never contains CR or LF).
    pub reason: Cow<'static, str>,
}

impl ParseError {
    pub(crate) fn new(layer: ErrorLayer, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            layer,
            reason: reason.into(),
        }
    }

    pub(crate) fn limit(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorLayer::Limit, reason)
    }

    pub(crate) fn framing(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorLayer::Framing, reason)
    }

    pub(crate) fn start_line(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorLayer::StartLine, reason)
    }

    pub(crate) fn header(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorLayer::HeaderSyntax, reason)
    }

    /// The status code a server should answer with: 513 when a size limit was hit, 400 otherwise.
    pub fn status_code(&self) -> u16 {
        match self.layer {
            ErrorLayer::Limit => 513,
            _ => 400,
        }
    }

    /// The reason phrase to put in the error response.
    pub fn reason_phrase(&self) -> &str {
        &self.reason
    }
}
