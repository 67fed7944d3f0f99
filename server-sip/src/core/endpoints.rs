//! SIP users as the engine sees them: one engine session per user with anything live on SIP (a registration, a
//! publication, a MESSAGE on its way), resource `sip`. Its presence is the newest publication, or plain
//! "available" for a registered phone that publishes nothing; its priority is 0 while a contact is registered
//! (it can take messages, forked to every binding) and -1 otherwise (RFC 6121 §4.7.2.3: never a bare-JID target),
//! so a publish-only endpoint never swallows a message it could not deliver. While a contact is registered the
//! session is also reachable (`Input::Reachable`): RFC 3428 routes a MESSAGE by registration, not presence, so a
//! phone that appears offline (publishes `closed`, stays registered) still gets the user's MESSAGEs.

use std::time::Instant;

use presence_core::compose::{ComposeSettings, EndpointPresence, LineState, Overlays, compose};
use presence_core::runtime::{Protocol, ToSession};
use presence_core::stanza::{ErrorAbout, ErrorCondition, Stanza};
use presence_core::{BareJid, Input, SessionId, WatchId, WatchState};
use sip_codec::header::HeaderName;
use sip_codec::{Method, Request};

use super::outgoing::PendingMessage;
use super::{Output, SipPresence};
use crate::core::Flow;
use crate::publications::SystemState;

/// The engine session of one SIP user.
#[derive(Debug)]
pub(super) struct Endpoint {
    session: SessionId,
    bound: bool,
    /// What waits for the bind (the engine drops input for a session it has not bound yet).
    queued: Vec<Queued>,
    /// The presence last told to the engine (`None` = unavailable).
    sent: Option<EndpointPresence>,
    /// Whether the engine was last told the session is reachable (a contact is registered).
    reachable: bool,
    /// MESSAGEs still waiting for their outcome.
    in_flight: usize,
}

/// Something held until the endpoint's session is bound.
#[derive(Debug)]
enum Queued {
    Input(Box<Input>),
    /// A MESSAGE's input and the token of the flush that reports its outcome (queued together or not at all).
    Message(Box<Input>, u64),
}

impl SipPresence {
    /// Counts a bound endpoint session out of the metrics when it goes.
    pub(super) fn endpoint_gone(&self, e: &Endpoint) {
        if e.bound {
            self.metrics.session_closed(Protocol::Sip);
        }
    }
}

impl Endpoint {
    /// Its engine session.
    pub(super) fn session(&self) -> SessionId {
        self.session
    }
}

/// Whether the line change goes to the engine before the calendar change when the trusted peers' state goes from
/// `old` to `new`: so when the state shown between the two (new line, old calendar) is the old or the new one, as
/// the engine composes them (DESIGN §2: out of office over on the phone over in a meeting); otherwise the calendar
/// goes first, whose state between (old line, new calendar) then always is.
fn line_first(old: SystemState, new: SystemState) -> bool {
    let between = shown(SystemState {
        on_the_phone: new.on_the_phone,
        calendar: old.calendar,
    });
    between == shown(old) || between == shown(new)
}

/// What watchers see of a user whose only other source is a plainly available endpoint, with the trusted peers'
/// state `s`, as the engine composes it.
fn shown(s: SystemState) -> presence_core::compose::PresenceState {
    let mut overlays = Overlays {
        calendar: s.calendar,
        ..Overlays::default()
    };
    if s.on_the_phone {
        overlays.set_line("trunk", LineState::OnThePhone);
    }
    compose(
        [&EndpointPresence::default()],
        &overlays,
        ComposeSettings::default(),
    )
    .state
}

/// The resource SIP endpoints bind.
const RESOURCE: &str = "sip";

impl SipPresence {
    /// What the user's SIP side should tell the engine now.
    fn wanted_presence(&self, user: &BareJid) -> Option<EndpointPresence> {
        let registered = self.registrar.is_registered(user);
        let priority = if registered { 0 } else { -1 };
        match self.publications.current(user) {
            Some(p) => p.presence.clone().map(|mut e| {
                e.priority = priority;
                e
            }),
            None if registered => Some(EndpointPresence::default()),
            None => None,
        }
    }

