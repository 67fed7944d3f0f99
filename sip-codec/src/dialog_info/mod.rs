//! Dialog-info documents (RFC 4235, the `dialog` event package), as typed values: which dialogs a
//! user's phone or call controller reports, and in which state. Mapping to the engine's phone lines
//! happens in the server.

mod parse;
mod write;

#[cfg(test)]
mod tests;

use crate::DocumentError;

/// The default largest dialog-info document accepted by [`DialogInfo::parse`].
pub const DEFAULT_MAX_DOCUMENT: usize = 64 * 1024;

/// The default largest number of `<dialog>` elements in one document. A phone has a handful of
/// line appearances and a call controller reports one user's calls; more is refused rather than
/// held.
pub const DEFAULT_MAX_DIALOGS: usize = 64;

/// The MIME type of dialog-info bodies.
pub const CONTENT_TYPE: &str = "application/dialog-info+xml";

/// Why a body could not be read as a dialog-info document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogInfoError {
    /// Not a well-formed or valid document (size, depth, XML, required attributes).
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// More `<dialog>` elements than allowed.
    #[error("more than {limit} dialogs in one document")]
    TooManyDialogs {
        /// The limit.
        limit: usize,
    },
}

/// Whether a document carries every dialog or only those that changed (RFC 4235 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// `state="full"`: dialogs not listed do not exist.
    Full,
    /// `state="partial"`: dialogs not listed are unchanged.
    Partial,
}

/// A `<dialog-info>` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogInfo {
    /// The document version; a recipient ignores one not newer than what it holds (RFC 4235 §4.1.2).
    pub version: u64,
    /// Full or partial state.
    pub state: State,
    /// Whose dialogs (`entity` attribute, a URI).
    pub entity: String,
    /// The dialogs, in document order.
    pub dialogs: Vec<Dialog>,
}

/// The state of one dialog (RFC 4235 §3.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// An INVITE was sent or received, nothing answered yet.
    Trying,
    /// A provisional response without a To tag.
    Proceeding,
    /// A provisional response with a To tag (ringing).
    Early,
    /// A 2xx: the call is up.
    Confirmed,
    /// The dialog ended.
    Terminated,
}

/// Who started the dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The entity placed the call.
    Initiator,
    /// The entity received the call.
    Recipient,
}

/// One side of a dialog (`<local>` or `<remote>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Participant {
    /// The `<identity>` URI.
    pub identity: Option<String>,
    /// The `display` attribute of `<identity>`.
    pub display: Option<String>,
    /// The `uri` attribute of `<target>`.
    pub target: Option<String>,
}

/// A `<dialog>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// The `id` attribute: names the dialog across documents (partial updates refer to it).
    pub id: String,
    /// The `call-id` attribute.
    pub call_id: Option<String>,
    /// The `local-tag` attribute.
    pub local_tag: Option<String>,
    /// The `remote-tag` attribute.
    pub remote_tag: Option<String>,
    /// The `direction` attribute.
    pub direction: Option<Direction>,
    /// The `<state>` content.
    pub state: DialogState,
    /// The `event` attribute of `<state>` (`cancelled`, `rejected`, `replaced`, `local-bye`,
    /// `remote-bye`, `error`, `timeout`, or an extension), as written.
    pub event: Option<String>,
    /// The `code` attribute of `<state>`: the response that caused the state.
    pub code: Option<u16>,
    /// `<duration>` in seconds.
    pub duration: Option<u64>,
    /// `<local>`.
    pub local: Option<Participant>,
    /// `<remote>`.
    pub remote: Option<Participant>,
}

impl DialogInfo {
    /// Parses a document within [`DEFAULT_MAX_DOCUMENT`] and [`DEFAULT_MAX_DIALOGS`].
    pub fn parse(doc: &[u8]) -> Result<DialogInfo, DialogInfoError> {
        parse::parse(doc, DEFAULT_MAX_DOCUMENT, DEFAULT_MAX_DIALOGS)
    }

    /// Parses a document no larger than `max_size` bytes with at most `max_dialogs` dialogs.
    pub fn parse_with_limits(
        doc: &[u8],
        max_size: usize,
        max_dialogs: usize,
    ) -> Result<DialogInfo, DialogInfoError> {
        parse::parse(doc, max_size, max_dialogs)
    }

    /// Writes the document as UTF-8 XML.
    pub fn to_xml(&self) -> String {
        write::write(self)
    }
}

impl DialogState {
    /// The element content.
    pub fn as_str(self) -> &'static str {
        match self {
            DialogState::Trying => "trying",
            DialogState::Proceeding => "proceeding",
            DialogState::Early => "early",
            DialogState::Confirmed => "confirmed",
            DialogState::Terminated => "terminated",
        }
    }

    /// Reads the element content.
    pub fn parse(s: &str) -> Option<DialogState> {
        Some(match s {
            "trying" => DialogState::Trying,
            "proceeding" => DialogState::Proceeding,
            "early" => DialogState::Early,
            "confirmed" => DialogState::Confirmed,
            "terminated" => DialogState::Terminated,
            _ => return None,
        })
    }
}

impl Direction {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Initiator => "initiator",
            Direction::Recipient => "recipient",
        }
    }
}
