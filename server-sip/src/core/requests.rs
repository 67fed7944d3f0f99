//! Requests from SIP peers: validation, authentication, and the method handlers (REGISTER, PUBLISH, SUBSCRIBE,
//! MESSAGE, OPTIONS) with the errors RFC 3261/3903/6665 name.

use std::time::{Duration, Instant};

use presence_core::message::{Message as ImMessage, MessageKind};
use presence_core::{BareJid, Input, Jid, WatchId};
use sip_codec::header::{Contacts, HeaderName};
use sip_codec::transaction::TransactionKey;
use sip_codec::{Method, Request, Uri};

use super::packages::{self, EventPackage, PublishAs};
use super::publish_step::{IfMatch, Media, Step, granted};
use super::{ExpiryBounds, SipPresence};
use crate::caps::Over;
use crate::core::Flow;
use crate::dialogs::Dialog;
use crate::digest::Verdict;
use crate::presence_map::{endpoint_from_pidf, system_from_pidf};

/// Who is publishing.
enum Publisher {
    /// An authenticated user, for themself.
    User(BareJid),
    /// A trusted call-control peer, for the user in the Request-URI.
    Trusted,
}

/// What we implement, for Allow headers.
pub(super) const ALLOW: &str = "REGISTER, PUBLISH, SUBSCRIBE, NOTIFY, MESSAGE, OPTIONS";
/// Seconds a peer is asked to wait after a temporary refusal (store failure, engine busy, over its rate).
pub(super) const RETRY_AFTER: &str = "5";
/// The reason phrase of a `500` for a store failure.
pub(super) const STORE_UNAVAILABLE: &str = "Store Temporarily Unavailable";

impl SipPresence {
    pub(super) fn request(&mut self, now: Instant, req: Request, flow: Flow) {
        if req.method == Method::Ack {
            return;
        }
        let key = TransactionKey::for_server(&req);
        if let Some(key) = &key
            && let Some((tx, _)) = self.server_txs.get_mut(key)
        {
            // A retransmission: the transaction replays its answer (or stays quiet while we work on it).
            tx.handle(now, sip_codec::transaction::Input::Request(req));
            self.drive_server(key);
            return;
        }
        if let Some(key) = &key
            && self.parked_keys.contains(key)
        {
            // A retransmission of a request that waits for an account lookup: it is answered once, then.
            return;
        }
        // Validation is defined on messages; wrap and unwrap rather than copy the request.
        let msg = sip_codec::Message::Request(req);
        let checked = msg.validate();
        let sip_codec::Message::Request(req) = msg else {
            return;
        };
        if let Err(e) = checked {
            let resp = req.make_response(e.status, &e.reason);
            return self.respond(now, &req, flow, resp);
        }
        // A SIPS Request-URI asks for TLS on every hop (RFC 3261 §26.2.2, RFC 5630 §3.1): over a hop that is
        // not TLS the request cannot be served as asked, and is refused as a scheme this hop does not support
        // (RFC 3261 §8.2.2.1, 416) rather than quietly served in the clear.
        if super::outgoing::is_sips(&req.uri) && !flow.secure() {
            let resp = req.make_response(416, "SIPS Requires TLS");
            return self.respond(now, &req, flow, resp);
        }
        match req.method {
            Method::Options => {
                let mut resp = req.make_response(200, "OK");
                resp.headers.push(HeaderName::Allow, ALLOW);
                resp.headers.push(HeaderName::AllowEvents, packages::all());
                resp.headers.push(HeaderName::Accept, packages::accept());
                self.respond(now, &req, flow, resp)
            }
            // A call-control peer on the trust list publishes for any user without credentials (DESIGN §7).
            Method::Publish
                if req.headers.get(&HeaderName::Authorization).is_none()
                    && self.trusted(flow)
                    && !self.intake.engine_busy =>
            {
                self.publish(now, req, flow, Publisher::Trusted)
            }
            // Everything below feeds the engine: when its queue is full, refuse before touching any state.
            Method::Register | Method::Publish | Method::Subscribe | Method::Message
                if self.intake.engine_busy =>
            {
                self.metrics.engine_busy();
                self.engine_busy(now, &req, flow)
            }
            Method::Register | Method::Publish | Method::Subscribe | Method::Message => {
                // RFC 3903 §6 and RFC 6665 §4.2.1.1: an unknown event package is refused before anything else,
                // so a client is not made to authenticate for a request that cannot succeed.
                if let Some(allowed) = event_packages(&req.method)
                    && let Ok(event) = req.headers.event()
                    && !event
                        .and_then(|e| packages::find(&e.package))
                        .is_some_and(|p| allowed.0(p))
                {
                    let mut resp = req.make_response(489, "Bad Event");
                    resp.headers.push(HeaderName::AllowEvents, allowed.1());
                    return self.respond(now, &req, flow, resp);
                }
                let Some(user) = self.authenticate(now, &req, flow) else {
                    return self.park_if_needed(now, req, flow);
                };
                // In a cluster, a request is served by the node of the user it is about: the watched user for
                // a SUBSCRIBE, the sender for everything else.
                let about = match req.method {
                    Method::Subscribe => self.aor(&req.uri),
                    _ => Some(user.clone()),
                };
                if let Some(about) = about
                    && self.send_home(now, &req, flow, &about)
                {
                    return self.park_if_needed(now, req, flow);
                }
                match req.method {
                    Method::Register => self.register(now, req, flow, user),
                    Method::Publish => self.publish(now, req, flow, Publisher::User(user)),
                    Method::Subscribe => self.subscribe(now, req, flow, user),
                    _ => self.message(now, req, flow, user),
                }
            }
            // We keep no dialogs a peer could NOTIFY us in (trusted call-control peers come with DESIGN §7).
            Method::Notify => {
                let resp = req.make_response(481, "Subscription Does Not Exist");
                self.respond(now, &req, flow, resp)
            }
            Method::Cancel => {
                let resp = req.make_response(481, "Call/Transaction Does Not Exist");
                self.respond(now, &req, flow, resp)
            }
            Method::Extension(_) => {
                let resp = req.make_response(501, "Not Implemented");
                self.respond(now, &req, flow, resp)
            }
            _ => {
                let mut resp = req.make_response(405, "Method Not Allowed");
                resp.headers.push(HeaderName::Allow, ALLOW);
                self.respond(now, &req, flow, resp)
            }
        }
    }

