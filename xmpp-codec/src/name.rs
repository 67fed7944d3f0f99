//! [`Name`]: element and attribute names and namespaces, shared instead of allocated when well known.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use crate::ns;

/// An element or attribute name or a namespace name.
///
/// The names and namespaces XMPP traffic is made of (`message`, `body`, `jabber:client`,
/// `from`, ...) are `&'static str`s that cost no allocation; any other is owned. It compares,
/// hashes and orders like the `str` it holds, and derefs to it.
#[derive(Clone)]
pub struct Name(Cow<'static, str>);

impl Name {
    /// The empty name (an element in no namespace has this as its namespace).
    pub const EMPTY: Name = Name(Cow::Borrowed(""));

    /// A name that never allocates.
    pub const fn from_static(s: &'static str) -> Self {
        Name(Cow::Borrowed(s))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared copy of `s` if it is well known, otherwise an owned copy.
    pub fn new(s: &str) -> Self {
        match well_known(s) {
            Some(s) => Name(Cow::Borrowed(s)),
            None => Name(Cow::Owned(s.to_owned())),
        }
    }
}

impl Default for Name {
    fn default() -> Self {
        Name::EMPTY
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Name> for String {
    fn eq(&self, other: &Name) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        Name::new(s)
    }
}

impl From<&String> for Name {
    fn from(s: &String) -> Self {
        Name::new(s)
    }
}

impl From<String> for Name {
    fn from(s: String) -> Self {
        match well_known(&s) {
            Some(s) => Name(Cow::Borrowed(s)),
            None => Name(Cow::Owned(s)),
        }
    }
}

impl From<&Name> for Name {
    fn from(s: &Name) -> Self {
        s.clone()
    }
}

impl From<Name> for String {
    fn from(n: Name) -> Self {
        n.0.into_owned()
    }
}

/// The static copy of a name or namespace common in XMPP traffic.
fn well_known(s: &str) -> Option<&'static str> {
    // One length check and a few comparisons at most: the match compiles to a decision tree.
    Some(match s {
        "" => "",
        // Namespaces.
        ns::STREAMS => ns::STREAMS,
        ns::CLIENT => ns::CLIENT,
        ns::SERVER => ns::SERVER,
        ns::COMPONENT_ACCEPT => ns::COMPONENT_ACCEPT,
        ns::XML => ns::XML,
        ns::TLS => ns::TLS,
        ns::SASL => ns::SASL,
        ns::BIND => ns::BIND,
        ns::STREAM_ERRORS => ns::STREAM_ERRORS,
        ns::STANZA_ERRORS => ns::STANZA_ERRORS,
        ns::SM => ns::SM,
        "urn:ietf:params:xml:ns:xmpp-session" => "urn:ietf:params:xml:ns:xmpp-session",
        "jabber:iq:roster" => "jabber:iq:roster",
        "jabber:iq:private" => "jabber:iq:private",
        "jabber:iq:version" => "jabber:iq:version",
        "jabber:iq:register" => "jabber:iq:register",
        "jabber:x:data" => "jabber:x:data",
        "vcard-temp" => "vcard-temp",
        "vcard-temp:x:update" => "vcard-temp:x:update",
        "http://jabber.org/protocol/caps" => "http://jabber.org/protocol/caps",
        "http://jabber.org/protocol/chatstates" => "http://jabber.org/protocol/chatstates",
        "http://jabber.org/protocol/disco#info" => "http://jabber.org/protocol/disco#info",
        "http://jabber.org/protocol/disco#items" => "http://jabber.org/protocol/disco#items",
        "http://jabber.org/protocol/muc" => "http://jabber.org/protocol/muc",
        "http://jabber.org/protocol/muc#user" => "http://jabber.org/protocol/muc#user",
        "http://jabber.org/protocol/pubsub" => "http://jabber.org/protocol/pubsub",
        "http://jabber.org/protocol/pubsub#event" => "http://jabber.org/protocol/pubsub#event",
        "http://jabber.org/protocol/nick" => "http://jabber.org/protocol/nick",
        "urn:xmpp:receipts" => "urn:xmpp:receipts",
        "urn:xmpp:delay" => "urn:xmpp:delay",
        "urn:xmpp:ping" => "urn:xmpp:ping",
        "urn:xmpp:carbons:2" => "urn:xmpp:carbons:2",
        "urn:xmpp:forward:0" => "urn:xmpp:forward:0",
        "urn:xmpp:mam:2" => "urn:xmpp:mam:2",
        "urn:xmpp:sid:0" => "urn:xmpp:sid:0",
        "urn:xmpp:csi:0" => "urn:xmpp:csi:0",
        "urn:xmpp:hints" => "urn:xmpp:hints",
        "urn:xmpp:chat-markers:0" => "urn:xmpp:chat-markers:0",
        "urn:xmpp:idle:1" => "urn:xmpp:idle:1",
        "urn:xmpp:blocking" => "urn:xmpp:blocking",
        "http://jabber.org/protocol/rsm" => "http://jabber.org/protocol/rsm",
        // Element names.
        "message" => "message",
        "presence" => "presence",
        "iq" => "iq",
        "body" => "body",
        "subject" => "subject",
        "thread" => "thread",
        "show" => "show",
        "status" => "status",
        "priority" => "priority",
        "error" => "error",
        "text" => "text",
        "c" => "c",
        "x" => "x",
        "query" => "query",
        "item" => "item",
        "items" => "items",
        "group" => "group",
        "feature" => "feature",
        "identity" => "identity",
        "features" => "features",
        "bind" => "bind",
        "resource" => "resource",
        "session" => "session",
        "starttls" => "starttls",
        "proceed" => "proceed",
        "auth" => "auth",
        "challenge" => "challenge",
        "response" => "response",
        "success" => "success",
        "failure" => "failure",
        "mechanisms" => "mechanisms",
        "mechanism" => "mechanism",
        "enable" => "enable",
        "enabled" => "enabled",
        "resume" => "resume",
        "resumed" => "resumed",
        "r" => "r",
        "a" => "a",
        "active" => "active",
        "inactive" => "inactive",
        "composing" => "composing",
        "paused" => "paused",
        "gone" => "gone",
        "request" => "request",
        "received" => "received",
        "delay" => "delay",
        "ping" => "ping",
        "pubsub" => "pubsub",
        "event" => "event",
        "publish" => "publish",
        "nick" => "nick",
        "photo" => "photo",
        "forwarded" => "forwarded",
        "sent" => "sent",
        "result" => "result",
        "stanza-id" => "stanza-id",
        "origin-id" => "origin-id",
        "field" => "field",
        "value" => "value",
        "stream" => "stream",
        // Attribute names.
        "from" => "from",
        "to" => "to",
        "type" => "type",
        "id" => "id",
        "lang" => "lang",
        "jid" => "jid",
        "name" => "name",
        "subscription" => "subscription",
        "ask" => "ask",
        "ver" => "ver",
        "hash" => "hash",
        "node" => "node",
        "ext" => "ext",
        "var" => "var",
        "category" => "category",
        "code" => "code",
        "by" => "by",
        "stamp" => "stamp",
        "h" => "h",
        "version" => "version",
        "xmlns" => "xmlns",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_like_str() {
        let shared = Name::new("message");
        let owned = Name::new("unusual-name");
        assert!(matches!(shared.0, Cow::Borrowed(_)));
        assert!(matches!(owned.0, Cow::Owned(_)));
        assert_eq!(shared, "message");
        assert_eq!(owned, String::from("unusual-name"));
        assert_eq!(Name::from(String::from("iq")), Name::from_static("iq"));
        assert_eq!(format!("{shared}/{owned:?}"), "message/\"unusual-name\"");
        assert_eq!(Name::default(), "");
    }
}
