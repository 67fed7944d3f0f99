//! Personal Eventing Protocol (XEP-0163): a publish-subscribe service on every account's bare address. The user
//! publishes items to named nodes (an avatar, OMEMO keys, bookmarks, private data …); others read them as each
//! node's access model allows, and the user's own sessions and the node's subscribers are notified of changes.
//!
//! Nodes and items are kept as the user's documents, so they persist in whatever store keeps documents: the
//! node's configuration, item order and subscribers under `pep/{node}`, each item's payload under
//! `pep/{node}/{item}` (node names and item ids escaped, since node names like `http://jabber.org/protocol/tune`
//! carry slashes).

use crate::jid::BareJid;
use crate::store::DocumentKey;

/// Who may read a node's items and subscribe to it (XEP-0060 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AccessModel {
    /// Contacts with a subscription to the owner's presence (from or both); XEP-0163's default.
    #[default]
    Presence,
    /// Anyone.
    Open,
    /// Only the owner (and, were it managed, a whitelist; PEP keeps none).
    Whitelist,
}

impl AccessModel {
    /// The XEP-0060 name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessModel::Presence => "presence",
            AccessModel::Open => "open",
            AccessModel::Whitelist => "whitelist",
        }
    }

    /// The model of a XEP-0060 name; `None` for models this service does not serve (`authorize`, `roster`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "presence" => Some(AccessModel::Presence),
            "open" => Some(AccessModel::Open),
            "whitelist" => Some(AccessModel::Whitelist),
            _ => None,
        }
    }
}

/// How many items a node keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaxItems {
    /// At most this many (and never more than the server's cap).
    Count(usize),
    /// As many as the server allows (`max`, XEP-0060 §16.4.4).
    Max,
}

impl MaxItems {
    /// The XEP-0060 value.
    pub fn render(self) -> String {
        match self {
            MaxItems::Count(n) => n.to_string(),
            MaxItems::Max => "max".to_owned(),
        }
    }

    /// `max` or a number.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "max" => Some(MaxItems::Max),
            n => n.parse().ok().map(MaxItems::Count),
        }
    }

    /// How many items the node keeps under the server cap `cap`.
    pub fn effective(self, cap: usize) -> usize {
        match self {
            MaxItems::Count(n) => n.min(cap),
            MaxItems::Max => cap,
        }
    }
}

/// A node's configuration, as far as this service serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeConfig {
    /// Who may read and subscribe.
    pub access_model: AccessModel,
    /// Whether items are stored (off: they are only notified).
    pub persist_items: bool,
    /// How many items are kept.
    pub max_items: MaxItems,
}

impl Default for NodeConfig {
    /// XEP-0163 §4.2: presence access, persistent, the last item only.
    fn default() -> Self {
        NodeConfig {
            access_model: AccessModel::Presence,
            persist_items: true,
            max_items: MaxItems::Count(1),
        }
    }
}

/// Configuration fields a request names (publish-options, a create's or a configure's form); the rest keep their
/// values. As publish-options they are preconditions: a node that exists must already have them (XEP-0060 §7.1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Options {
    /// `pubsub#access_model`.
    pub access_model: Option<AccessModel>,
    /// `pubsub#persist_items`.
    pub persist_items: Option<bool>,
    /// `pubsub#max_items`.
    pub max_items: Option<MaxItems>,
}

impl Options {
    /// `config` with these options applied.
    pub fn apply(&self, mut config: NodeConfig) -> NodeConfig {
        if let Some(a) = self.access_model {
            config.access_model = a;
        }
        if let Some(p) = self.persist_items {
            config.persist_items = p;
        }
        if let Some(m) = self.max_items {
            config.max_items = m;
        }
        config
    }

    /// Whether `config` already has every option named here. `max` and a number equal to the server cap `cap`
    /// both mean "as many as allowed", so they match each other.
    pub fn met_by(&self, config: &NodeConfig, cap: usize) -> bool {
        self.access_model.is_none_or(|a| a == config.access_model)
            && self.persist_items.is_none_or(|p| p == config.persist_items)
            && self
                .max_items
                .is_none_or(|m| m.effective(cap) == config.max_items.effective(cap))
    }
}