    fn ensure_endpoint(&mut self, user: &BareJid) -> SessionId {
        if let Some(e) = self.endpoints.get(user) {
            return e.session;
        }
        let session = self.runtime.new_session();
        // The driver attaches the shared delivery sink before the OpenSession input that follows.
        self.out(Output::OpenSession(session));
        self.submit(Input::OpenSession {
            session,
            user: user.clone(),
            resource: Some(RESOURCE.into()),
        });
        self.endpoints.insert(
            user.clone(),
            Endpoint {
                session,
                bound: false,
                queued: Vec::new(),
                sent: None,
                reachable: false,
                in_flight: 0,
            },
        );
        self.by_session.insert(session, user.clone());
        session
    }

    /// Brings the engine's view of the user's SIP side up to date: opens, updates or closes the session.
    pub(super) fn update_endpoint(&mut self, user: &BareJid) {
        let wanted = self.wanted_presence(user);
        let live = self.registrar.is_registered(user) || self.publications.current(user).is_some();
        if !live && self.endpoints.get(user).is_none_or(|e| e.in_flight == 0) {
            if let Some(e) = self.endpoints.remove(user) {
                self.endpoint_gone(&e);
                self.by_session.remove(&e.session);
                self.out(Output::CloseSession(e.session));
            }
            return;
        }
        let reachable = self.registrar.is_registered(user);
        let session = self.ensure_endpoint(user);
        let Some(e) = self.endpoints.get_mut(user) else {
            return;
        };
        // At most two inputs, in this order: the presence, then the reachability.
        let mut inputs: [Option<Input>; 2] = [None, None];
        if e.sent != wanted {
            e.sent = wanted.clone();
            inputs[0] = Some(Input::Presence {
                session,
                to: None,
                presence: wanted,
            });
        }
        if e.reachable != reachable {
            e.reachable = reachable;
            inputs[1] = Some(Input::Reachable { session, reachable });
        }
        if e.bound {
            for input in inputs.into_iter().flatten() {
                self.submit(input);
            }
        } else {
            e.queued.extend(
                inputs
                    .into_iter()
                    .flatten()
                    .map(|i| Queued::Input(Box::new(i))),
            );
        }
    }

    /// Hands an input to the engine. Requests were checked for room before any of their work began
    /// (`requests.rs`), so a refusal here is a race with other shells filling the queue at the same moment:
    /// logged and counted, the SIP side carries on.
    pub(super) fn submit(&mut self, input: Input) {
        self.out(Output::Submit(input));
    }

    /// Sends `input` as coming from the user's SIP session (opening it if needed) and asks the hub to report
    /// when it has been handled, so the MESSAGE transaction can be answered with its outcome.
    pub(super) fn send_as(
        &mut self,
        user: &BareJid,
        mut input: Input,
        token: u64,
        req: Request,
        flow: Flow,
    ) {
        let session = self.ensure_endpoint(user);
        if let Input::Message { session: s, .. } = &mut input {
            *s = session;
        }
        let id = match &input {
            Input::Message { message, .. } => message.id.clone(),
            _ => None,
        };
        self.pending_messages.insert(
            token,
            PendingMessage {
                req,
                flow,
                id,
                error: None,
            },
        );
        let Some(e) = self.endpoints.get_mut(user) else {
            return;
        };
        e.in_flight += 1;
        if e.bound {
            self.out(Output::SubmitAndFlush {
                input: Box::new(input),
                session,
                token,
            });
        } else {
            e.queued.push(Queued::Message(Box::new(input), token));
        }
    }

