//! The mapping between PIDF/RPID documents and the engine's presence model (DESIGN §2, RFC 3863, RFC 4480).
//!
//! Inbound, a published document becomes one endpoint's presence: `<basic>closed</basic>` everywhere means the
//! endpoint is unavailable; RPID activities keep their meaning (on-the-phone and meeting colour the whole user,
//! busy and away colour this endpoint). Outbound, a watcher gets the composed presence: basic open/closed plus
//! the activity that explains it and the status text as `<note>`. Every state in which the user is online keeps
//! `open` (DESIGN §2 maps both Busy and DND to the basic state "Busy", not offline): do-not-disturb is `open` +
//! `busy`, since SIP clients render `closed` as offline, and only unavailable is `closed`.

use presence_core::compose::{
    Activities, Activity, Composed, EndpointPresence, PresenceState, Show,
};
use sip_codec::pidf::{self, Basic, Person, Presence, Tuple};

/// The endpoint presence a published document describes, or `None` when it says the endpoint is closed.
pub fn endpoint_from_pidf(doc: &Presence, priority: i8) -> Option<EndpointPresence> {
    if !doc.is_open() {
        return None;
    }
    let activities: Activities = doc
        .person
        .iter()
        .flat_map(|p| p.activities.iter())
        .filter_map(|a| match a {
            pidf::Activity::OnThePhone => Some(Activity::OnThePhone),
            pidf::Activity::Meeting
            | pidf::Activity::Appointment
            | pidf::Activity::Presentation => Some(Activity::Meeting),
            pidf::Activity::Busy => Some(Activity::Busy),
            pidf::Activity::Away => Some(Activity::Away),
            pidf::Activity::Vacation | pidf::Activity::Holiday => Some(Activity::Vacation),
            _ => None,
        })
        .collect();
    // The endpoint's own `<show/>` as an XMPP contact sees it when nothing user-wide overrides it.
    let show = if activities.contains(Activity::Busy) {
        Show::Dnd
    } else if activities.contains(Activity::Vacation) {
        Show::Xa
    } else if activities.contains(Activity::Away) {
        Show::Away
    } else {
        Show::Available
    };
    let status = doc
        .person
        .as_ref()
        .and_then(|p| p.note.clone())
        .or_else(|| doc.notes.first().cloned())
        .or_else(|| doc.tuples.iter().find_map(|t| t.note.clone()));
    Some(EndpointPresence {
        show,
        status,
        priority,
        activities,
        // PIDF extensions are read into the fields above; nothing passes through to XMPP watchers opaquely.
        extensions: Default::default(),
        // Nor does PIDF carry an avatar hash; the account's own, if the server knows one, is added for XMPP.
        avatar: None,
    })
}

/// What a trusted call-control peer's document says about the user's line and calendar (DESIGN §7): an
/// `on-the-phone` activity puts the line in a call; `meeting` books the calendar busy, `vacation` out of office.
pub fn system_from_pidf(doc: &Presence) -> crate::publications::SystemState {
    use presence_core::compose::CalendarState;
    let has = |a: pidf::Activity| doc.person.iter().any(|p| p.activities.contains(&a));
    crate::publications::SystemState {
        on_the_phone: has(pidf::Activity::OnThePhone),
        calendar: if has(pidf::Activity::Vacation) {
            CalendarState::OutOfOffice
        } else if has(pidf::Activity::Meeting) {
            CalendarState::Busy
        } else {
            CalendarState::Free
        },
    }
}

/// The document a watcher of `entity` gets for its composed presence.
pub fn pidf_from_composed(entity: &str, composed: &Composed) -> Presence {
    let (basic, activity) = match composed.state {
        PresenceState::Available => (Basic::Open, None),
        PresenceState::Idle => (Basic::Open, Some(pidf::Activity::Away)),
        PresenceState::Busy => (Basic::Open, Some(pidf::Activity::Busy)),
        PresenceState::OnThePhone => (Basic::Open, Some(pidf::Activity::OnThePhone)),
        PresenceState::InAMeeting => (Basic::Open, Some(pidf::Activity::Meeting)),
        PresenceState::OutOfOffice => (Basic::Open, Some(pidf::Activity::Vacation)),
        PresenceState::Dnd => (Basic::Open, Some(pidf::Activity::Busy)),
        PresenceState::Unavailable => (Basic::Closed, None),
    };
    let mut doc = Presence::new(entity);
    doc.tuples.push(Tuple {
        id: "composed".into(),
        basic: Some(basic),
        ..Tuple::default()
    });
    if let Some(note) = &composed.status {
        doc.notes.push(note.clone());
    }
    if activity.is_some() || composed.status.is_some() {
        doc.person = Some(Person {
            id: Some("person".into()),
            activities: activity.into_iter().collect(),
            note: None,
        });
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(xml: &str) -> Presence {
        Presence::parse(xml.as_bytes()).expect("valid PIDF")
    }

    const ON_THE_PHONE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
  xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">
  <tuple id="t1"><status><basic>open</basic></status></tuple>
  <dm:person id="p1"><rpid:activities><rpid:on-the-phone/></rpid:activities><dm:note>Calling</dm:note></dm:person>
</presence>"#;

    #[test]
    fn on_the_phone_publication_keeps_activity_and_note() {
        let e = endpoint_from_pidf(&doc(ON_THE_PHONE), 0).expect("open");
        assert!(e.activities.contains(Activity::OnThePhone));
        assert_eq!(e.show, Show::Available);
        assert_eq!(e.status.as_deref(), Some("Calling"));
    }

    #[test]
    fn closed_publication_is_unavailable() {
        let closed = ON_THE_PHONE.replace(">open<", ">closed<");
        assert_eq!(endpoint_from_pidf(&doc(&closed), 0), None);
    }

    #[test]
    fn every_composed_state_has_a_basic_and_round_trips_through_xml() {
        for (state, open, activity) in [
            (PresenceState::Available, true, None),
            (PresenceState::Idle, true, Some("away")),
            (PresenceState::Busy, true, Some("busy")),
            (PresenceState::OnThePhone, true, Some("on-the-phone")),
            (PresenceState::InAMeeting, true, Some("meeting")),
            (PresenceState::OutOfOffice, true, Some("vacation")),
            (PresenceState::Dnd, true, Some("busy")),
            (PresenceState::Unavailable, false, None),
        ] {
            let composed = Composed {
                state,
                status: Some("text".into()),
                overriding: false,
            };
            let xml = pidf_from_composed("sip:alice@example.com", &composed).to_xml();
            let back = doc(&xml);
            assert_eq!(back.is_open(), open, "{state:?}: {xml}");
            let acts: Vec<&str> = back
                .person
                .iter()
                .flat_map(|p| p.activities.iter().map(|a| a.element()))
                .collect();
            assert_eq!(
                acts,
                activity.into_iter().collect::<Vec<_>>(),
                "{state:?}: {xml}"
            );
            assert!(xml.contains("text"), "{xml}");
        }
    }
}