    /// The user a request is from, once its digest credentials check out and match its From; otherwise the
    /// request has been answered (401, 403 or 400) and `None` is returned.
    fn authenticate(&mut self, now: Instant, req: &Request, flow: Flow) -> Option<BareJid> {
        let mut failed = None;
        let mut needed = None;
        let mut cached = None;
        let answers = &self.intake.answers;
        let accounts = &self.accounts;
        let verdict = self.auth.check(req, now, |user| match answers.get(user) {
            Some(Ok(account)) => account.as_ref().map(|a| a.digest.as_slice()),
            Some(Err(e)) => {
                failed = Some(e.clone());
                None
            }
            None => match accounts.get(user, now) {
                Some(secrets) => {
                    cached = Some(user.clone());
                    Some(secrets)
                }
                None => {
                    needed = Some(user.clone());
                    None
                }
            },
        });
        if let (Verdict::Forbidden(_), Some(user)) = (&verdict, cached) {
            // Checked against a kept copy, which may predate a password change: the store decides.
            self.accounts.forget(&user);
            needed = Some(user);
        }
        if let Some(user) = needed {
            // The account is not known yet: the request is parked by the caller and tried again with it.
            self.intake.needed = Some(user);
            return None;
        }
        if let Some(e) = failed {
            self.store_failed(now, req, flow, &e);
            return None;
        }
        let (status, reason) = match verdict {
            Verdict::Authenticated(user) => {
                tracing::Span::current().record("user", tracing::field::display(&user));
                // The authenticated user may only speak as themself (RFC 3261 §22.3 leaves this to policy).
                let from = req
                    .headers
                    .from()
                    .ok()
                    .flatten()
                    .and_then(|f| self.aor(&f.uri));
                if from.as_ref() == Some(&user) {
                    return Some(user);
                }
                (403, "From does not match the authenticated user")
            }
            Verdict::Challenge { stale } => {
                let mut resp = req.make_response(401, "Unauthorized");
                for c in self.auth.challenges(now, stale) {
                    resp.headers.push(HeaderName::WwwAuthenticate, c);
                }
                self.respond(now, req, flow, resp);
                return None;
            }
            Verdict::Forbidden(reason) => (403, reason),
            Verdict::Malformed(reason) => (400, reason),
        };
        let resp = req.make_response(status, reason);
        self.respond(now, req, flow, resp);
        None
    }

