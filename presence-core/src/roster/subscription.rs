//! The RFC 6121 subscription state of one roster entry, and its transitions (RFC 6121 Appendix A).
//!
//! RFC 6121 lists nine states ("None", "None + Pending Out", … "Both"). They are exactly the product of two
//! independent directions, each of which is off, pending, or on: whether the user receives the contact's presence
//! (`outbound`, the RFC's "to") and whether the contact receives the user's (`inbound`, "from"). Modelling the pair
//! makes every combination a real state and every Appendix A transition a one-line change to one direction.

/// One direction of a presence subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Link {
    /// No subscription and no request.
    #[default]
    Off,
    /// Requested, not yet approved.
    Pending,
    /// Approved: presence flows this way.
    On,
    /// Not on and not asked for, but approved in advance: the contact's request will be approved without asking
    /// the user (RFC 6121 §3.4). Only ever the inbound direction; for presence it is the same as off.
    PreApproved,
}

/// The subscription state between a user and one contact, from the user's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Subscription {
    /// Does the user get the contact's presence ("to")?
    pub outbound: Link,
    /// Does the contact get the user's presence ("from")?
    pub inbound: Link,
}

/// The four kinds of subscription stanza (RFC 6121 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionAction {
    /// Ask to receive the other party's presence.
    Subscribe,
    /// Approve the other party's request.
    Subscribed,
    /// Stop receiving the other party's presence.
    Unsubscribe,
    /// Deny or cancel the other party's subscription.
    Unsubscribed,
}

/// The `subscription` attribute of a roster item (RFC 6121 §2.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionAttr {
    /// Neither direction is on.
    None,
    /// The user receives the contact's presence.
    To,
    /// The contact receives the user's presence.
    From,
    /// Both directions are on.
    Both,
}

impl SubscriptionAttr {
    /// The attribute value as RFC 6121 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionAttr::None => "none",
            SubscriptionAttr::To => "to",
            SubscriptionAttr::From => "from",
            SubscriptionAttr::Both => "both",
        }
    }
}

impl Subscription {
    /// Neither direction on or pending.
    pub const NONE: Subscription = Subscription {
        outbound: Link::Off,
        inbound: Link::Off,
    };

    /// The roster item's `subscription` attribute.
    pub fn attr(self) -> SubscriptionAttr {
        match (self.outbound == Link::On, self.inbound == Link::On) {
            (false, false) => SubscriptionAttr::None,
            (true, false) => SubscriptionAttr::To,
            (false, true) => SubscriptionAttr::From,
            (true, true) => SubscriptionAttr::Both,
        }
    }

    /// Whether the roster item carries `ask='subscribe'` (an outbound request awaiting approval).
    pub fn ask(self) -> bool {
        self.outbound == Link::Pending
    }

    /// Whether the contact may receive the user's presence ("from" or "both").
    pub fn shares_to_contact(self) -> bool {
        self.inbound == Link::On
    }

    /// Whether the user receives the contact's presence ("to" or "both").
    pub fn receives_from_contact(self) -> bool {
        self.outbound == Link::On
    }

    /// Whether the roster item carries `approved='true'` (the user pre-approved the contact's request).
    pub fn approved(self) -> bool {
        self.inbound == Link::PreApproved
    }

    /// Whether the contact neither receives the user's presence nor has asked for it (pre-approved or not).
    pub fn inbound_off(self) -> bool {
        matches!(self.inbound, Link::Off | Link::PreApproved)
    }

    /// Whether the contact has asked for the user's presence and waits for an answer.
    pub fn pending_in(self) -> bool {
        self.inbound == Link::Pending
    }

    /// The state after the user sends `action` to the contact (RFC 6121 A.2). `None` means no change, in which
    /// case the user's server does not forward a stanza that would change nothing (A.2: "no state change").
    pub fn after_outbound(self, action: SubscriptionAction) -> Option<Subscription> {
        let mut next = self;
        match action {
            SubscriptionAction::Subscribe if self.outbound == Link::Off => {
                next.outbound = Link::Pending
            }
            SubscriptionAction::Unsubscribe if self.outbound != Link::Off => {
                next.outbound = Link::Off
            }
            SubscriptionAction::Subscribed if self.inbound == Link::Pending => {
                next.inbound = Link::On
            }
            // Approving a request not (yet) made is a pre-approval (RFC 6121 §3.4.1).
            SubscriptionAction::Subscribed if self.inbound == Link::Off => {
                next.inbound = Link::PreApproved
            }
            SubscriptionAction::Unsubscribed if self.inbound != Link::Off => {
                next.inbound = Link::Off
            }
            _ => return None,
        }
        Some(next)
    }

