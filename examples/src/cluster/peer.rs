//! What the two failover managers of a pair say to each other over NATS, as short text frames.
//!
//! `status <from> <to> <epoch> <holds_peer_users> <hosts_all_own_users> <state>|<reason>`, `goodbye <from>`,
//! `recover <from>`; node ids are numbers, states and reasons their display names.

use presence_core::cluster::NodeId;
use presence_core::failover::{PeerMessage, Status};

use super::model::{reason_from_str, state_from_str};

/// The subject node `name` of `group` hears its peer on.
pub fn subject(group: &str, name: &str) -> String {
    format!("presenced.failover.{group}.{name}")
}

/// Writes a message for the peer.
pub fn encode(m: &PeerMessage) -> String {
    match m {
        PeerMessage::Status(s) => format!(
            "status {} {} {} {} {} {}|{}",
            s.from.0,
            s.to.0,
            s.epoch,
            u8::from(s.holds_peer_users),
            u8::from(s.hosts_all_own_users),
            s.state,
            s.reason
        ),
        PeerMessage::Goodbye { from } => format!("goodbye {}", from.0),
        PeerMessage::Recover { from } => format!("recover {}", from.0),
    }
}

/// Reads a message from the peer; `None` for anything malformed.
pub fn decode(text: &[u8]) -> Option<PeerMessage> {
    let text = std::str::from_utf8(text).ok()?;
    let (kind, rest) = text.split_once(' ')?;
    let node = |s: &str| s.parse::<u16>().ok().map(NodeId);
    match kind {
        "goodbye" => Some(PeerMessage::Goodbye { from: node(rest)? }),
        "recover" => Some(PeerMessage::Recover { from: node(rest)? }),
        "status" => {
            let mut f = rest.splitn(6, ' ');
            let from = node(f.next()?)?;
            let to = node(f.next()?)?;
            let epoch = f.next()?.parse().ok()?;
            let holds = f.next()? == "1";
            let hosts = f.next()? == "1";
            let (state, reason) = f.next()?.split_once('|')?;
            Some(PeerMessage::Status(Status {
                from,
                to,
                epoch,
                state: state_from_str(state)?,
                reason: reason_from_str(reason)?,
                holds_peer_users: holds,
                hosts_all_own_users: hosts,
            }))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_core::failover::{NodeState, Reason};

    #[test]
    fn frames_read_back_what_they_write() {
        let msgs = [
            PeerMessage::Status(Status {
                from: NodeId(1),
                to: NodeId(2),
                epoch: 7,
                state: NodeState::RunningInBackupMode,
                reason: Reason::PeerDownDuringInitialization,
                holds_peer_users: true,
                hosts_all_own_users: false,
            }),
            PeerMessage::Goodbye { from: NodeId(3) },
            PeerMessage::Recover { from: NodeId(4) },
        ];
        for m in msgs {
            assert_eq!(decode(encode(&m).as_bytes()), Some(m));
        }
        assert_eq!(decode(b"status 1 2 x 0 0 Normal|Normal"), None);
        assert_eq!(decode(b"hello"), None);
    }
}