    /// The local user a SIP URI names (`sip:alice@anything` is `alice@<domain>`: one domain is served, and
    /// phones often put the server's address in the host part).
    pub(super) fn aor(&self, uri: &Uri) -> Option<BareJid> {
        let sip = uri.as_sip()?;
        let user = sip.user.as_deref()?;
        BareJid::new(&format!("{user}@{}", self.settings.domain)).ok()
    }

    /// Whether `user` has an account; otherwise the request has been answered: `404`, or `500` with
    /// Retry-After when the store could not tell (a failure is never read as "no such user"), or the account
    /// is not known yet and the lookup is noted in `intake.needed` for the caller to park the request.
    fn account_exists(&mut self, now: Instant, req: &Request, flow: Flow, user: &BareJid) -> bool {
        if self.accounts.get(user, now).is_some() {
            return true;
        }
        let Some(answer) = self.intake.answers.get(user).cloned() else {
            self.intake.needed = Some(user.clone());
            return false;
        };
        match answer {
            Ok(Some(_)) => true,
            Ok(None) => {
                let resp = req.make_response(404, "Not Found");
                self.respond(now, req, flow, resp);
                false
            }
            Err(e) => {
                self.store_failed(now, req, flow, &e);
                false
            }
        }
    }

    /// Answers a request about a user served by another node of the cluster: `302 Moved Temporarily` with that
    /// node in the Contact (RFC 3261 §21.3.3), so the endpoint sends this and later requests there (DESIGN §7: an
    /// initial PUBLISH may land on any node; the answer points to the user's home). A redirect rather than a
    /// proxy: the home node then sees the endpoint's own flow, which it needs for its registrations and
    /// dialogs, and a node's death does not leave requests stranded in another node's proxy state. While no
    /// node serves the user (a failed node before its peer took over), `503` with Retry-After (`404` when the user
    /// has no account). Returns whether the request was answered.
    ///
    /// The Contact keeps the user of the Request-URI (the user the request is addressed to): RFC 3261 §8.1.3.4
    /// has the endpoint send the request again with that Contact as its Request-URI, and a MESSAGE, routed by
    /// its sender, must still reach its recipient there. A Request-URI without a user (REGISTER) gets the
    /// routed user's.
    fn send_home(&mut self, now: Instant, req: &Request, flow: Flow, user: &BareJid) -> bool {
        match self.runtime.locate(user) {
            presence_core::runtime::Location::Here => false,
            presence_core::runtime::Location::Node(node) => {
                match &node.sip {
                    Some(address) => {
                        let mut resp = req.make_response(302, "Moved Temporarily");
                        let addressee = self.aor(&req.uri);
                        let local = addressee
                            .as_ref()
                            .unwrap_or(user)
                            .local()
                            .unwrap_or_default();
                        // The endpoint keeps its transport: a TCP client told nothing would try UDP there. A TLS
                        // client is sent to the node's TLS port as `sips:` (the nodes of a cluster listen for
                        // TLS on the same port; the cluster advertises only the UDP/TCP address).
                        let contact = match (flow, &self.settings.tls) {
                            (Flow::Tls(_), Some(tls)) => {
                                let host = address
                                    .rsplit_once(':')
                                    .map_or(address.as_str(), |(h, _)| h);
                                format!("<sips:{local}@{host}:{}>", tls.bind.port())
                            }
                            (Flow::Tcp(_), _) => format!("<sip:{local}@{address};transport=tcp>"),
                            _ => format!("<sip:{local}@{address}>"),
                        };
                        resp.headers.push(HeaderName::Contact, contact);
                        self.respond(now, req, flow, resp);
                    }
                    None => self.respond_temporary(now, req, flow, 503, "Service Unavailable"),
                }
                true
            }
            // No node serves a user without an account either: that one gets the 404 a single node would give
            // (a 503 with Retry-After would have the endpoint try again forever).
            presence_core::runtime::Location::Nowhere => {
                if self.account_exists(now, req, flow, user) {
                    self.respond_temporary(now, req, flow, 503, "Service Unavailable");
                }
                true
            }
        }
    }

