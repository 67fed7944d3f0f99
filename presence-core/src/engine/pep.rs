//! Personal eventing (XEP-0163): each user's nodes, kept as documents of the user (see `feature::pep` for the
//! layout), read and changed within the document limits and the node item cap, with notifications to the
//! owner's available sessions and to the node's subscribers that the access model lets see it.
//!
//! Who is notified: every available session of the owner, every available session of each subscriber (an
//! address that subscribed with XEP-0060 `<subscribe/>`, kept with the node) that the node's access model admits
//! at the time of the change, and every available session of the owner's contacts whose client asked for the node
//! (its `+notify` interest, see `interests.rs`). A session that qualifies more than once hears it once.
//! Subscribers and contacts not in memory (offline) or of another domain are not notified; they read the items
//! when they come back. Those served by another engine (a shard of this node, another node) are notified through
//! it (`queries.rs`), and their requests for this owner's items and subscriptions reach this engine the same way.

use super::Engine;
use super::user::User;
use crate::feature::pep::{self, Change, Event, Item, Node, NodeConfig, Options};
use crate::feature::{Answer, Push};
use crate::jid::BareJid;
use crate::session::SessionId;
use crate::stanza::{ErrorCondition, RequestId, Stanza};
use crate::store::DocumentKey;

/// Why a PEP request fails: a condition and the text that explains it.
type Refusal = (ErrorCondition, String);

fn refuse(condition: ErrorCondition, text: impl Into<String>) -> Refusal {
    (condition, text.into())
}

/// A change to tell, with what decides who hears of it.
struct Notice {
    event: Event,
    /// The node's subscribers.
    subscribers: Vec<BareJid>,
    /// The node's configuration (as it was before a delete).
    config: NodeConfig,
}

/// What a request that succeeded answers and who hears of it.
struct Outcome {
    answer: Answer,
    /// A change for the owner's sessions, the subscribers and the interested contacts.
    notify: Option<Notice>,
    /// An event for the calling session alone, after the answer.
    to_caller: Option<Event>,
}

impl Outcome {
    fn answer(answer: Answer) -> Self {
        Outcome {
            answer,
            notify: None,
            to_caller: None,
        }
    }

    fn notify(answer: Answer, notify: Option<Notice>) -> Self {
        Outcome {
            answer,
            notify,
            to_caller: None,
        }
    }
}

/// The document changes one request makes to its owner.
#[derive(Default)]
struct Writes {
    puts: Vec<(DocumentKey, String)>,
    removes: Vec<DocumentKey>,
}

