//! What an operator can see: the runtime's and the shells' counters, in the Prometheus text format.
//!
//! One [`Metrics`] per process, owned by the runtime and reached through [`super::Handle::metrics`]. Counters
//! that hot paths touch are resolved once here (a field per label value), so counting a stanza is one atomic
//! add; label values come from fixed sets so an attacker cannot grow the series.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = [(&'static str, &'static str); 1];

/// The protocol a session, connection or limit hit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// XMPP client-to-server.
    Xmpp = 0,
    /// SIP.
    Sip = 1,
}

impl Protocol {
    fn label(self) -> &'static str {
        match self {
            Protocol::Xmpp => "xmpp",
            Protocol::Sip => "sip",
        }
    }
}

/// The kinds stanzas are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StanzaKind {
    /// `<message/>`.
    Message = 0,
    /// `<presence/>`.
    Presence = 1,
    /// `<iq/>`.
    Iq = 2,
}

impl StanzaKind {
    fn label(self) -> &'static str {
        match self {
            StanzaKind::Message => "message",
            StanzaKind::Presence => "presence",
            StanzaKind::Iq => "iq",
        }
    }

    /// The kind of an XMPP stanza by its element name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "message" => Some(StanzaKind::Message),
            "presence" => Some(StanzaKind::Presence),
            "iq" => Some(StanzaKind::Iq),
            _ => None,
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The process holds its maximum of connections.
    Total,
    /// The peer's address holds its maximum.
    PerAddress,
    /// Too many connections are authenticating at once.
    Unauthenticated,
}

impl Rejection {
    fn label(self) -> &'static str {
        match self {
            Rejection::Total => "total",
            Rejection::PerAddress => "per_ip",
            Rejection::Unauthenticated => "unauthenticated",
        }
    }
}

/// The SIP methods requests are counted by; anything else is `other`.
const SIP_METHODS: [&str; 13] = [
    "REGISTER",
    "PUBLISH",
    "SUBSCRIBE",
    "NOTIFY",
    "MESSAGE",
    "OPTIONS",
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "UPDATE",
    "REFER",
];