    /// Answers a request the store could not serve: `500` with Retry-After (RFC 3261 §21.5.1), so the peer
    /// tries again instead of taking it for a final refusal.
    pub(super) fn store_failed(
        &mut self,
        now: Instant,
        req: &Request,
        flow: Flow,
        error: &presence_core::store::StoreError,
    ) {
        tracing::warn!(%error, method = %req.method, "store lookup failed");
        self.respond_temporary(now, req, flow, 500, STORE_UNAVAILABLE);
    }

    /// Answers a request the engine has no room for: `503` with Retry-After (RFC 3261 §21.5.4).
    pub(super) fn engine_busy(&mut self, now: Instant, req: &Request, flow: Flow) {
        self.respond_temporary(now, req, flow, 503, "Service Unavailable");
    }

    /// A temporary refusal: the status with Retry-After, so the peer tries again rather than giving up.
    pub(super) fn respond_temporary(
        &mut self,
        now: Instant,
        req: &Request,
        flow: Flow,
        status: u16,
        reason: &str,
    ) {
        let mut resp = req.make_response(status, reason);
        resp.headers.push(HeaderName::RetryAfter, RETRY_AFTER);
        self.respond(now, req, flow, resp);
    }

    pub(super) fn tag(&mut self) -> String {
        format!("{:x}{:08x}", self.id(), self.rng.next_u32())
    }

    /// The expiry a request asks for within `bounds`; `Err` carries the 423 response to send.
    fn expiry(&self, asked: Option<u32>, bounds: ExpiryBounds) -> Result<Duration, ()> {
        match asked {
            None => Ok(bounds.default),
            Some(0) => Ok(Duration::ZERO),
            Some(s) if Duration::from_secs(s.into()) < bounds.min => Err(()),
            Some(s) => Ok(Duration::from_secs(s.into()).min(bounds.max)),
        }
    }

    /// Refuses a request that would take the user or this endpoint of theirs over a cap: `403`, a final
    /// refusal. Not `503` with Retry-After: the cap does not lift by waiting (only by the user's own entries
    /// lapsing or being removed), and a `503` would have the endpoint treat the whole server as unavailable
    /// (RFC 3261 §21.5.4, RFC 3263 failover), refreshes of what it already holds included.
    fn over_cap(&mut self, now: Instant, req: &Request, flow: Flow, what: &str, over: Over) {
        let whose = match over {
            Over::User => "user",
            Over::Endpoint => "device",
        };
        tracing::debug!(what, whose, "refused: over the cap");
        let resp = req.make_response(403, &format!("Too many {what} for this {whose}"));
        self.respond(now, req, flow, resp);
    }

    fn too_brief(&mut self, now: Instant, req: &Request, flow: Flow, bounds: ExpiryBounds) {
        let mut resp = req.make_response(423, "Interval Too Brief");
        resp.headers
            .push(HeaderName::MinExpires, bounds.min.as_secs().to_string());
        self.respond(now, req, flow, resp);
    }