    /// Something the engine sent one of our SIP sessions.
    pub(super) fn delivery(&mut self, now: Instant, session: SessionId, msg: ToSession) {
        let Some(user) = self.by_session.get(&session).cloned() else {
            return;
        };
        match msg {
            ToSession::Bound(_) => {
                let Some(e) = self.endpoints.get_mut(&user) else {
                    return;
                };
                e.bound = true;
                self.metrics.session_opened(Protocol::Sip);
                for queued in std::mem::take(&mut e.queued) {
                    match queued {
                        Queued::Message(input, token) => {
                            self.out(Output::SubmitAndFlush {
                                input,
                                session,
                                token,
                            });
                        }
                        Queued::Input(input) => self.submit(*input),
                    }
                }
            }
            ToSession::BindRefused(_) | ToSession::Closed(_) => {
                // The session is gone (refused, or replaced by an XMPP client binding the same resource):
                // answer what waited on it and forget it; the next SIP activity opens a new one. The account
                // is read again then: a removed account closes its sessions this way.
                self.accounts.forget(&user);
                if let Some(e) = self.endpoints.remove(&user) {
                    self.endpoint_gone(&e);
                    self.by_session.remove(&e.session);
                    for queued in e.queued {
                        if let Queued::Message(_, token) = queued {
                            self.finish_message(
                                now,
                                token,
                                Some("The sender's session could not be opened"),
                            );
                        }
                    }
                }
            }
            ToSession::Flushed { token, durable } => {
                if let Some(e) = self.endpoints.get_mut(&user) {
                    e.in_flight = e.in_flight.saturating_sub(1);
                }
                let error = self
                    .pending_messages
                    .get_mut(&token)
                    .and_then(|p| p.error.take());
                if let Some((ErrorCondition::InternalServerError, _)) = error {
                    // The recipient's data could not be loaded: temporary, the phone should try again.
                    self.finish_temporary(now, token, 500, super::requests::STORE_UNAVAILABLE);
                } else if durable {
                    self.finish_message(now, token, error.as_ref().map(|(_, t)| t.as_str()));
                } else {
                    // The store refused a write the MESSAGE depended on: it was not kept, so no 200.
                    self.finish_temporary(now, token, 500, super::requests::STORE_UNAVAILABLE);
                }
                self.update_endpoint(&user);
            }
            ToSession::Stanza(stanza) => self.stanza_for(now, &user, stanza),
        }
    }

    fn stanza_for(&mut self, now: Instant, user: &BareJid, stanza: Stanza) {
        match stanza {
            Stanza::Message { from, message, .. } => {
                let Some(body) = message.body.clone() else {
                    // Chat states and receipts have no SIP form.
                    return;
                };
                let from = from.bare().clone();
                let contacts: Vec<(String, Flow)> = self
                    .registrar
                    .bindings(user)
                    .iter()
                    .map(|b| (b.contact.clone(), b.flow))
                    .collect();
                for (contact, flow) in contacts {
                    self.send_message(now, &from, user, &contact, flow, &body);
                }
            }
            Stanza::Error(e) => {
                if let ErrorAbout::Message { id: Some(id), .. } = &e.about
                    && let Some(p) = self
                        .pending_messages
                        .values_mut()
                        .find(|p| p.id.as_deref() == Some(id.as_str()))
                {
                    p.error = Some((
                        e.condition,
                        e.text
                            .clone()
                            .unwrap_or_else(|| "Temporarily Unavailable".into()),
                    ));
                }
            }
            // SIP watchers get presence through their subscriptions; subscription requests to a SIP user are
            // approved by automatic authorization (DESIGN §3: SIP watchers only work in that mode).
            _ => {}
        }
    }

    fn send_message(
        &mut self,
        now: Instant,
        from: &BareJid,
        to: &BareJid,
        contact: &str,
        flow: Flow,
        body: &str,
    ) {
        let Ok(uri) = sip_codec::Uri::parse(contact) else {
            return;
        };
        let mut req = Request::new(Method::Message, uri);
        let via = self.via(flow);
        let h = &mut req.headers;
        h.push(HeaderName::Via, via.header);
        h.push(HeaderName::MaxForwards, "70");
        let tag = self.tag();
        let h = &mut req.headers;
        h.push(HeaderName::From, format!("<sip:{from}>;tag={tag}"));
        h.push(HeaderName::To, format!("<sip:{to}>"));
        h.push(
            HeaderName::CallId,
            format!("{tag}@{}", self.settings.domain),
        );
        h.push(HeaderName::CSeq, "1 MESSAGE");
        h.push(HeaderName::ContentType, "text/plain;charset=UTF-8");
        req.body = body.as_bytes().to_vec();
        self.start_client(now, req, via.branch, flow, None);
    }

    /// The engine's report on a watch.
    pub(super) fn watch_update(&mut self, now: Instant, watch: WatchId, state: WatchState) {
        let Some(d) = self.dialogs.get_mut(&watch) else {
            return;
        };
        let ended = match &state {
            WatchState::Terminated(presence_core::WatchEnd::Rejected) => {
                Some(crate::dialogs::EndReason::Rejected)
            }
            WatchState::Terminated(presence_core::WatchEnd::NoResource) => {
                Some(crate::dialogs::EndReason::NoResource)
            }
            // The store failed: the subscriber should come back, but not at once.
            WatchState::Terminated(presence_core::WatchEnd::StoreUnavailable) => {
                Some(crate::dialogs::EndReason::Probation)
            }
            // The watched user moved to another node: subscribe again at once, and be sent there.
            WatchState::Terminated(presence_core::WatchEnd::Moved) => {
                Some(crate::dialogs::EndReason::Deactivated)
            }
            _ => None,
        };
        d.state = Some(state);
        let fetch = d.fetch;
        match (ended, fetch) {
            (Some(reason), _) => {
                self.send_notify(now, watch, Some(reason));
                // The engine forgot the watch when it ended it: no Unwatch.
                self.forget_dialog(watch);
            }
            (None, true) => {
                self.send_notify(now, watch, Some(crate::dialogs::EndReason::Timeout));
                self.drop_dialog(watch);
            }
            (None, false) => self.send_notify(now, watch, None),
        }
    }

