//! Requests between engines (`crate::query`): a session's request about a user served by another engine (a
//! shard of this node or another node) goes there as a `Stanza::Query`; queries for users served here are
//! answered as their own sessions' requests would be, and the answers, errors and PEP notifications come back
//! as routed stanzas that this engine hands to its sessions.

use super::Engine;
use super::pep::may_read;
use crate::feature::pep::{Change, Event, NodeConfig};
use crate::feature::{Answer, Call, Push, vcard};
use crate::jid::{BareJid, FullJid, Jid};
use crate::query::{Ask, Audience, Notification, Query, Read, Reply};
use crate::session::SessionId;
use crate::stanza::{ErrorAbout, ErrorCondition, RequestId, Stanza, StanzaError};

impl Engine {
    /// Sends `call` to the engine of the user it is about, when that user is of a local domain and served by
    /// another engine; otherwise hands it back to be answered here.
    pub(super) fn ask_elsewhere(
        &mut self,
        session: SessionId,
        request: RequestId,
        call: Call,
    ) -> Option<(RequestId, Call)> {
        let target = match &call {
            Call::VCard(vcard::Call::Get { of: Some(of) }) => Some((of.clone(), Read::VCard)),
            Call::Pep(call) => Read::of_pep(call),
            _ => None,
        };
        let Some((owner, read)) = target.filter(|(o, _)| self.is_local(o) && !self.is_here(o))
        else {
            return Some((request, call));
        };
        if let Some((_, from)) = self.session_address(session) {
            let ask = Ask::Request { request, read };
            self.ask(from, owner, ask);
        }
        None
    }

    /// Routes a query of session `from` to the engine serving `owner`.
    pub(super) fn ask(&mut self, from: FullJid, owner: BareJid, ask: Ask) {
        let query = Query {
            from,
            to: owner,
            ask,
        };
        self.out(super::Output::Route(Stanza::Query(Box::new(query))));
    }

    /// Answers a query from another engine about a user served here (loaded first when it asks a request, see
    /// `Engine::needs`).
    pub(super) fn answer_query(&mut self, query: Query) {
        let Query { from, to, ask } = query;
        let asker = from.bare().clone();
        match ask {
            Ask::Request { request, read } => {
                let result = match read {
                    Read::VCard => self.card_of(&to).map(|card| (Answer::VCard(card), None)),
                    Read::Items { node, ids, max } => self
                        .pep_items_for(&asker, to.clone(), node, ids, max)
                        .map(|answer| (answer, None)),
                    Read::Subscribe { node, on } => {
                        self.pep_subscribe_for(&asker, to.clone(), node, on)
                    }
                };
                match result {
                    Ok((answer, event)) => {
                        let reply = Reply {
                            to: from.clone(),
                            request,
                            answer,
                        };
                        self.route(Stanza::Reply(Box::new(reply)), &asker);
                        if let Some(event) = event {
                            self.notify_elsewhere(Audience::Session(from), event);
                        }
                    }
                    Err((condition, text)) => {
                        let error = StanzaError {
                            to: Jid::Full(from),
                            about: ErrorAbout::Request(request),
                            condition,
                            text: Some(text),
                        };
                        self.reply_error(&error.to.clone(), error);
                    }
                }
                // Being read or subscribed to from elsewhere does not keep the owner in memory.
                self.released.push(to);
            }
            Ask::LastItems { nodes } => {
                let Some(o) = self.users.get(&to) else {
                    return;
                };
                let events: Vec<Event> = nodes
                    .into_iter()
                    .filter_map(|node| {
                        let (config, item) = self.pep_last_item(&to, &node)?;
                        super::interests::admits_interest(o, &to, &config, &asker).then(|| Event {
                            owner: to.clone(),
                            node,
                            change: Change::Items(vec![item]),
                        })
                    })
                    .collect();
                for event in events {
                    self.notify_elsewhere(Audience::Session(from.clone()), event);
                }
            }
        }
    }

    /// A query that waited for its owner's load, which failed: a request is answered with a temporary error.
    pub(super) fn fail_query(&mut self, query: Query) {
        if let Ask::Request { request, .. } = query.ask {
            let to = Jid::Full(query.from);
            let error = StanzaError {
                to: to.clone(),
                about: ErrorAbout::Request(request),
                condition: ErrorCondition::InternalServerError,
                text: Some("the data needed could not be loaded; try again later".into()),
            };
            self.reply_error(&to, error);
        }
    }

    /// The answer to a query of a session of this engine.
    pub(super) fn take_reply(&mut self, reply: Reply) {
        let Reply {
            to,
            request,
            answer,
        } = reply;
        if let Some(session) = self.session_at(&to) {
            self.answer(session, request, answer);
        }
    }

    /// Sends a PEP notification to sessions of a user served by another engine.
    pub(super) fn notify_elsewhere(&mut self, audience: Audience, event: Event) {
        let to = audience.user().clone();
        let notification = Notification { audience, event };
        self.route(Stanza::Notification(Box::new(notification)), &to);
    }

    /// A PEP notification from another engine, for sessions of a user served here: the owner's engine decided
    /// the user may read the node; which of their sessions hear it is decided here. A user not in memory has no
    /// session to hear it.
    pub(super) fn take_notification(&mut self, notification: Notification) {
        let Notification { audience, event } = notification;
        let targets: Vec<SessionId> = match &audience {
            Audience::Session(jid) => self.session_at(jid).into_iter().collect(),
            Audience::Subscriber(user) => self
                .users
                .get(user)
                .map(|u| u.available_sessions().map(|s| s.id).collect())
                .unwrap_or_default(),
            Audience::Interested(user) => self
                .users
                .get(user)
                .map(|u| {
                    u.available_sessions()
                        .filter(|s| s.wants(&event.node))
                        .map(|s| s.id)
                        .collect()
                })
                .unwrap_or_default(),
        };
        for session in targets {
            self.deliver(session, Stanza::Push(Push::Pep(event.clone())));
        }
    }

    /// The users of other engines that hear of a change to `owner`'s node configured `config`: its subscribers
    /// the access model admits, and the contacts that would hear of it by interest (each once, a subscriber
    /// before a contact). Only users of local domains: a user of another domain hears nothing (federation does
    /// not carry PEP yet).
    pub(super) fn audiences_elsewhere(
        &self,
        owner: &BareJid,
        config: &NodeConfig,
        subscribers: &[BareJid],
    ) -> Vec<Audience> {
        let Some(o) = self.users.get(owner) else {
            return Vec::new();
        };
        let elsewhere = |u: &BareJid| u != owner && self.is_local(u) && !self.is_here(u);
        let mut audiences: Vec<Audience> = subscribers
            .iter()
            .filter(|s| elsewhere(s) && may_read(o, owner, config, s))
            .map(|s| Audience::Subscriber(s.clone()))
            .collect();
        let contacts = o
            .roster
            .watchers()
            .filter(|c| elsewhere(c) && !subscribers.contains(c))
            .filter(|c| super::interests::admits_interest(o, owner, config, c))
            .map(|c| Audience::Interested(c.clone()));
        audiences.extend(contacts);
        audiences
    }

    /// The session of this engine at full address `jid`.
    fn session_at(&self, jid: &FullJid) -> Option<SessionId> {
        self.users
            .get(jid.bare())?
            .session_by_resource(jid.resource())
            .map(|s| s.id)
    }
}