    fn register(&mut self, now: Instant, req: Request, flow: Flow, user: BareJid) {
        let to = req
            .headers
            .to()
            .ok()
            .flatten()
            .and_then(|t| self.aor(&t.uri));
        if to.as_ref() != Some(&user) {
            let resp = req.make_response(403, "Cannot register another user's address");
            return self.respond(now, &req, flow, resp);
        }
        let header_expiry = req.headers.expires().ok().flatten();
        let bounds = self.settings.registration;
        match req.headers.contact() {
            Ok(Some(Contacts::Star)) => {
                if header_expiry != Some(0) {
                    let resp = req.make_response(400, "Contact * needs Expires: 0");
                    return self.respond(now, &req, flow, resp);
                }
                self.registrar.unbind_all(&user);
            }
            Ok(Some(Contacts::List(list))) => {
                // Every contact is checked before any is bound: RFC 3261 §10.3 applies a REGISTER whole or not
                // at all.
                let mut asked = Vec::with_capacity(list.len());
                for c in &list {
                    let Ok(d) = self.expiry(c.expires().or(header_expiry), bounds) else {
                        return self.too_brief(now, &req, flow, bounds);
                    };
                    asked.push((c.uri.to_string(), d));
                }
                let pick = |zero: bool| -> Vec<&str> {
                    asked
                        .iter()
                        .filter(|(_, d)| d.is_zero() == zero)
                        .map(|(c, _)| c.as_str())
                        .collect()
                };
                let (gone, kept) = (pick(true), pick(false));
                if let Err(over) =
                    self.registrar
                        .admits(self.settings.caps.bindings, &user, flow, &kept, &gone)
                {
                    return self.over_cap(now, &req, flow, "registered contacts", over);
                }
                for (contact, d) in asked {
                    if d.is_zero() {
                        self.registrar.unbind(&user, &contact);
                    } else {
                        self.registrar.bind(&user, contact, flow, now + d);
                    }
                }
            }
            Ok(None) => {}
            Err(_) => {
                let resp = req.make_response(400, "Malformed Contact header");
                return self.respond(now, &req, flow, resp);
            }
        }
        let mut resp = req.make_response(200, "OK");
        for b in self.registrar.bindings(&user) {
            let left = b.expires.saturating_duration_since(now).as_secs();
            resp.headers.push(
                HeaderName::Contact,
                format!("<{}>;expires={left}", b.contact),
            );
        }
        self.respond(now, &req, flow, resp);
        self.update_endpoint(&user);
    }

    fn publish(&mut self, now: Instant, req: Request, flow: Flow, publisher: Publisher) {
        // RFC 4235 dialog state is taken by PUBLISH too (core/dialog_package.rs).
        let dialog = match req
            .headers
            .event()
            .map(|e| e.and_then(|e| packages::find(&e.package)?.publish()))
        {
            Ok(Some(PublishAs::Presence)) => false,
            Ok(Some(PublishAs::Dialog)) => true,
            Ok(None) => {
                let mut resp = req.make_response(489, "Bad Event");
                resp.headers
                    .push(HeaderName::AllowEvents, packages::publishable());
                return self.respond(now, &req, flow, resp);
            }
            Err(_) => {
                let resp = req.make_response(400, "Malformed Event header");
                return self.respond(now, &req, flow, resp);
            }
        };
        let Some(user) = self.aor(&req.uri) else {
            let resp = req.make_response(404, "Not Found");
            return self.respond(now, &req, flow, resp);
        };
        if matches!(publisher, Publisher::Trusted) && self.send_home(now, &req, flow, &user) {
            return self.park_if_needed(now, req, flow);
        }
        match &publisher {
            Publisher::User(me) if *me != user => {
                let resp = req.make_response(403, "Cannot publish another user's presence");
                return self.respond(now, &req, flow, resp);
            }
            Publisher::Trusted if !self.account_exists(now, &req, flow, &user) => {
                return self.park_if_needed(now, req, flow);
            }
            _ => {}
        }
        let trusted = matches!(publisher, Publisher::Trusted);
        let bounds = self.settings.publication;
        let Ok(lifetime) = self.expiry(req.headers.expires().ok().flatten(), bounds) else {
            return self.too_brief(now, &req, flow, bounds);
        };
        let if_match = match req.headers.sip_if_match() {
            Ok(t) => t.map(str::to_owned),
            Err(_) => {
                let resp = req.make_response(400, "Malformed SIP-If-Match header");
                return self.respond(now, &req, flow, resp);
            }
        };
        if dialog {
            return self.publish_dialog(now, req, flow, user, lifetime, if_match);
        }
        let if_match = IfMatch::check(if_match, |t| self.publications.get(t, &user).is_some());
        let media = Media {
            kind: ("application", "pidf+xml"),
            parse: |body| {
                sip_codec::pidf::Presence::parse(body).map_err(|_| "Malformed PIDF document")
            },
        };
        let Some(step) = self.publish_step(now, &req, flow, if_match, lifetime, media) else {
            return;
        };
        // Only a new publication is capped: a refresh, modification or removal (SIP-If-Match) never is.
        if let Step::Put { old: None, .. } = &step
            && let Err(over) = self
                .publications
                .check(self.settings.caps.publications, &user, flow)
        {
            return self.over_cap(now, &req, flow, "publications", over);
        }
        let new_tag = format!("{:016x}", self.rng.next_u64());
        let mut resp = req.make_response(200, "OK");
        match step {
            Step::Remove { tag } => {
                self.publications.remove(&tag);
                granted(&mut resp, tag, Duration::ZERO);
            }
            Step::Refresh { tag } => {
                self.publications
                    .refresh(&tag, new_tag.clone(), flow, now + lifetime);
                granted(&mut resp, new_tag, lifetime);
            }
            Step::Put { old, document } => {
                let (presence, system) = if trusted {
                    (None, Some(system_from_pidf(&document)))
                } else {
                    (endpoint_from_pidf(&document, 0), None)
                };
                self.publications.put(
                    old.as_deref(),
                    new_tag.clone(),
                    &user,
                    flow,
                    presence,
                    system,
                    now + lifetime,
                );
                granted(&mut resp, new_tag, lifetime);
            }
        }
        self.respond(now, &req, flow, resp);
        self.update_endpoint(&user);
        // Only a trusted peer's document carries line and calendar state (publications.rs `system`); any
        // PUBLISH can still replace or remove one (SIP-If-Match names it), so a user with some is told too.
        if trusted || self.system_sent.contains_key(&user) {
            self.apply_system(&user);
        }
    }