fn sip_method_label(method: &str) -> &'static str {
    SIP_METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .copied()
        .unwrap_or("other")
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    // Hot-path series resolved once: counting is then one atomic add, no lookup in the family.
    sessions_by: [Gauge; 2],
    stanzas_in_by: [Counter; 3],
    stanzas_out_by: [Counter; 3],
    sessions: Family<Labels, Gauge>,
    stanzas_in: Family<Labels, Counter>,
    stanzas_out: Family<Labels, Counter>,
    sip_in: Family<Labels, Counter>,
    sip_out: Family<Labels, Counter>,
    rejected: Family<Labels, Counter>,
    rate_limited: Family<Labels, Counter>,
    store_failures: Family<Labels, Counter>,
    compliance_failures: Family<Labels, Counter>,
    compliance_written: Counter,
    pub(crate) deliveries: Counter,
    pub(crate) offline_held: Gauge,
    pub(crate) commit_seconds: Histogram,
    pub(crate) step_seconds: Histogram,
    pub(crate) engine_queue: Gauge,
    slow_consumers: Counter,
    engine_busy: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("presenced");
        let m = Metrics {
            sessions_by: Default::default(),
            stanzas_in_by: Default::default(),
            stanzas_out_by: Default::default(),
            sessions: Family::default(),
            stanzas_in: Family::default(),
            stanzas_out: Family::default(),
            sip_in: Family::default(),
            sip_out: Family::default(),
            rejected: Family::default(),
            rate_limited: Family::default(),
            store_failures: Family::default(),
            compliance_failures: Family::default(),
            compliance_written: Counter::default(),
            deliveries: Counter::default(),
            offline_held: Gauge::default(),
            // 100 µs to about 3 s: an fsync on a good disk is near the bottom, a struggling one near the top.
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            // 25 µs (one input on an idle engine) to about 0.8 s: a stall shows as a count in the upper buckets.
            step_seconds: Histogram::new(exponential_buckets(0.000025, 2.0, 16)),
            engine_queue: Gauge::default(),
            slow_consumers: Counter::default(),
            engine_busy: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("sessions", "Bound sessions by protocol", m.sessions.clone());
        registry.register(
            "stanzas_in",
            "XMPP stanzas received from clients by kind",
            m.stanzas_in.clone(),
        );
        registry.register(
            "stanzas_out",
            "XMPP stanzas written to clients by kind",
            m.stanzas_out.clone(),
        );
        registry.register(
            "sip_requests_in",
            "SIP requests received by method",
            m.sip_in.clone(),
        );
        registry.register(
            "sip_requests_out",
            "SIP requests sent by method",
            m.sip_out.clone(),
        );
        registry.register(
            "deliveries",
            "Stanzas the engine handed to sessions",
            m.deliveries.clone(),
        );
        registry.register(
            "offline_messages",
            "Messages held for users who are offline",
            m.offline_held.clone(),
        );
        registry.register(
            "store_commit_seconds",
            "Time to make one group of writes durable",
            m.commit_seconds.clone(),
        );
        registry.register(
            "engine_step_seconds",
            "Time an engine took for one batch of inputs: handling, commit and letting out what it emitted",
            m.step_seconds.clone(),
        );
        registry.register(
            "engine_queue_depth",
            "Work items waiting for the engine",
            m.engine_queue.clone(),
        );
        registry.register(
            "connections_rejected",
            "Connections refused at a cap, by which cap",
            m.rejected.clone(),
        );
        registry.register(
            "rate_limited",
            "Times a peer went over its inbound rate, by protocol",
            m.rate_limited.clone(),
        );
        registry.register(
            "slow_consumers",
            "Sessions ended because their outbound queue passed its bound",
            m.slow_consumers.clone(),
        );
        registry.register(
            "engine_busy",
            "Work refused because the engine's input queue was full",
            m.engine_busy.clone(),
        );
        registry.register(
            "store_failures",
            "Store operations that failed, by operation",
            m.store_failures.clone(),
        );
        registry.register(
            "compliance_records",
            "Compliance archive records written",
            m.compliance_written.clone(),
        );
        registry.register(
            "compliance_failures",
            "Compliance archive records not written, by reason (a failed write, or the best-effort queue full)",
            m.compliance_failures.clone(),
        );
        let by_protocol = |f: &Family<Labels, Gauge>| {
            [Protocol::Xmpp, Protocol::Sip]
                .map(|p| f.get_or_create(&[("protocol", p.label())]).clone())
        };
        let by_kind = |f: &Family<Labels, Counter>| {
            [StanzaKind::Message, StanzaKind::Presence, StanzaKind::Iq]
                .map(|k| f.get_or_create(&[("kind", k.label())]).clone())
        };
        // Every series of a fixed label set exists from the start, so a dashboard sees 0 rather than nothing.
        for why in [
            Rejection::Total,
            Rejection::PerAddress,
            Rejection::Unauthenticated,
        ] {
            let _ = m.rejected.get_or_create(&[("reason", why.label())]);
        }
        for p in [Protocol::Xmpp, Protocol::Sip] {
            let _ = m.rate_limited.get_or_create(&[("protocol", p.label())]);
        }
        for op in ["load", "commit"] {
            let _ = m.store_failures.get_or_create(&[("operation", op)]);
        }
        for why in ["write", "queue_full"] {
            let _ = m.compliance_failures.get_or_create(&[("reason", why)]);
        }
        Metrics {
            registry,
            sessions_by: by_protocol(&m.sessions),
            stanzas_in_by: by_kind(&m.stanzas_in),
            stanzas_out_by: by_kind(&m.stanzas_out),
            ..m
        }
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// A session of `protocol` was bound.
    pub fn session_opened(&self, protocol: Protocol) {
        self.sessions_by[protocol as usize].inc();
    }

    /// A session of `protocol` ended.
    pub fn session_closed(&self, protocol: Protocol) {
        self.sessions_by[protocol as usize].dec();
    }

    /// A stanza arrived from a client.
    pub fn stanza_in(&self, kind: StanzaKind) {
        self.stanzas_in_by[kind as usize].inc();
    }

    /// A stanza went out to a client.
    pub fn stanza_out(&self, kind: StanzaKind) {
        self.stanzas_out_by[kind as usize].inc();
    }

    /// A SIP request arrived.
    pub fn sip_request_in(&self, method: &str) {
        self.sip_in
            .get_or_create(&[("method", sip_method_label(method))])
            .inc();
    }

    /// A SIP request was sent.
    pub fn sip_request_out(&self, method: &str) {
        self.sip_out
            .get_or_create(&[("method", sip_method_label(method))])
            .inc();
    }

    /// A connection was refused at a cap.
    pub fn rejected(&self, why: Rejection) {
        self.rejected
            .get_or_create(&[("reason", why.label())])
            .inc();
    }

    /// A peer went over its inbound rate.
    pub fn rate_limited(&self, protocol: Protocol) {
        self.rate_limited
            .get_or_create(&[("protocol", protocol.label())])
            .inc();
    }

    /// Work was refused because the engine was busy.
    pub fn engine_busy(&self) {
        self.engine_busy.inc();
    }

    pub(crate) fn slow_consumer(&self) {
        self.slow_consumers.inc();
    }

    pub(crate) fn compliance_written(&self, records: usize) {
        self.compliance_written.inc_by(records as u64);
    }

    /// `records` compliance records were not written, because the write failed (`"write"`) or the best-effort
    /// writer's queue was full (`"queue_full"`).
    pub(crate) fn compliance_failed(&self, reason: &'static str, records: usize) {
        self.compliance_failures
            .get_or_create(&[("reason", reason)])
            .inc_by(records as u64);
    }

    pub(crate) fn store_failed(&self, operation: &'static str) {
        self.store_failures
            .get_or_create(&[("operation", operation)])
            .inc();
    }
}