impl Engine {
    pub(super) fn pep(&mut self, id: SessionId, request: RequestId, call: pep::Call) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        let foreign = call.needs().filter(|o| **o != user).cloned();
        if let Some(owner) = &foreign
            && !self.is_here(owner)
        {
            // Another domain's user: their server answers, once federation forwards requests (a user of another
            // engine of this node or cluster is asked in `queries.rs` before this).
            return self.request_error(
                id,
                &user,
                request,
                ErrorCondition::ServiceUnavailable,
                "that user's nodes are not kept on this server",
            );
        }
        let avatar = super::avatar::metadata_of(&call);
        let result = match call {
            pep::Call::Publish {
                node,
                item,
                payload,
                options,
                ..
            } => self.pep_publish(&user, node, item, payload, options),
            pep::Call::Items {
                owner,
                node,
                ids,
                max,
            } => self.pep_items(&user, owner.unwrap_or_else(|| user.clone()), node, ids, max),
            pep::Call::Retract { node, ids, notify } => self.pep_retract(&user, node, ids, notify),
            pep::Call::Create { node, options } => self.pep_create(&user, node, options),
            pep::Call::Delete { node } => self.pep_delete(&user, node),
            pep::Call::GetConfig { node } => self.pep_get_config(&user, node),
            pep::Call::SetConfig { node, options } => self.pep_set_config(&user, node, options),
            pep::Call::Subscribe { owner, node } => self.pep_subscribe(&user, owner, node, true),
            pep::Call::Unsubscribe { owner, node } => self.pep_subscribe(&user, owner, node, false),
        };
        match result {
            Ok(outcome) => {
                self.answer(id, request, outcome.answer);
                if let Some(notice) = outcome.notify {
                    self.pep_notify(notice);
                }
                if let Some(event) = outcome.to_caller {
                    self.deliver(id, Stanza::Push(Push::Pep(event)));
                }
                if let Some(metadata) = avatar {
                    self.avatar_from_pep(&user, metadata);
                }
            }
            Err((condition, text)) => self.request_error(id, &user, request, condition, &text),
        }
        // Reading or subscribing to someone's nodes does not keep them in memory.
        if let Some(owner) = foreign {
            self.released.push(owner);
        }
    }

    /// Answers a read (`ids`, else the newest `max`) of `owner`'s node asked by `asker` from another engine
    /// (`crate::query`).
    pub(super) fn pep_items_for(
        &mut self,
        asker: &BareJid,
        owner: BareJid,
        node: String,
        ids: Vec<String>,
        max: Option<usize>,
    ) -> Result<Answer, Refusal> {
        Ok(self.pep_items(asker, owner, node, ids, max)?.answer)
    }

    /// Subscribes (or unsubscribes) `asker` of another engine to `owner`'s node (`crate::query`): the answer,
    /// and the event for the asking session after it (a new subscriber's last item).
    pub(super) fn pep_subscribe_for(
        &mut self,
        asker: &BareJid,
        owner: BareJid,
        node: String,
        on: bool,
    ) -> Result<(Answer, Option<Event>), Refusal> {
        let outcome = self.pep_subscribe(asker, owner, node, on)?;
        Ok((outcome.answer, outcome.to_caller))
    }

    fn pep_publish(
        &mut self,
        user: &BareJid,
        node: String,
        item: Option<String>,
        payload: String,
        options: Options,
    ) -> Result<Outcome, Refusal> {
        let limits = &self.config.limits;
        let (max_bytes, cap) = (limits.max_document_bytes, limits.pep_max_items);
        if payload.len() > max_bytes {
            return Err(refuse(
                ErrorCondition::NotAcceptable,
                format!(
                    "the item is {} bytes; at most {max_bytes} are kept",
                    payload.len()
                ),
            ));
        }
        let (key, existing) = self.pep_node(user, &node)?;
        let mut n = match existing {
            Some(n) if !options.met_by(&n.config, cap) => {
                return Err(refuse(
                    ErrorCondition::PreconditionNotMet,
                    "the node exists with another configuration",
                ));
            }
            Some(n) => n,
            // Auto-create (XEP-0163 §3): the publish-options configure the new node.
            None => Node {
                config: checked(options.apply(NodeConfig::default()))?,
                ..Node::default()
            },
        };
        let id = item.unwrap_or_else(|| fresh_id(&n));
        let item_key = pep::item_key(&node, &id).ok_or_else(too_long)?;
        let mut writes = Writes::default();
        if n.config.persist_items {
            n.items.retain(|i| *i != id);
            n.items.push(id.clone());
            writes.puts.push((item_key, payload.clone()));
            evict(&node, &mut n, cap, &mut writes);
        }
        writes.puts.push((key, n.to_document()));
        self.pep_write(user, writes)?;
        let event = Event {
            owner: user.clone(),
            node: node.clone(),
            change: Change::Items(vec![Item {
                id: id.clone(),
                payload,
            }]),
        };
        let answer = Answer::Pep(pep::Answer::Published { node, item: id });
        let notice = Notice {
            event,
            subscribers: n.subscribers,
            config: n.config,
        };
        Ok(Outcome::notify(answer, Some(notice)))
    }

    fn pep_items(
        &mut self,
        user: &BareJid,
        owner: BareJid,
        node: String,
        ids: Vec<String>,
        max: Option<usize>,
    ) -> Result<Outcome, Refusal> {
        let (_, existing) = self.pep_node(&owner, &node)?;
        let n = existing.ok_or_else(no_node)?;
        let o = self.users.get(&owner).ok_or_else(no_node)?;
        if !may_read(o, &owner, &n.config, user) {
            return Err(refuse(
                ErrorCondition::Forbidden,
                "the node's access model does not admit you",
            ));
        }
        let chosen: Vec<&String> = if ids.is_empty() {
            let skip = max.map_or(0, |m| n.items.len().saturating_sub(m));
            n.items.iter().skip(skip).collect()
        } else {
            n.items.iter().filter(|i| ids.contains(i)).collect()
        };
        let items = chosen
            .into_iter()
            .filter_map(|id| {
                let payload = o.documents.get(&pep::item_key(&node, id)?)?.clone();
                Some(Item {
                    id: id.clone(),
                    payload,
                })
            })
            .collect();
        let answer = Answer::Pep(pep::Answer::Items { owner, node, items });
        Ok(Outcome::answer(answer))
    }

    fn pep_retract(
        &mut self,
        user: &BareJid,
        node: String,
        ids: Vec<String>,
        notify: bool,
    ) -> Result<Outcome, Refusal> {
        let (key, existing) = self.pep_node(user, &node)?;
        let mut n = existing.ok_or_else(no_node)?;
        if ids.is_empty() {
            return Err(refuse(ErrorCondition::BadRequest, "no item to retract"));
        }
        if let Some(missing) = ids.iter().find(|i| !n.items.contains(i)) {
            return Err(refuse(
                ErrorCondition::ItemNotFound,
                format!("no item '{missing}'"),
            ));
        }
        let mut writes = Writes::default();
        n.items.retain(|i| !ids.contains(i));
        writes.removes = ids.iter().filter_map(|i| pep::item_key(&node, i)).collect();
        writes.puts.push((key, n.to_document()));
        self.pep_write(user, writes)?;
        let notice = notify.then(|| Notice {
            event: Event {
                owner: user.clone(),
                node,
                change: Change::Retracted(ids),
            },
            subscribers: n.subscribers,
            config: n.config,
        });
        Ok(Outcome::notify(Answer::Done, notice))
    }

    fn pep_create(
        &mut self,
        user: &BareJid,
        node: String,
        options: Options,
    ) -> Result<Outcome, Refusal> {
        let (key, existing) = self.pep_node(user, &node)?;
        if existing.is_some() {
            return Err(refuse(ErrorCondition::Conflict, "the node exists"));
        }
        let n = Node {
            config: checked(options.apply(NodeConfig::default()))?,
            ..Node::default()
        };
        let writes = Writes {
            puts: vec![(key, n.to_document())],
            removes: Vec::new(),
        };
        self.pep_write(user, writes)?;
        Ok(Outcome::answer(Answer::Done))
    }

    fn pep_delete(&mut self, user: &BareJid, node: String) -> Result<Outcome, Refusal> {
        let (key, existing) = self.pep_node(user, &node)?;
        let n = existing.ok_or_else(no_node)?;
        let mut removes: Vec<DocumentKey> = n
            .items
            .iter()
            .filter_map(|i| pep::item_key(&node, i))
            .collect();
        removes.push(key);
        self.pep_write(
            user,
            Writes {
                puts: Vec::new(),
                removes,
            },
        )?;
        let notice = Notice {
            event: Event {
                owner: user.clone(),
                node,
                change: Change::Deleted,
            },
            subscribers: n.subscribers,
            config: n.config,
        };
        Ok(Outcome::notify(Answer::Done, Some(notice)))
    }

    fn pep_get_config(&mut self, user: &BareJid, node: String) -> Result<Outcome, Refusal> {
        let (_, existing) = self.pep_node(user, &node)?;
        let n = existing.ok_or_else(no_node)?;
        let cap = self.config.limits.pep_max_items;
        let answer = pep::Answer::Config {
            node,
            config: n.config,
            cap,
        };
        Ok(Outcome::answer(Answer::Pep(answer)))
    }

    fn pep_set_config(
        &mut self,
        user: &BareJid,
        node: String,
        options: Options,
    ) -> Result<Outcome, Refusal> {
        let (key, existing) = self.pep_node(user, &node)?;
        let mut n = existing.ok_or_else(no_node)?;
        n.config = checked(options.apply(n.config))?;
        let mut writes = Writes::default();
        // Items past a lowered cap, or all of them once the node stops persisting, go now.
        evict(&node, &mut n, self.config.limits.pep_max_items, &mut writes);
        writes.puts.push((key, n.to_document()));
        self.pep_write(user, writes)?;
        Ok(Outcome::answer(Answer::Done))
    }

    fn pep_subscribe(
        &mut self,
        user: &BareJid,
        owner: BareJid,
        node: String,
        on: bool,
    ) -> Result<Outcome, Refusal> {
        let (key, existing) = self.pep_node(&owner, &node)?;
        let mut n = existing.ok_or_else(no_node)?;
        let o = self.users.get(&owner).ok_or_else(no_node)?;
        if on && !may_read(o, &owner, &n.config, user) {
            return Err(refuse(
                ErrorCondition::Forbidden,
                "the node's access model does not admit you",
            ));
        }
        // The last item goes to the new subscriber's session (XEP-0060 §6.1.7, send_last_published_item).
        let last = last_item(o, &node, &n).filter(|_| on);
        let was = n.subscribers.contains(user);
        n.subscribers.retain(|s| s != user);
        if on {
            n.subscribers.push(user.clone());
        }
        if was != on {
            let writes = Writes {
                puts: vec![(key, n.to_document())],
                removes: Vec::new(),
            };
            self.pep_write(&owner, writes)?;
        }
        if !on {
            return Ok(Outcome::answer(Answer::Done));
        }
        let answer = Answer::Pep(pep::Answer::Subscribed {
            owner: owner.clone(),
            node: node.clone(),
            jid: user.clone(),
        });
        let to_caller = last.map(|item| Event {
            owner,
            node,
            change: Change::Items(vec![item]),
        });
        Ok(Outcome {
            answer,
            notify: None,
            to_caller,
        })
    }

    /// Publishes an item for its owner, notifying as the owner's own publish would: how the server converts an
    /// avatar (XEP-0398, `engine::avatar`). A node that does not exist is created with `options`; one that does
    /// keeps its configuration (the options are no precondition here: the server is not the client that chose it).
    pub(super) fn pep_publish_as_owner(
        &mut self,
        owner: &BareJid,
        node: &str,
        item: String,
        payload: String,
        options: Options,
    ) -> Result<(), (ErrorCondition, String)> {
        let exists = self.pep_node(owner, node)?.1.is_some();
        let options = if exists { Options::default() } else { options };
        let outcome = self.pep_publish(owner, node.to_owned(), Some(item), payload, options)?;
        if let Some(notice) = outcome.notify {
            self.pep_notify(notice);
        }
        Ok(())
    }

    /// The key of `owner`'s node and the node, if it exists.
    fn pep_node(
        &self,
        owner: &BareJid,
        node: &str,
    ) -> Result<(DocumentKey, Option<Node>), Refusal> {
        if node.is_empty() {
            return Err(refuse(
                ErrorCondition::NotAcceptable,
                "a node needs a name (PEP has no instant nodes)",
            ));
        }
        let key = pep::node_key(node).ok_or_else(too_long)?;
        let u = self
            .users
            .get(owner)
            .ok_or_else(|| refuse(ErrorCondition::ItemNotFound, "no such user"))?;
        let existing = u.documents.get(&key).map(|d| Node::from_document(d));
        Ok((key, existing))
    }

    /// Applies `writes` to `owner`'s documents and hands them to the store, unless that would take the user past
    /// the document count limit.
    fn pep_write(&mut self, owner: &BareJid, writes: Writes) -> Result<(), Refusal> {
        let max_count = self.config.limits.max_documents_per_user;
        let u = self
            .users
            .get_mut(owner)
            .ok_or_else(|| refuse(ErrorCondition::ItemNotFound, "no such user"))?;
        let added = writes
            .puts
            .iter()
            .filter(|(k, _)| !u.documents.contains_key(k))
            .count();
        let removed = writes
            .removes
            .iter()
            .filter(|k| u.documents.contains_key(*k))
            .count();
        if added > removed && u.documents.len() + added - removed > max_count {
            return Err(refuse(
                ErrorCondition::ResourceConstraint,
                format!("at most {max_count} documents (nodes and items) are kept per user"),
            ));
        }
        for key in writes.removes {
            self.drop_document(owner, key);
        }
        for (key, document) in writes.puts {
            self.keep_document(owner, key, document);
        }
        Ok(())
    }

    /// Pushes the notice's event to the owner's available sessions, to those of the subscribers the node admits
    /// and to those of the contacts that asked for the node; each session once.
    fn pep_notify(&mut self, notice: Notice) {
        let Notice {
            event,
            subscribers,
            config,
        } = notice;
        for audience in self.audiences_elsewhere(&event.owner, &config, &subscribers) {
            self.notify_elsewhere(audience, event.clone());
        }
        let Some(o) = self.users.get(&event.owner) else {
            return;
        };
        let mut targets: Vec<SessionId> = o.available_sessions().map(|s| s.id).collect();
        for sub in subscribers.iter().filter(|s| **s != event.owner) {
            if !may_read(o, &event.owner, &config, sub) {
                continue;
            }
            if let Some(s) = self.users.get(sub) {
                targets.extend(s.available_sessions().map(|s| s.id));
            }
        }
        targets.extend(self.interested_contacts(&event.owner, &config, &event.node));
        let mut seen = hashbrown::HashSet::new();
        targets.retain(|t| seen.insert(*t));
        for session in targets {
            self.deliver(session, Stanza::Push(Push::Pep(event.clone())));
        }
    }

    /// The last item of `owner`'s node `node` with the node's configuration, if the owner is loaded and the
    /// node keeps an item.
    pub(super) fn pep_last_item(&self, owner: &BareJid, node: &str) -> Option<(NodeConfig, Item)> {
        let o = self.users.get(owner)?;
        let n = Node::from_document(o.documents.get(&pep::node_key(node)?)?);
        let item = last_item(o, node, &n)?;
        Some((n.config, item))
    }
}