/// One published item.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Item {
    /// Its id, unique in the node.
    pub id: String,
    /// The payload, serialized by the shell.
    pub payload: String,
}

/// What a session asks of PEP. Publishing, retracting, creating, deleting and configuring are for the user's
/// own nodes; reading and subscribing name the owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Call {
    /// Publishes `payload` as item `item` (an id the engine picks when `None`), creating the node with `options`
    /// if it does not exist, and failing if it exists without them.
    Publish {
        /// The node.
        node: String,
        /// The item id.
        item: Option<String>,
        /// The payload, serialized.
        payload: String,
        /// The publish-options.
        options: Options,
        /// What the payload says of the account's avatar, when it is an item of the avatar metadata node
        /// (`feature::avatar`): the shell reads it, the engine converts it to the vCard (XEP-0398).
        avatar: Option<crate::feature::avatar::Metadata>,
    },
    /// Reads items of `owner`'s node (the caller's own when `None`): those named by `ids`, or else the newest
    /// `max` (all when `None`).
    Items {
        /// Whose node.
        owner: Option<BareJid>,
        /// The node.
        node: String,
        /// Which items; empty for "the newest".
        ids: Vec<String>,
        /// At most this many of the newest.
        max: Option<usize>,
    },
    /// Deletes items; `notify` tells the subscribers (XEP-0060 §7.2.2.1).
    Retract {
        /// The node.
        node: String,
        /// The items.
        ids: Vec<String>,
        /// Whether to notify.
        notify: bool,
    },
    /// Creates a node with `options` over the defaults.
    Create {
        /// The node.
        node: String,
        /// Its configuration.
        options: Options,
    },
    /// Deletes a node with its items, telling the subscribers.
    Delete {
        /// The node.
        node: String,
    },
    /// The node's configuration.
    GetConfig {
        /// The node.
        node: String,
    },
    /// Changes the node's configuration.
    SetConfig {
        /// The node.
        node: String,
        /// The fields to change.
        options: Options,
    },
    /// Subscribes the caller's bare address to `owner`'s node (XEP-0060 §6.1), kept with the node.
    Subscribe {
        /// Whose node.
        owner: BareJid,
        /// The node.
        node: String,
    },
    /// Ends the caller's subscription.
    Unsubscribe {
        /// Whose node.
        owner: BareJid,
        /// The node.
        node: String,
    },
}

impl Call {
    /// The user other than the caller the call needs loaded.
    pub fn needs(&self) -> Option<&BareJid> {
        match self {
            Call::Items { owner, .. } => owner.as_ref(),
            Call::Subscribe { owner, .. } | Call::Unsubscribe { owner, .. } => Some(owner),
            _ => None,
        }
    }
}

/// What a call answers (other than a plain `Answer::Done`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Answer {
    /// The item was published under `item`.
    Published {
        /// The node.
        node: String,
        /// The item's id (the engine's choice if the publisher named none).
        item: String,
    },
    /// Items read.
    Items {
        /// Whose node.
        owner: BareJid,
        /// The node.
        node: String,
        /// The items, oldest first.
        items: Vec<Item>,
    },
    /// A node's configuration.
    Config {
        /// The node.
        node: String,
        /// Its configuration.
        config: NodeConfig,
        /// The server's cap on `max_items`, for the form.
        cap: usize,
    },
    /// The caller is subscribed.
    Subscribed {
        /// Whose node.
        owner: BareJid,
        /// The node.
        node: String,
        /// The subscribed address.
        jid: BareJid,
    },
}

impl Answer {
    /// About how many bytes it takes in memory.
    pub fn weight(&self) -> usize {
        match self {
            Answer::Items { items, .. } => items.iter().map(|i| i.payload.len() + i.id.len()).sum(),
            _ => 64,
        }
    }
}

/// What changed in a node, pushed to the owner's sessions and the subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// Items were published (or, to a new subscriber, the last one is sent).
    Items(Vec<Item>),
    /// Items were retracted.
    Retracted(Vec<String>),
    /// The node was deleted.
    Deleted,
}