    /// Tells the engine the user's phone line and calendar as the trusted peers publish them: both, always (the
    /// engine's view never drifts), in the order that shows watchers no state between the old and the new one.
    /// One document can change both (on the phone → in a meeting); line first would show the user plainly
    /// available for a moment, every SIP watcher getting a NOTIFY for it.
    pub(super) fn apply_system(&mut self, user: &BareJid) {
        let new = self.publications.system(user);
        let old = if new == SystemState::default() {
            self.system_sent.remove(user)
        } else {
            self.system_sent.insert(user.clone(), new)
        }
        .unwrap_or_default();
        let line = Input::PhoneLine {
            user: user.clone(),
            line: "trunk".into(),
            state: if new.on_the_phone {
                LineState::OnThePhone
            } else {
                LineState::Idle
            },
        };
        let calendar = Input::Calendar {
            user: user.clone(),
            state: new.calendar,
        };
        let (first, second) = if line_first(old, new) {
            (line, calendar)
        } else {
            (calendar, line)
        };
        self.submit(first);
        self.submit(second);
    }

    /// A MESSAGE the engine had no room for: `503` with Retry-After, and it no longer counts as in flight.
    pub(super) fn message_refused(&mut self, now: Instant, user: &BareJid, token: u64) {
        self.metrics.engine_busy();
        if let Some(e) = self.endpoints.get_mut(user) {
            e.in_flight = e.in_flight.saturating_sub(1);
        }
        self.finish_temporary(now, token, 503, "Service Unavailable");
    }

    /// Answers a MESSAGE with a temporary failure and Retry-After.
    fn finish_temporary(&mut self, now: Instant, token: u64, status: u16, reason: &str) {
        let Some(PendingMessage { req, flow, .. }) = self.pending_messages.remove(&token) else {
            return;
        };
        self.respond_temporary(now, &req, flow, status, reason);
    }

    /// Answers a MESSAGE whose outcome is known.
    pub(super) fn finish_message(&mut self, now: Instant, token: u64, error: Option<&str>) {
        let Some(PendingMessage { req, flow, .. }) = self.pending_messages.remove(&token) else {
            return;
        };
        let resp = match error {
            None => req.make_response(200, "OK"),
            Some(text) => req.make_response(480, &super::requests::reason_phrase(text)),
        };
        self.respond(now, &req, flow, resp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_core::compose::CalendarState;

    #[test]
    fn system_changes_go_in_an_order_that_shows_no_state_in_between() {
        let calendars = [
            CalendarState::Free,
            CalendarState::Tentative,
            CalendarState::Busy,
            CalendarState::OutOfOffice,
        ];
        let all: Vec<SystemState> = [false, true]
            .into_iter()
            .flat_map(|on_the_phone| {
                calendars.map(|calendar| SystemState {
                    on_the_phone,
                    calendar,
                })
            })
            .collect();
        for &old in &all {
            for &new in &all {
                let between = if line_first(old, new) {
                    SystemState {
                        on_the_phone: new.on_the_phone,
                        calendar: old.calendar,
                    }
                } else {
                    SystemState {
                        on_the_phone: old.on_the_phone,
                        calendar: new.calendar,
                    }
                };
                assert!(
                    [shown(old), shown(new)].contains(&shown(between)),
                    "{old:?} -> {new:?} shows {:?} in between",
                    shown(between)
                );
            }
        }
    }

    #[test]
    fn on_the_phone_to_meeting_books_the_calendar_first() {
        let phone = SystemState {
            on_the_phone: true,
            calendar: CalendarState::Free,
        };
        let meeting = SystemState {
            on_the_phone: false,
            calendar: CalendarState::Busy,
        };
        assert!(!line_first(phone, meeting));
        assert!(line_first(meeting, phone));
    }
}