/// The newest item of node `n` (named `node`) of the loaded owner `o`.
fn last_item(o: &User, node: &str, n: &Node) -> Option<Item> {
    let id = n.items.last()?;
    let payload = o.documents.get(&pep::item_key(node, id)?)?.clone();
    Some(Item {
        id: id.clone(),
        payload,
    })
}

/// Whether `who` may read `owner`'s node configured `config`.
pub(super) fn may_read(
    owner_user: &User,
    owner: &BareJid,
    config: &NodeConfig,
    who: &BareJid,
) -> bool {
    if who == owner {
        return true;
    }
    match config.access_model {
        pep::AccessModel::Open => true,
        pep::AccessModel::Presence => owner_user.roster.subscription(who).shares_to_contact(),
        pep::AccessModel::Whitelist => false,
    }
}

/// Refuses a configuration this service cannot keep.
fn checked(config: NodeConfig) -> Result<NodeConfig, Refusal> {
    if config.max_items == pep::MaxItems::Count(0) && config.persist_items {
        return Err(refuse(
            ErrorCondition::NotAcceptable,
            "a persistent node keeps at least one item",
        ));
    }
    Ok(config)
}

/// Drops the oldest items past what the node keeps.
fn evict(node: &str, n: &mut Node, cap: usize, writes: &mut Writes) {
    let keep = if n.config.persist_items {
        n.config.max_items.effective(cap)
    } else {
        0
    };
    while n.items.len() > keep {
        let old = n.items.remove(0);
        if let Some(key) = pep::item_key(node, &old) {
            writes.puts.retain(|(k, _)| *k != key);
            writes.removes.push(key);
        }
    }
}

/// An item id for a publish that named none: unused in the node.
fn fresh_id(n: &Node) -> String {
    let mut i = n.items.len() + 1;
    loop {
        let id = format!("item-{i}");
        if !n.items.contains(&id) {
            return id;
        }
        i += 1;
    }
}

fn no_node() -> Refusal {
    refuse(ErrorCondition::ItemNotFound, "no such node")
}

fn too_long() -> Refusal {
    refuse(
        ErrorCondition::NotAcceptable,
        "the node name or item id is too long to keep",
    )
}