/// A notification (XEP-0060 §7.1.2.1, XEP-0163 §4.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    /// The node's owner, whose bare address the notification comes from.
    pub owner: BareJid,
    /// The node.
    pub node: String,
    /// What changed.
    pub change: Change,
}

impl Event {
    /// About how many bytes it takes in memory.
    pub fn weight(&self) -> usize {
        match &self.change {
            Change::Items(items) => items.iter().map(|i| i.payload.len() + i.id.len()).sum(),
            Change::Retracted(ids) => ids.iter().map(String::len).sum(),
            Change::Deleted => 0,
        }
    }
}

/// A node as stored: configuration, item ids oldest first, subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Node {
    pub config: NodeConfig,
    pub items: Vec<String>,
    pub subscribers: Vec<BareJid>,
}

impl Node {
    /// The node as a document: one `field value` line each, ids escaped so none holds a space or a line break.
    pub fn to_document(&self) -> String {
        let c = &self.config;
        let mut out = format!(
            "access_model {}\npersist_items {}\nmax_items {}\n",
            c.access_model.as_str(),
            c.persist_items,
            c.max_items.render()
        );
        for id in &self.items {
            out.push_str(&format!("item {}\n", escape(id)));
        }
        for s in &self.subscribers {
            out.push_str(&format!("sub {}\n", escape(s.as_str())));
        }
        out
    }

    /// What [`Node::to_document`] wrote. Unknown lines are skipped (a newer writer's fields), and a damaged value
    /// keeps the default, so a node stays readable and deletable whatever happened to its record.
    pub fn from_document(text: &str) -> Self {
        let mut node = Node::default();
        for line in text.lines() {
            let Some((field, value)) = line.split_once(' ') else {
                continue;
            };
            match field {
                "access_model" => {
                    if let Some(a) = AccessModel::parse(value) {
                        node.config.access_model = a;
                    }
                }
                "persist_items" => node.config.persist_items = value == "true",
                "max_items" => {
                    if let Some(m) = MaxItems::parse(value) {
                        node.config.max_items = m;
                    }
                }
                "item" => node.items.push(unescape(value)),
                "sub" => {
                    if let Ok(j) = BareJid::new(&unescape(value)) {
                        node.subscribers.push(j);
                    }
                }
                _ => {}
            }
        }
        node
    }
}

/// The key of a node's document; `None` when the node name is too long to keep.
pub(crate) fn node_key(node: &str) -> Option<DocumentKey> {
    DocumentKey::new(format!("pep/{}", escape(node)))
}

/// The key of an item's document; `None` when node name and id together are too long to keep.
pub(crate) fn item_key(node: &str, item: &str) -> Option<DocumentKey> {
    DocumentKey::new(format!("pep/{}/{}", escape(node), escape(item)))
}

/// Percent-escapes `%`, `/` and whitespace, so a node name cannot run into an item id in a key and an id cannot
/// break a line of the node document.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '%' || c == '/' || c.is_whitespace() && c.is_ascii() {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn unescape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_survives_its_document() {
        let node = Node {
            config: NodeConfig {
                access_model: AccessModel::Open,
                persist_items: false,
                max_items: MaxItems::Max,
            },
            items: vec!["a b".into(), "50%/x\n".into(), "current".into()],
            subscribers: vec![BareJid::new("bob@x").expect("valid")],
        };
        assert_eq!(Node::from_document(&node.to_document()), node);
        assert_eq!(
            Node::from_document("garbage\nmax_items lots\n"),
            Node::default()
        );
    }

    #[test]
    fn keys_of_nodes_with_slashes_do_not_collide_with_items() {
        assert_ne!(
            item_key("http://a", "b"),
            node_key("http://a/b"),
            "a slash in a node name is escaped"
        );
        assert_eq!(
            node_key("urn:xmpp:avatar:data").map(|k| k.to_string()),
            Some("pep/urn:xmpp:avatar:data".into())
        );
    }
}
