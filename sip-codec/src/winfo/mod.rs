//! Watcher-info documents (RFC 3857 event package, RFC 3858 format), as typed values.

mod parse;
mod write;

/// The default largest watcher-info document accepted by [`WatcherInfo::parse`].
pub const DEFAULT_MAX_DOCUMENT: usize = 256 * 1024;

/// The MIME type of watcher-info bodies.
pub const CONTENT_TYPE: &str = "application/watcherinfo+xml";

/// Whether a document carries the whole state or changes since the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// `state="full"`
    Full,
    /// `state="partial"`
    Partial,
}

/// A `<watcherinfo>` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherInfo {
    /// The document version (increments with each NOTIFY).
    pub version: u32,
    /// Full or partial state.
    pub state: State,
    /// One list per watched resource and package.
    pub lists: Vec<WatcherList>,
}

/// A `<watcher-list>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherList {
    /// The watched resource URI.
    pub resource: String,
    /// The event package (`presence`).
    pub package: String,
    /// The watchers.
    pub watchers: Vec<Watcher>,
}

/// Subscription status of a watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Awaiting authorization.
    Pending,
    /// Authorized.
    Active,
    /// Rejected or expired while pending; kept to show the attempt.
    Waiting,
    /// Ended.
    Terminated,
}

/// What caused the last status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatcherEvent {
    /// subscribe
    Subscribe,
    /// approved
    Approved,
    /// deactivated
    Deactivated,
    /// probation
    Probation,
    /// rejected
    Rejected,
    /// timeout
    Timeout,
    /// giveup
    Giveup,
    /// noresource
    Noresource,
    /// An extension event.
    Other(String),
}

/// A `<watcher>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watcher {
    /// The `id` attribute (unique within the list).
    pub id: String,
    /// Subscription status.
    pub status: Status,
    /// What caused the status.
    pub event: WatcherEvent,
    /// The watcher's URI (element content).
    pub uri: String,
    /// The `display-name` attribute.
    pub display_name: Option<String>,
    /// The `duration-subscribed` attribute in seconds.
    pub duration_subscribed: Option<u32>,
}

impl WatcherInfo {
    /// Parses a document no larger than [`DEFAULT_MAX_DOCUMENT`].
    pub fn parse(doc: &[u8]) -> Result<WatcherInfo, crate::DocumentError> {
        parse::parse(doc, DEFAULT_MAX_DOCUMENT)
    }

    /// Parses a document no larger than `limit` bytes.
    pub fn parse_with_limit(doc: &[u8], limit: usize) -> Result<WatcherInfo, crate::DocumentError> {
        parse::parse(doc, limit)
    }

    /// Writes the document as UTF-8 XML.
    pub fn to_xml(&self) -> String {
        write::write(self)
    }
}

impl Status {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Waiting => "waiting",
            Status::Terminated => "terminated",
        }
    }
}

impl WatcherEvent {
    /// Maps an attribute value.
    pub fn parse(s: &str) -> WatcherEvent {
        match s {
            "subscribe" => WatcherEvent::Subscribe,
            "approved" => WatcherEvent::Approved,
            "deactivated" => WatcherEvent::Deactivated,
            "probation" => WatcherEvent::Probation,
            "rejected" => WatcherEvent::Rejected,
            "timeout" => WatcherEvent::Timeout,
            "giveup" => WatcherEvent::Giveup,
            "noresource" => WatcherEvent::Noresource,
            other => WatcherEvent::Other(other.to_owned()),
        }
    }

    /// The attribute value.
    pub fn as_str(&self) -> &str {
        match self {
            WatcherEvent::Subscribe => "subscribe",
            WatcherEvent::Approved => "approved",
            WatcherEvent::Deactivated => "deactivated",
            WatcherEvent::Probation => "probation",
            WatcherEvent::Rejected => "rejected",
            WatcherEvent::Timeout => "timeout",
            WatcherEvent::Giveup => "giveup",
            WatcherEvent::Noresource => "noresource",
            WatcherEvent::Other(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shape of the RFC 3858 §5 example.
    const EXAMPLE: &str = r#"<?xml version="1.0"?>
<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">
  <watcher-list resource="sip:professor@example.net" package="presence">
    <watcher status="active" id="8ajksjda7s" duration-subscribed="509" event="approved">sip:userA@example.net</watcher>
    <watcher status="pending" id="hh8juja87s997-ass7" display-name="Mr. Subscriber" event="subscribe">sip:userB@example.org</watcher>
  </watcher-list>
</watcherinfo>"#;

    #[test]
    fn parses_example() {
        let w = WatcherInfo::parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!((w.version, w.state), (0, State::Full));
        let l = &w.lists[0];
        assert_eq!(
            (l.resource.as_str(), l.package.as_str()),
            ("sip:professor@example.net", "presence")
        );
        assert_eq!(l.watchers[0].status, Status::Active);
        assert_eq!(l.watchers[0].duration_subscribed, Some(509));
        assert_eq!(
            l.watchers[1].display_name.as_deref(),
            Some("Mr. Subscriber")
        );
        assert_eq!(l.watchers[1].event, WatcherEvent::Subscribe);
        assert_eq!(l.watchers[1].uri, "sip:userB@example.org");
        assert_eq!(WatcherInfo::parse(w.to_xml().as_bytes()).unwrap(), w);
    }

    #[test]
    fn rejects_bad_documents() {
        assert!(WatcherInfo::parse(b"<watcherinfo xmlns='urn:ietf:params:xml:ns:watcherinfo' version='x' state='full'/>").is_err());
        assert!(WatcherInfo::parse(b"<watcherinfo xmlns='urn:ietf:params:xml:ns:watcherinfo' version='1' state='odd'/>").is_err());
        let bad_status = br#"<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="1" state="partial"><watcher-list resource="a" package="presence"><watcher id="1" status="bored" event="subscribe">sip:a@b</watcher></watcher-list></watcherinfo>"#;
        assert!(WatcherInfo::parse(bad_status).is_err());
        assert!(WatcherInfo::parse_with_limit(EXAMPLE.as_bytes(), 10).is_err());
    }
}