/// The operations `store_failed` is called with, summed by [`Metrics::store_failures_total`].
const STORE_OPERATIONS: [&str; 3] = ["load", "commit", "rooms"];

/// Point-in-time readings of the same series `encode` writes, for the status page and `presenced status`.
impl Metrics {
    /// Bound sessions of `protocol` now.
    pub fn sessions(&self, protocol: Protocol) -> i64 {
        self.sessions_by[protocol as usize].get()
    }

    /// Messages received so far: XMPP `<message/>` stanzas plus SIP MESSAGE requests.
    pub fn messages_in(&self) -> u64 {
        self.stanzas_in_by[StanzaKind::Message as usize].get()
            + self.sip_in.get_or_create(&[("method", "MESSAGE")]).get()
    }

    /// Store operations that failed so far, every operation together.
    pub fn store_failures_total(&self) -> u64 {
        STORE_OPERATIONS
            .iter()
            .map(|op| {
                self.store_failures
                    .get_or_create(&[("operation", op)])
                    .get()
            })
            .sum()
    }

    /// Messages held offline now.
    pub fn offline_messages(&self) -> i64 {
        self.offline_held.get()
    }

    /// Work items waiting for the engine now.
    pub fn engine_queue_depth(&self) -> i64 {
        self.engine_queue.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_up_with_their_labels() {
        let m = Metrics::new();
        m.stanza_in(StanzaKind::Message);
        m.stanza_in(StanzaKind::Message);
        m.sip_request_in("publish");
        m.sip_request_in("FROB");
        m.session_opened(Protocol::Sip);
        m.session_opened(Protocol::Xmpp);
        m.session_closed(Protocol::Xmpp);
        m.stanza_out(StanzaKind::Iq);
        let text = m.encode();
        assert!(
            text.contains("presenced_sessions{protocol=\"xmpp\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("presenced_stanzas_out_total{kind=\"iq\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("presenced_stanzas_in_total{kind=\"message\"} 2"),
            "{text}"
        );
        assert!(text.contains("presenced_sip_requests_in_total{method=\"PUBLISH\"} 1"));
        assert!(text.contains("presenced_sip_requests_in_total{method=\"other\"} 1"));
        assert!(text.contains("presenced_sessions{protocol=\"sip\"} 1"));
        assert!(text.contains("presenced_store_commit_seconds_bucket"));
        assert!(text.contains("presenced_connections_rejected_total{reason=\"per_ip\"} 0"));
        assert!(text.contains("presenced_store_failures_total{operation=\"load\"} 0"));
    }

    #[test]
    fn readings_follow_the_counters() {
        let m = Metrics::new();
        m.session_opened(Protocol::Xmpp);
        m.session_opened(Protocol::Xmpp);
        m.session_opened(Protocol::Sip);
        m.stanza_in(StanzaKind::Message);
        m.stanza_in(StanzaKind::Presence);
        m.sip_request_in("message");
        m.sip_request_in("PUBLISH");
        m.store_failed("commit");
        m.store_failed("load");
        assert_eq!(m.sessions(Protocol::Xmpp), 2);
        assert_eq!(m.sessions(Protocol::Sip), 1);
        assert_eq!(m.messages_in(), 2);
        assert_eq!(m.store_failures_total(), 2);
    }
}