    /// Whether a flow comes from a trusted call-control peer: by its IP address, or over TLS by a verified
    /// client certificate whose subject is listed.
    fn trusted(&self, flow: Flow) -> bool {
        let peer = match flow {
            Flow::Udp(a) => Some(a),
            Flow::Tcp(c) => self.tcp_peers.get(&c).copied(),
            Flow::Tls(c) if self.trusted_conns.contains(&c) => return true,
            Flow::Tls(c) => self.tcp_peers.get(&c).copied(),
        };
        peer.is_some_and(|a| self.settings.trusted_peers.contains(&a.ip()))
    }

    fn subscribe(&mut self, now: Instant, req: Request, flow: Flow, user: BareJid) {
        let kind = match req
            .headers
            .event()
            .map(|e| e.and_then(|e| packages::find(&e.package)?.watch()))
        {
            Ok(Some(kind)) => kind,
            Ok(None) => {
                let mut resp = req.make_response(489, "Bad Event");
                resp.headers
                    .push(HeaderName::AllowEvents, packages::subscribable());
                return self.respond(now, &req, flow, resp);
            }
            Err(_) => {
                let resp = req.make_response(400, "Malformed Event header");
                return self.respond(now, &req, flow, resp);
            }
        };
        let bounds = self.settings.subscription;
        let Ok(lifetime) = self.expiry(req.headers.expires().ok().flatten(), bounds) else {
            return self.too_brief(now, &req, flow, bounds);
        };
        let call_id = req
            .headers
            .call_id()
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_owned();
        let to_tag = req
            .headers
            .to()
            .ok()
            .flatten()
            .and_then(|t| t.tag().map(str::to_owned));
        if let Some(tag) = to_tag {
            return self.resubscribe(now, req, flow, (call_id, tag), lifetime);
        }
        let Some(target) = self.aor(&req.uri) else {
            let resp = req.make_response(404, "Not Found");
            return self.respond(now, &req, flow, resp);
        };
        if !self.account_exists(now, &req, flow, &target) {
            return self.park_if_needed(now, req, flow);
        }
        let remote_target = match req.headers.contact() {
            Ok(Some(Contacts::List(list))) if list.len() == 1 => list[0].uri.clone(),
            _ => {
                let resp = req.make_response(400, "SUBSCRIBE needs one Contact");
                return self.respond(now, &req, flow, resp);
            }
        };
        if let Err(over) =
            self.subscriptions
                .check(self.settings.caps.subscriptions, &user, flow, 1)
        {
            return self.over_cap(now, &req, flow, "subscriptions", over);
        }
        let watch = WatchId(self.id());
        let local_tag = self.tag();
        let remote = req
            .headers
            .get(&HeaderName::From)
            .unwrap_or_default()
            .to_owned();
        let event_id = req
            .headers
            .event()
            .ok()
            .flatten()
            .and_then(|e| e.id().map(str::to_owned));
        let fetch = lifetime.is_zero();
        let dialog = Dialog {
            watch,
            kind,
            target: target.clone(),
            call_id: call_id.clone(),
            local_tag: local_tag.clone(),
            remote,
            remote_target: remote_target.clone(),
            event_id,
            flow,
            cseq: 0,
            expires: now + lifetime,
            state: None,
            fetch,
            winfo_version: 0,
        };
        self.dialog_keys.insert((call_id, local_tag.clone()), watch);
        self.dialogs.insert(watch, dialog);
        self.subscriptions.insert(watch, &user, flow);
        if !fetch {
            self.dialog_expiry.insert((now + lifetime, watch));
        }
        let mut resp = req.make_response(200, "OK");
        let to = req
            .headers
            .get(&HeaderName::To)
            .unwrap_or_default()
            .to_owned();
        resp.headers
            .set(HeaderName::To, format!("{to};tag={local_tag}"));
        resp.headers
            .push(HeaderName::Expires, lifetime.as_secs().to_string());
        let contact = self.contact_for(flow, super::outgoing::is_sips(&remote_target));
        resp.headers
            .push(HeaderName::Contact, format!("<{contact}>"));
        self.respond(now, &req, flow, resp);
        // The first NOTIFY goes out when the engine reports the watch's state.
        self.submit(Input::Watch {
            watch,
            watcher: user,
            target,
            kind,
        });
    }

