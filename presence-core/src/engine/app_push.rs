//! Push notifications (XEP-0357): registrations kept as the user's documents, and the notifications a message
//! triggers for a device that cannot see it now (see `feature::app_push` for when).

use super::Engine;
use crate::feature::app_push::{self, Call, Notification, Registration};
use crate::jid::{BareJid, Jid};
use crate::message::Message;
use crate::session::SessionId;
use crate::stanza::{ErrorCondition, RequestId, Stanza};

/// Which registrations of the user a message wakes.
pub(super) enum Waking<'a> {
    /// All of them: the message was held offline, with this many now waiting.
    All { waiting: usize },
    /// Those made by the resource of a detached session, with this many delivered to it since it detached.
    Resource { resource: &'a str, missed: u32 },
}

impl Engine {
    pub(super) fn app_push(&mut self, id: SessionId, request: RequestId, call: Call) {
        let Some((user, jid)) = self.session_address(id) else {
            return;
        };
        match call {
            Call::Enable {
                service,
                node,
                options,
            } => {
                let Some(key) = app_push::key(&service, &node) else {
                    return self.request_error(
                        id,
                        &user,
                        request,
                        ErrorCondition::NotAcceptable,
                        "the service address and node are too long to keep",
                    );
                };
                let registered = self.registrations(&user).len();
                let replaces = self
                    .users
                    .get(&user)
                    .is_some_and(|u| u.documents.contains_key(&key));
                if !replaces && registered >= app_push::MAX_REGISTRATIONS {
                    let text = format!(
                        "at most {} push registrations are kept per user",
                        app_push::MAX_REGISTRATIONS
                    );
                    return self.request_error(
                        id,
                        &user,
                        request,
                        ErrorCondition::ResourceConstraint,
                        &text,
                    );
                }
                let registration = Registration {
                    service,
                    node,
                    options,
                    resource: jid.resource().to_owned(),
                };
                self.put_document(id, &user, request, key, registration.to_document());
            }
            Call::Disable { service, node } => {
                let keys: Vec<_> = match node {
                    Some(node) => app_push::key(&service, &node).into_iter().collect(),
                    None => {
                        let prefix = app_push::service_prefix(&service);
                        self.users
                            .get(&user)
                            .map(|u| {
                                u.documents
                                    .keys()
                                    .filter(|k| k.as_str().starts_with(&prefix))
                                    .cloned()
                                    .collect()
                            })
                            .unwrap_or_default()
                    }
                };
                for key in keys {
                    if self
                        .users
                        .get(&user)
                        .is_some_and(|u| u.documents.contains_key(&key))
                    {
                        self.drop_document(&user, key);
                    }
                }
                self.answer(id, request, crate::feature::Answer::Done);
            }
        }
    }

    /// The user's registrations, as kept.
    fn registrations(&self, user: &BareJid) -> Vec<Registration> {
        let Some(u) = self.users.get(user) else {
            return Vec::new();
        };
        u.documents
            .range(app_push::key_range())
            .filter_map(|(_, doc)| Registration::from_document(doc))
            .collect()
    }

    /// Publishes a summary of `message` to the app servers of `user`'s registrations that `waking` selects.
    pub(super) fn wake_devices(
        &mut self,
        user: &BareJid,
        waking: Waking<'_>,
        from: &Jid,
        message: &Message,
    ) {
        if !app_push::wakes(message) {
            return;
        }
        let contents = self.config.push_contents;
        let (count, resource) = match waking {
            Waking::All { waiting } => (u32::try_from(waiting).unwrap_or(u32::MAX), None),
            Waking::Resource { resource, missed } => (missed, Some(resource)),
        };
        for r in self.registrations(user) {
            if resource.is_some_and(|res| res != r.resource) {
                continue;
            }
            let notification = Notification {
                user: user.clone(),
                service: r.service,
                node: r.node,
                options: r.options,
                count,
                sender: contents.sender.then(|| from.clone()),
                body: contents.body.then(|| message.body.clone()).flatten(),
            };
            self.out(super::Output::Route(Stanza::AppPush(notification)));
        }
    }

    /// A session's connection dropped and it waits to be resumed: from now on what it is given wakes its
    /// device, starting with the messages its client never confirmed (one notification for all of them).
    pub(super) fn detached(&mut self, id: SessionId, unacked: Vec<super::Undelivered>) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        let waking: Vec<_> = unacked
            .into_iter()
            .filter(|m| app_push::wakes(&m.message))
            .collect();
        let missed = u32::try_from(waking.len()).unwrap_or(u32::MAX);
        let Some(s) = self.users.get_mut(&user).and_then(|u| u.session_mut(id)) else {
            return;
        };
        s.detached = Some(missed);
        let resource = s.jid.resource().to_owned();
        if let Some(last) = waking.last() {
            let waking = Waking::Resource {
                resource: &resource,
                missed,
            };
            self.wake_devices(&user, waking, &last.from, &last.message);
        }
    }

    /// A detached session was resumed: its client sees what it is given again.
    pub(super) fn reattached(&mut self, id: SessionId) {
        let Some(user) = self.sessions.get(&id).cloned() else {
            return;
        };
        if let Some(s) = self.users.get_mut(&user).and_then(|u| u.session_mut(id)) {
            s.detached = None;
        }
    }

    /// Whether `user` has registered any app server (so a held message is worth a notification).
    pub(super) fn has_registrations(&self, user: &BareJid) -> bool {
        self.users
            .get(user)
            .is_some_and(|u| u.documents.range(app_push::key_range()).next().is_some())
    }

    /// Counts a message delivered to a detached session and wakes its device.
    pub(super) fn delivered_while_detached(
        &mut self,
        user: &BareJid,
        id: SessionId,
        from: &Jid,
        message: &Message,
    ) {
        if !app_push::wakes(message) {
            return;
        }
        let Some(s) = self.users.get_mut(user).and_then(|u| u.session_mut(id)) else {
            return;
        };
        let Some(missed) = s.detached.as_mut() else {
            return;
        };
        *missed = missed.saturating_add(1);
        let (missed, resource) = (*missed, s.jid.resource().to_owned());
        self.wake_devices(
            user,
            Waking::Resource {
                resource: &resource,
                missed,
            },
            from,
            message,
        );
    }
}
