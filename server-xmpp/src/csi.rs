//! XEP-0352 Client State Indication: while a client says it is `<inactive/>`, presence for it waits here,
//! collapsed to the latest per sender, and goes out when it says `<active/>` again.
//!
//! Decisions:
//! - Only presence (available or unavailable) waits; subscription requests, messages, IQs and everything else go
//!   out at once.
//! - A message first releases the presence waiting before it: the client's radio is up for the message anyway,
//!   and a contact's "online" then still arrives before what that contact wrote. IQs (server pings, roster
//!   pushes) do not, or every XEP-0199 ping would defeat the point.
//! - The wait is bounded (`csi_max_queued` senders). A presence from one more sender at the bound releases
//!   everything waiting, itself included: the client gets one burst rather than a wrong picture.

use presence_core::stanza::{PresenceKind, Stanza as CoreStanza};

/// One connection's client state and what waits for it.
#[derive(Debug)]
pub struct Csi {
    inactive: bool,
    /// Waiting presence, oldest change first, at most one per sender.
    held: Vec<CoreStanza>,
    max: usize,
}

impl Csi {
    /// An active client; at most `max` senders' presence waits while it is inactive.
    pub fn new(max: usize) -> Self {
        Csi {
            inactive: false,
            held: Vec::new(),
            max: max.max(1),
        }
    }

    /// Whether the client said it is inactive.
    pub fn is_inactive(&self) -> bool {
        self.inactive
    }

    /// The client is inactive from now on.
    pub fn inactive(&mut self) {
        self.inactive = true;
    }

    /// The client is active again: everything held, to write now.
    pub fn active(&mut self) -> Vec<CoreStanza> {
        self.inactive = false;
        std::mem::take(&mut self.held)
    }

    /// Takes everything held (the connection is going away; the caller keeps it for a resumed stream).
    pub fn take(&mut self) -> Vec<CoreStanza> {
        std::mem::take(&mut self.held)
    }

    /// A delivery for the client: what to write now, in order (empty when it waits).
    pub fn deliver(&mut self, stanza: CoreStanza) -> Vec<CoreStanza> {
        if !self.inactive {
            return vec![stanza];
        }
        match &stanza {
            CoreStanza::Presence {
                from,
                kind: PresenceKind::Available(_) | PresenceKind::Unavailable,
                ..
            } => {
                let from = from.clone();
                // The newest presence replaces the sender's older one and moves to the back, as its latest change.
                let had = self.held.len();
                self.held
                    .retain(|s| !matches!(s, CoreStanza::Presence { from: f, .. } if *f == from));
                if self.held.len() == had && had >= self.max {
                    let mut all = std::mem::take(&mut self.held);
                    all.push(stanza);
                    return all;
                }
                self.held.push(stanza);
                Vec::new()
            }
            CoreStanza::Message { .. } => {
                let mut all = std::mem::take(&mut self.held);
                all.push(stanza);
                all
            }
            _ => vec![stanza],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_core::Jid;
    use presence_core::compose::{PresenceState, Show};
    use presence_core::message::Message;
    use presence_core::stanza::PresenceView;

    fn presence(from: &str, show: Option<Show>) -> CoreStanza {
        CoreStanza::Presence {
            from: Jid::new(from).expect("jid"),
            to: Jid::new("me@x/phone").expect("jid"),
            kind: match show {
                Some(show) => PresenceKind::Available(
                    PresenceView {
                        show,
                        status: None,
                        priority: 0,
                        composed: PresenceState::Available,
                        extensions: Default::default(),
                        avatar: None,
                    }
                    .into(),
                ),
                None => PresenceKind::Unavailable,
            },
        }
    }

    fn message() -> CoreStanza {
        CoreStanza::Message {
            from: Jid::new("bob@x/pc").expect("jid"),
            to: Jid::new("me@x/phone").expect("jid"),
            message: Message::default(),
            delayed: None,
        }
    }

    #[test]
    fn an_active_client_gets_everything_at_once() {
        let mut csi = Csi::new(10);
        let p = presence("bob@x/pc", Some(Show::Away));
        assert_eq!(csi.deliver(p.clone()), [p]);
    }

    #[test]
    fn inactive_presence_collapses_to_the_latest_per_full_jid_in_order_of_the_last_change() {
        let mut csi = Csi::new(10);
        csi.inactive();
        assert!(
            csi.deliver(presence("bob@x/pc", Some(Show::Away)))
                .is_empty()
        );
        assert!(
            csi.deliver(presence("carol@x/a", Some(Show::Dnd)))
                .is_empty()
        );
        assert!(
            csi.deliver(presence("bob@x/phone", Some(Show::Chat)))
                .is_empty()
        );
        assert!(csi.deliver(presence("bob@x/pc", None)).is_empty());
        assert_eq!(
            csi.active(),
            [
                presence("carol@x/a", Some(Show::Dnd)),
                presence("bob@x/phone", Some(Show::Chat)),
                presence("bob@x/pc", None),
            ]
        );
        assert!(!csi.is_inactive());
        assert!(csi.active().is_empty(), "released once");
    }

    #[test]
    fn a_message_goes_at_once_after_the_presence_waiting_before_it() {
        let mut csi = Csi::new(10);
        csi.inactive();
        let _ = csi.deliver(presence("bob@x/pc", Some(Show::Away)));
        assert_eq!(
            csi.deliver(message()),
            [presence("bob@x/pc", Some(Show::Away)), message()]
        );
        assert!(csi.is_inactive(), "still inactive");
        assert!(csi.active().is_empty());
    }

    #[test]
    fn other_stanzas_pass_without_releasing_presence() {
        let mut csi = Csi::new(10);
        csi.inactive();
        let _ = csi.deliver(presence("bob@x/pc", Some(Show::Away)));
        let probe = CoreStanza::Presence {
            from: Jid::new("bob@x/pc").expect("jid"),
            to: Jid::new("me@x/phone").expect("jid"),
            kind: PresenceKind::Probe,
        };
        assert_eq!(csi.deliver(probe.clone()), [probe]);
        assert_eq!(csi.active().len(), 1);
    }

    #[test]
    fn at_the_bound_a_new_sender_releases_everything() {
        let mut csi = Csi::new(2);
        csi.inactive();
        let _ = csi.deliver(presence("a@x/1", Some(Show::Away)));
        let _ = csi.deliver(presence("b@x/1", Some(Show::Away)));
        // A sender already held only replaces its entry.
        assert!(csi.deliver(presence("a@x/1", Some(Show::Dnd))).is_empty());
        let burst = csi.deliver(presence("c@x/1", Some(Show::Xa)));
        assert_eq!(burst.len(), 3);
        assert!(csi.is_inactive());
        assert!(csi.active().is_empty());
    }
}
