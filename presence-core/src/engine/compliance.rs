//! The engine's side of compliance archiving (see [`crate::compliance`]): every message path calls
//! [`Engine::comply`] once the server has accepted a message, before the outputs that deliver or hold it, so a
//! runtime that must archive before delivering finds the record ahead of what depends on it.

use super::{Engine, Output};
use crate::compliance::Record;
use crate::jid::{BareJid, Jid};
use crate::message::Message;

impl Engine {
    /// Emits the compliance record of a message the server accepted, if compliance archiving is on and the
    /// message is archived ([`crate::compliance::archived`]).
    ///
    /// Call it once per message, before the `Deliver`/`Route` outputs and offline writes of that message (a
    /// record emitted after them would not hold them back in the runtime's `required` mode). `sender` is the real
    /// sender, `recipients` the addresses it goes to, `room` the room for a room message (`None` for 1:1).
    pub(crate) fn comply(
        &mut self,
        sender: &Jid,
        recipients: Vec<Jid>,
        room: Option<&BareJid>,
        message: &Message,
    ) {
        if let Some(record) = self.compliance_record(sender, recipients, room, message) {
            self.out(Output::Comply(record));
        }
    }

    /// The record [`Engine::comply`] would emit, for a path that emits it later (after the offline write whose
    /// success decides whether the message was accepted at all).
    pub(super) fn compliance_record(
        &self,
        sender: &Jid,
        recipients: Vec<Jid>,
        room: Option<&BareJid>,
        message: &Message,
    ) -> Option<Record> {
        if !self.config.compliance {
            return None;
        }
        Record::of(sender, recipients, room, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EngineConfig;
    use crate::message::MessageKind;

    fn jid(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    /// What the room message path gets from the hook: one record naming the room and every occupant reached.
    #[test]
    fn a_room_message_is_one_record_with_the_room_and_its_recipients() {
        let mut engine = Engine::new(EngineConfig {
            compliance: true,
            ..EngineConfig::for_domain("x")
        });
        let room = BareJid::new("team@conference.x").unwrap();
        let message = Message {
            id: Some("g1".into()),
            kind: MessageKind::Groupchat,
            body: Some("standup".into()),
            ..Message::default()
        };
        engine.comply(
            &jid("alice@x/pc"),
            vec![jid("bob@x/phone"), jid("carol@x/desk")],
            Some(&room),
            &message,
        );
        let Some(Output::Comply(record)) = engine.poll_output() else {
            panic!("a record");
        };
        assert_eq!(record.room, Some(room.clone()));
        assert_eq!(record.recipients.len(), 2);
        assert_eq!(record.kind, MessageKind::Groupchat);
        // A subject change carries no body: nothing.
        let subject = Message {
            body: None,
            subject: Some("topic".into()),
            ..message
        };
        engine.comply(&jid("alice@x/pc"), vec![], Some(&room), &subject);
        assert_eq!(engine.poll_output(), None);
    }
}