    /// The state after the user's server receives `action` from the contact (RFC 6121 A.3). `None` means the
    /// stanza changes nothing and is not delivered to the user's clients.
    pub fn after_inbound(self, action: SubscriptionAction) -> Option<Subscription> {
        let mut next = self;
        match action {
            // A pre-approved request is approved at once (RFC 6121 §3.4.2).
            SubscriptionAction::Subscribe if self.inbound == Link::PreApproved => {
                next.inbound = Link::On
            }
            SubscriptionAction::Subscribe if self.inbound == Link::Off => {
                next.inbound = Link::Pending
            }
            // The contact withdrawing a subscription it never had leaves the user's pre-approval standing.
            SubscriptionAction::Unsubscribe if matches!(self.inbound, Link::Pending | Link::On) => {
                next.inbound = Link::Off
            }
            SubscriptionAction::Subscribed if self.outbound == Link::Pending => {
                next.outbound = Link::On
            }
            SubscriptionAction::Unsubscribed if self.outbound != Link::Off => {
                next.outbound = Link::Off
            }
            _ => return None,
        }
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::Link::*;
    use super::SubscriptionAction::*;
    use super::*;

    const fn s(outbound: Link, inbound: Link) -> Subscription {
        Subscription { outbound, inbound }
    }

    // RFC 6121 Appendix A names, in the order the RFC lists them.
    const NONE: Subscription = s(Off, Off);
    const NONE_OUT: Subscription = s(Pending, Off);
    const NONE_IN: Subscription = s(Off, Pending);
    const NONE_OUT_IN: Subscription = s(Pending, Pending);
    const TO: Subscription = s(On, Off);
    const TO_IN: Subscription = s(On, Pending);
    const FROM: Subscription = s(Off, On);
    const FROM_OUT: Subscription = s(Pending, On);
    const BOTH: Subscription = s(On, On);

    const ALL: [Subscription; 9] = [
        NONE,
        NONE_OUT,
        NONE_IN,
        NONE_OUT_IN,
        TO,
        TO_IN,
        FROM,
        FROM_OUT,
        BOTH,
    ];

    fn check(
        f: fn(Subscription, SubscriptionAction) -> Option<Subscription>,
        a: SubscriptionAction,
        table: &[(Subscription, Option<Subscription>)],
    ) {
        assert_eq!(table.len(), 9);
        for &(from, to) in table {
            assert_eq!(f(from, a), to, "{a:?} from {from:?}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn a21_outbound_subscribe() {
        check(Subscription::after_outbound, Subscribe, &[
            (NONE, Some(NONE_OUT)), (NONE_OUT, None), (NONE_IN, Some(NONE_OUT_IN)), (NONE_OUT_IN, None),
            (TO, None), (TO_IN, None), (FROM, Some(FROM_OUT)), (FROM_OUT, None), (BOTH, None),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn a22_outbound_unsubscribe() {
        check(Subscription::after_outbound, Unsubscribe, &[
            (NONE, None), (NONE_OUT, Some(NONE)), (NONE_IN, None), (NONE_OUT_IN, Some(NONE_IN)),
            (TO, Some(NONE)), (TO_IN, Some(NONE_IN)), (FROM, None), (FROM_OUT, Some(FROM)), (BOTH, Some(FROM)),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn a23_outbound_subscribed() {
        check(Subscription::after_outbound, Subscribed, &[
            (NONE, Some(s(Off, PreApproved))), (NONE_OUT, Some(s(Pending, PreApproved))),
            (NONE_IN, Some(FROM)), (NONE_OUT_IN, Some(FROM_OUT)),
            (TO, Some(s(On, PreApproved))), (TO_IN, Some(BOTH)), (FROM, None), (FROM_OUT, None), (BOTH, None),
        ]);
    }

    #[test]
    fn a_pre_approval_approves_the_next_request_and_only_the_user_cancels_it() {
        let pre = s(Pending, PreApproved);
        assert!(pre.approved() && pre.inbound_off() && !pre.shares_to_contact());
        assert_eq!(pre.attr(), SubscriptionAttr::None);
        assert_eq!(pre.after_inbound(Subscribe), Some(s(Pending, On)));
        assert_eq!(pre.after_inbound(Unsubscribe), None);
        assert_eq!(pre.after_outbound(Subscribed), None);
        assert_eq!(pre.after_outbound(Unsubscribed), Some(NONE_OUT));
    }

    #[test]
    #[rustfmt::skip]
    fn a24_outbound_unsubscribed() {
        check(Subscription::after_outbound, Unsubscribed, &[
            (NONE, None), (NONE_OUT, None), (NONE_IN, Some(NONE)), (NONE_OUT_IN, Some(NONE_OUT)),
            (TO, None), (TO_IN, Some(TO)), (FROM, Some(NONE)), (FROM_OUT, Some(NONE_OUT)), (BOTH, Some(TO)),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn a31_inbound_subscribe() {
        check(Subscription::after_inbound, Subscribe, &[
            (NONE, Some(NONE_IN)), (NONE_OUT, Some(NONE_OUT_IN)), (NONE_IN, None), (NONE_OUT_IN, None),
            (TO, Some(TO_IN)), (TO_IN, None), (FROM, None), (FROM_OUT, None), (BOTH, None),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn a32_inbound_unsubscribe() {
        check(Subscription::after_inbound, Unsubscribe, &[
            (NONE, None), (NONE_OUT, None), (NONE_IN, Some(NONE)), (NONE_OUT_IN, Some(NONE_OUT)),
            (TO, None), (TO_IN, Some(TO)), (FROM, Some(NONE)), (FROM_OUT, Some(NONE_OUT)), (BOTH, Some(TO)),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn a33_inbound_subscribed() {
        check(Subscription::after_inbound, Subscribed, &[
            (NONE, None), (NONE_OUT, Some(TO)), (NONE_IN, None), (NONE_OUT_IN, Some(TO_IN)),
            (TO, None), (TO_IN, None), (FROM, None), (FROM_OUT, Some(BOTH)), (BOTH, None),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn a34_inbound_unsubscribed() {
        check(Subscription::after_inbound, Unsubscribed, &[
            (NONE, None), (NONE_OUT, Some(NONE)), (NONE_IN, None), (NONE_OUT_IN, Some(NONE_IN)),
            (TO, Some(NONE)), (TO_IN, Some(NONE_IN)), (FROM, None), (FROM_OUT, Some(FROM)), (BOTH, Some(FROM)),
        ]);
    }

    #[test]
    #[rustfmt::skip]
    fn attributes_and_ask() {
        let attrs: Vec<_> = ALL.iter().map(|s| (s.attr().as_str(), s.ask())).collect();
        assert_eq!(attrs, [
            ("none", false), ("none", true), ("none", false), ("none", true),
            ("to", false), ("to", false), ("from", false), ("from", true), ("both", false),
        ]);
    }
}
