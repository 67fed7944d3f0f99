//! Push notifications (XEP-0357): a client registers an app server (a publish-subscribe service and a node on
//! it); when a message arrives that the client cannot see now, the server publishes a summary there, and the app
//! server wakes the device through its platform's push service.
//!
//! When a registration is notified (the decisions Prosody's and ejabberd's modules also make):
//! - a message held offline (the user has no session that takes it) notifies every registration of the user;
//! - a message delivered to a session whose connection dropped and that waits to be resumed (XEP-0198)
//!   notifies the registrations that session's resource made.
//!
//! A user's other devices being online does not stop a detached session's registration: that device is the one
//! that will not see the message until it wakes. Only messages worth waking a phone for notify: chat and normal
//! messages with a body (encrypted messages carry a fallback body).
//!
//! Registrations are documents of the user under `push/{service}/{node}`, so they survive restarts and count
//! against the document limits.

use crate::jid::{BareJid, Jid};
use crate::message::{Message, MessageKind};
use crate::store::DocumentKey;

use super::pep::{escape, unescape};

/// The most registrations one user keeps; one more is refused (`resource-constraint`), since each is one more
/// notification per message.
pub const MAX_REGISTRATIONS: usize = 16;

/// What a session asks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// Notify `service` on `node` from now on (XEP-0357 §5). Enabling the same service and node again replaces
    /// the registration (new options, the calling resource).
    Enable {
        /// The app server's address.
        service: Jid,
        /// The node on it that stands for this device.
        node: String,
        /// The publish options to send with each notification (a serialized data form), as given.
        options: Option<String>,
    },
    /// Stop notifying `service` (on `node`, or on every node of it).
    Disable {
        /// The app server's address.
        service: Jid,
        /// One node, or all of the service's.
        node: Option<String>,
    },
}

/// One registration, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Registration {
    /// The app server.
    pub service: Jid,
    /// The node.
    pub node: String,
    /// The publish options.
    pub options: Option<String>,
    /// The resource of the session that enabled it: the device it wakes.
    pub resource: String,
}

/// What the server publishes to an app server (XEP-0357 §7), routed like any stanza for another domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    /// The user the message is for; the publish comes from this bare address.
    pub user: BareJid,
    /// The app server.
    pub service: Jid,
    /// The node.
    pub node: String,
    /// The registration's publish options.
    pub options: Option<String>,
    /// The number of messages waiting for the device.
    pub count: u32,
    /// The last message's sender, when the server is set to tell.
    pub sender: Option<Jid>,
    /// The last message's text, when the server is set to tell.
    pub body: Option<String>,
}

/// Whether a message wakes a device.
pub fn wakes(message: &Message) -> bool {
    matches!(message.kind, MessageKind::Chat | MessageKind::Normal) && message.body.is_some()
}

/// The prefix of every registration's document key.
pub(crate) const PREFIX: &str = "push/";

/// Every key a registration can have, for a range over the user's documents.
pub(crate) fn key_range() -> (std::ops::Bound<DocumentKey>, std::ops::Bound<DocumentKey>) {
    use std::ops::Bound;
    // `push/` .. `push0`: '0' follows '/' in ASCII, so the range is exactly the keys with the prefix.
    let start = DocumentKey::new(PREFIX).expect("a short key");
    let end = DocumentKey::new("push0").expect("a short key");
    (Bound::Included(start), Bound::Excluded(end))
}

/// The key of a registration; `None` when the address and node are too long to keep.
pub(crate) fn key(service: &Jid, node: &str) -> Option<DocumentKey> {
    DocumentKey::new(format!(
        "{PREFIX}{}/{}",
        escape(&service.to_string()),
        escape(node)
    ))
}

/// The key prefix of every registration with `service`.
pub(crate) fn service_prefix(service: &Jid) -> String {
    format!("{PREFIX}{}/", escape(&service.to_string()))
}

impl Registration {
    /// The registration as a document: `field value` lines (values escaped), the options last since they are
    /// XML of any shape. A version line first, so a later layout can tell an old record.
    pub(crate) fn to_document(&self) -> String {
        let mut out = format!(
            "v 1\nservice {}\nnode {}\nresource {}\n",
            escape(&self.service.to_string()),
            escape(&self.node),
            escape(&self.resource)
        );
        if let Some(o) = &self.options {
            out.push_str("options ");
            out.push_str(&escape(o));
            out.push('\n');
        }
        out
    }

    /// What [`Registration::to_document`] wrote; `None` for a record that lost its service or node (it
    /// cannot notify anyone and is skipped).
    pub(crate) fn from_document(text: &str) -> Option<Self> {
        let (mut service, mut node, mut resource, mut options) = (None, None, String::new(), None);
        for line in text.lines() {
            let Some((field, value)) = line.split_once(' ') else {
                continue;
            };
            match field {
                "service" => service = Jid::new(&unescape(value)).ok(),
                "node" => node = Some(unescape(value)),
                "resource" => resource = unescape(value),
                "options" => options = Some(unescape(value)),
                _ => {}
            }
        }
        Some(Registration {
            service: service?,
            node: node?,
            options,
            resource,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_survives_its_document_whatever_its_text() {
        let r = Registration {
            service: Jid::new("push.example.net").unwrap(),
            node: "node with spaces/and%slashes".into(),
            options: Some(
                "<x xmlns='jabber:x:data' type='submit'>\n <field var='secret'/>\n</x>".into(),
            ),
            resource: "phone 1".into(),
        };
        assert_eq!(Registration::from_document(&r.to_document()), Some(r));
    }

    #[test]
    fn a_record_without_its_service_is_skipped() {
        assert_eq!(Registration::from_document("v 1\nnode n\n"), None);
    }

    #[test]
    fn only_messages_with_text_wake_a_device() {
        let mut m = Message {
            kind: MessageKind::Chat,
            body: Some("hi".into()),
            ..Message::default()
        };
        assert!(wakes(&m));
        m.kind = MessageKind::Headline;
        assert!(!wakes(&m));
        m.kind = MessageKind::Normal;
        m.body = None;
        assert!(!wakes(&m));
    }

    #[test]
    fn keys_of_one_service_share_its_prefix() {
        let s = Jid::new("push.example.net").unwrap();
        let k = key(&s, "abc").unwrap();
        assert!(k.as_str().starts_with(&service_prefix(&s)));
    }
}