    fn resubscribe(
        &mut self,
        now: Instant,
        req: Request,
        flow: Flow,
        key: (String, String),
        lifetime: Duration,
    ) {
        let Some(watch) = self.dialog_keys.get(&key).copied() else {
            let resp = req.make_response(481, "Subscription Does Not Exist");
            return self.respond(now, &req, flow, resp);
        };
        let sips = self
            .dialogs
            .get(&watch)
            .is_some_and(|d| super::outgoing::is_sips(&d.remote_target));
        let mut resp = req.make_response(200, "OK");
        resp.headers
            .push(HeaderName::Expires, lifetime.as_secs().to_string());
        let contact = self.contact_for(flow, sips);
        resp.headers
            .push(HeaderName::Contact, format!("<{contact}>"));
        self.respond(now, &req, flow, resp);
        if let Some(d) = self.dialogs.get_mut(&watch) {
            d.flow = flow;
            self.dialog_expiry.remove(&(d.expires, watch));
            d.expires = now + lifetime;
            self.dialog_expiry.insert((d.expires, watch));
        }
        self.subscriptions.move_to(&watch, flow);
        if lifetime.is_zero() {
            // RFC 6665 §4.2.1.4: an unsubscribe gets a final NOTIFY.
            self.send_notify(now, watch, Some(crate::dialogs::EndReason::Unsubscribed));
            self.drop_dialog(watch);
        } else {
            // RFC 6665 §4.2.1.2: a refresh gets a NOTIFY with the current state.
            if self.dialogs.get(&watch).is_some_and(|d| d.state.is_some()) {
                self.send_notify(now, watch, None);
            }
        }
    }

    /// The subscription lapsed (by the expiry index, so it has).
    pub(super) fn dialog_timer(&mut self, now: Instant, watch: WatchId) {
        if self.dialogs.get(&watch).is_some_and(|d| d.expires <= now) {
            self.send_notify(now, watch, Some(crate::dialogs::EndReason::Timeout));
            self.drop_dialog(watch);
        }
    }

    /// Forgets a dialog and its watch.
    pub(super) fn drop_dialog(&mut self, watch: WatchId) {
        if self.forget_dialog(watch) {
            self.submit(Input::Unwatch { watch });
        }
    }

    /// Forgets a dialog the engine has already ended; whether there was one.
    pub(super) fn forget_dialog(&mut self, watch: WatchId) -> bool {
        let Some(d) = self.dialogs.remove(&watch) else {
            return false;
        };
        self.dialog_keys.remove(&(d.call_id, d.local_tag));
        self.dialog_expiry.remove(&(d.expires, watch));
        self.subscriptions.remove(&watch);
        true
    }

    fn message(&mut self, now: Instant, req: Request, flow: Flow, user: BareJid) {
        let Some(target) = self.aor(&req.uri) else {
            let resp = req.make_response(404, "Not Found");
            return self.respond(now, &req, flow, resp);
        };
        match req.headers.content_type() {
            Ok(Some(t)) if t.kind.eq_ignore_ascii_case("text") => {}
            _ => {
                let mut resp = req.make_response(415, "Unsupported Media Type");
                resp.headers.push(HeaderName::Accept, "text/plain");
                return self.respond(now, &req, flow, resp);
            }
        }
        let Ok(body) = String::from_utf8(req.body.clone()) else {
            let resp = req.make_response(400, "Message body is not UTF-8");
            return self.respond(now, &req, flow, resp);
        };
        if !self.account_exists(now, &req, flow, &target) {
            return self.park_if_needed(now, req, flow);
        }
        let token = self.id();
        let message = ImMessage {
            id: Some(format!("sip-{token}")),
            kind: MessageKind::Chat,
            body: Some(body),
            stamp: self.intake.received,
            ..ImMessage::default()
        };
        let input = Input::Message {
            session: presence_core::SessionId(0),
            to: Jid::Bare(target),
            message,
        };
        self.send_as(&user, input, token, req, flow);
    }
}

/// Text made fit for a status line: a reason phrase must stay on its line whatever the text holds (a parser's
/// message, the operator's undeliverable text).
pub(super) fn reason_phrase(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// Which packages a method takes and its Allow-Events, for the methods that carry an Event header.
type Accepts = (fn(&dyn EventPackage) -> bool, fn() -> String);

/// The event packages a method accepts, for the methods that carry one.
fn event_packages(method: &Method) -> Option<Accepts> {
    match method {
        Method::Publish => Some((|p| p.publish().is_some(), packages::publishable)),
        Method::Subscribe => Some((|p| p.watch().is_some(), packages::subscribable)),
        _ => None,
    }
}

/// A response to bytes that did not parse, built from whatever Via/From/To/Call-ID/CSeq lines can be found, or
/// `None` when there is nothing to answer (a response, or no Via to send it to).
/// A temporary refusal of a raw request that never reached the service (over its rate): the
/// [`fallback_response`] with Retry-After.
pub(crate) fn refusal(raw: &[u8], status: u16, reason: &str) -> Option<Vec<u8>> {
    let mut bytes = fallback_response(raw, status, reason)?;
    // Insert Retry-After before the blank line that ends the headers.
    let end = bytes.len() - 2;
    bytes.splice(
        end..end,
        format!("Retry-After: {RETRY_AFTER}\r\n").into_bytes(),
    );
    Some(bytes)
}

pub(super) fn fallback_response(raw: &[u8], status: u16, reason: &str) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let first = lines.next()?;
    if first.starts_with("SIP/") {
        return None;
    }
    let mut kept = Vec::new();
    let mut has_via = false;
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = HeaderName::parse(name.trim());
        if matches!(
            name,
            HeaderName::Via
                | HeaderName::From
                | HeaderName::To
                | HeaderName::CallId
                | HeaderName::CSeq
        ) {
            has_via |= name == HeaderName::Via;
            kept.push(format!("{}: {}\r\n", name.as_str(), value.trim()));
        }
    }
    if !has_via {
        return None;
    }
    let mut out = format!("SIP/2.0 {status} {}\r\n", reason_phrase(reason));
    for k in kept {
        out.push_str(&k);
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_request_gets_an_answer_with_its_own_headers() {
        let raw = b"REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\nCSeq: bogus\r\nCall-ID: a\r\n\r\n";
        let out = String::from_utf8(fallback_response(raw, 400, "Bad CSeq").expect("answered"))
            .expect("utf8");
        assert!(out.starts_with("SIP/2.0 400 Bad CSeq\r\n"), "{out}");
        assert!(
            out.contains("Via: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\n"),
            "{out}"
        );
        assert!(out.contains("Call-ID: a\r\n"), "{out}");
    }

    #[test]
    fn responses_and_viagless_garbage_get_nothing() {
        assert!(fallback_response(b"SIP/2.0 200 OK\r\n\r\n", 400, "x").is_none());
        assert!(fallback_response(b"\x00\x01garbage", 400, "x").is_none());
    }
}
