//! XEP-0398: an avatar published in PEP shows as the vCard's PHOTO, a vCard's PHOTO is published in PEP, the
//! account's avatar hash replaces the clients' in presence and a change re-announces it, and what the server
//! knows survives eviction.
mod common;

use common::*;
use presence_core::compose::{EndpointPresence, Show};
use presence_core::feature::avatar::{
    AvatarHash, DATA_NODE, Image, METADATA_NODE, Metadata, MimeType, PhotoUpdate,
};
use presence_core::feature::pep::{self, Change, Options};
use presence_core::feature::vcard::{self, CardPhoto, SetPhoto};
use presence_core::feature::{Answer, Call};
use presence_core::stanza::{ErrorCondition, PresenceKind, Stanza};
use presence_core::store::DocumentStore;
use presence_core::{EngineConfig, Input, SessionId};

fn image(bytes: &[u8]) -> Image {
    Image::new(MimeType::parse("image/png").expect("valid"), bytes.to_vec())
}

fn data_payload(bytes: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    format!("<data xmlns='urn:xmpp:avatar:data'>{b64}</data>")
}

/// Everything `session` gets for one request.
fn ask(h: &mut Harness, session: SessionId, id: &str, call: Call) -> Vec<Stanza> {
    h.take(session);
    h.input(Input::Request {
        session,
        request: req(id),
        call,
    });
    h.take(session)
}

fn answer_of(stanzas: &[Stanza]) -> &Stanza {
    stanzas
        .iter()
        .find(|s| matches!(s, Stanza::Answer { .. } | Stanza::Error(_)))
        .expect("an answer")
}

/// A client publishing one item of one of the avatar nodes.
fn publish(node: &str, id: &str, payload: &str, avatar: Option<Metadata>) -> Call {
    Call::Pep(pep::Call::Publish {
        node: node.into(),
        item: Some(id.into()),
        payload: payload.into(),
        options: Options::default(),
        avatar,
    })
}

/// A client publishing an avatar the XEP-0084 way: data, then metadata.
fn publish_avatar(h: &mut Harness, session: SessionId, bytes: &[u8]) -> AvatarHash {
    let info = image(bytes).info();
    let id = info.hash.as_str().to_owned();
    ask(
        h,
        session,
        "data",
        publish(DATA_NODE, &id, &data_payload(bytes), None),
    );
    let meta = format!(
        "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='{id}' bytes='{}' type='image/png'/></metadata>",
        bytes.len()
    );
    let hash = info.hash.clone();
    let got = ask(
        h,
        session,
        "meta",
        publish(METADATA_NODE, &id, &meta, Some(Metadata::Avatar(info))),
    );
    assert!(
        matches!(answer_of(&got), Stanza::Answer { .. }),
        "published: {got:?}"
    );
    hash
}

fn card_of(h: &mut Harness, asker: SessionId, of: &str) -> vcard::Answer {
    let got = ask(
        h,
        asker,
        "card",
        Call::VCard(vcard::Call::Get { of: Some(j(of)) }),
    );
    match answer_of(&got) {
        Stanza::Answer {
            answer: Answer::VCard(v),
            ..
        } => v.clone(),
        other => panic!("not a card: {other:?}"),
    }
}

fn set_card(h: &mut Harness, session: SessionId, photo: SetPhoto) -> Vec<Stanza> {
    let xml = "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>".to_owned();
    ask(
        h,
        session,
        "set",
        Call::VCard(vcard::Call::Set { xml, photo }),
    )
}

/// The avatar in the last available presence from `from` among `stanzas`, if there is one.
fn avatar_seen(stanzas: &[Stanza], from: &str) -> Option<Option<PhotoUpdate>> {
    presences(stanzas)
        .into_iter()
        .rev()
        .find_map(|(f, k)| match k {
            PresenceKind::Available(v) if f == from => Some(v.avatar.clone()),
            _ => None,
        })
}

fn items_of(h: &mut Harness, asker: SessionId, owner: &str, node: &str) -> Vec<pep::Item> {
    let got = ask(
        h,
        asker,
        "items",
        Call::Pep(pep::Call::Items {
            owner: Some(j(owner)),
            node: node.into(),
            ids: Vec::new(),
            max: None,
        }),
    );
    match answer_of(&got) {
        Stanza::Answer {
            answer: Answer::Pep(pep::Answer::Items { items, .. }),
            ..
        } => items.clone(),
        other => panic!("not items: {other:?}"),
    }
}

#[test]
fn a_pep_avatar_becomes_the_vcard_photo_and_the_presence_hash() {
    let (mut h, a, b) = Harness::alice_watched_by_bob();
    let hash = publish_avatar(&mut h, a, b"picture");
    // Bob hears Alice's presence again, now with the hash, without her sending any.
    assert_eq!(
        avatar_seen(&h.take(b), "alice@x/pc"),
        Some(Some(PhotoUpdate::Hash(hash.clone())))
    );

    let card = card_of(&mut h, b, "alice@x");
    assert_eq!(
        card.photo,
        CardPhoto::Image {
            mime: MimeType::parse("image/png").expect("valid"),
            data: data_payload(b"picture"),
        }
    );
    // And whatever her client says from now on, the hash is the server's.
    h.input(Input::Presence {
        session: a,
        to: None,
        presence: Some(EndpointPresence {
            show: Show::Away,
            avatar: Some(PhotoUpdate::Hash(AvatarHash::of(b"stale"))),
            ..EndpointPresence::default()
        }),
    });
    assert_eq!(
        avatar_seen(&h.take(b), "alice@x/pc"),
        Some(Some(PhotoUpdate::Hash(hash)))
    );

    // Empty metadata: no avatar, in the card and in presence.
    ask(
        &mut h,
        a,
        "off",
        publish(
            METADATA_NODE,
            "off",
            "<metadata xmlns='urn:xmpp:avatar:metadata'/>",
            Some(Metadata::Disabled),
        ),
    );
    assert_eq!(
        avatar_seen(&h.take(b), "alice@x/pc"),
        Some(Some(PhotoUpdate::NoPhoto))
    );
    assert_eq!(card_of(&mut h, b, "alice@x").photo, CardPhoto::Without);
}

#[test]
fn metadata_without_its_image_in_the_data_node_is_not_converted() {
    let (mut h, a, b) = Harness::alice_watched_by_bob();
    let info = image(b"elsewhere").info();
    let id = info.hash.as_str().to_owned();
    ask(
        &mut h,
        a,
        "meta",
        publish(
            METADATA_NODE,
            &id,
            "<metadata xmlns='urn:xmpp:avatar:metadata'/>",
            Some(Metadata::Avatar(info)),
        ),
    );
    assert_eq!(
        avatar_seen(&h.take(b), "alice@x/pc"),
        None,
        "nothing changed"
    );
    assert_eq!(card_of(&mut h, b, "alice@x").photo, CardPhoto::AsStored);
    // The client's own hash passes while the server knows no avatar.
    let own = PhotoUpdate::Hash(AvatarHash::of(b"own"));
    h.input(Input::Presence {
        session: a,
        to: None,
        presence: Some(EndpointPresence {
            avatar: Some(own.clone()),
            ..EndpointPresence::default()
        }),
    });
    assert_eq!(avatar_seen(&h.take(b), "alice@x/pc"), Some(Some(own)));
}

#[test]
fn a_vcard_photo_is_published_in_pep_once() {
    let mut h = Harness::with_users(
        EngineConfig::for_domain("x"),
        &["alice@x", "bob@x", "carol@x"],
    );
    let a = h.login("alice@x", "pc");
    let b = h.login("bob@x", "phone");
    h.subscribe(
        b,
        "alice@x",
        presence_core::roster::SubscriptionAction::Subscribe,
    );
    let c = h.login("carol@x", "pc");
    h.clear();

    let img = image(b"from a vcard");
    let hash = img.hash().clone();
    let got = set_card(&mut h, a, SetPhoto::Image(img));
    assert!(
        matches!(
            answer_of(&got),
            Stanza::Answer {
                answer: Answer::Done,
                ..
            }
        ),
        "{got:?}"
    );
    // Alice's sessions are notified of both items, data first, as if she had published them.
    let nodes: Vec<String> = pep_events(&got).into_iter().map(|e| e.node).collect();
    assert_eq!(nodes, [DATA_NODE, METADATA_NODE]);

    // Carol is no contact of Alice's: the nodes the server made are open.
    let data = items_of(&mut h, c, "alice@x", DATA_NODE);
    assert_eq!(data.len(), 1);
    assert_eq!(data[0].id, hash.as_str());
    assert_eq!(data[0].payload, data_payload(b"from a vcard"));
    let meta = items_of(&mut h, c, "alice@x", METADATA_NODE);
    assert_eq!(meta[0].id, hash.as_str());
    assert_eq!(
        meta[0].payload,
        format!(
            "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='{}' bytes='12' type='image/png'/></metadata>",
            hash.as_str()
        )
    );
    // The card keeps the rest; its photo comes from the data node.
    let card = card_of(&mut h, c, "alice@x");
    assert_eq!(
        card.xml.as_deref(),
        Some("<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>")
    );
    assert!(matches!(card.photo, CardPhoto::Image { .. }));
    assert_eq!(
        avatar_seen(&h.take(b), "alice@x/pc"),
        Some(Some(PhotoUpdate::Hash(hash)))
    );

    // The same card again (a client changing the nickname): nobody hears of the picture again.
    let got = set_card(&mut h, a, SetPhoto::Image(image(b"from a vcard")));
    assert!(pep_events(&got).is_empty(), "{got:?}");
    assert_eq!(avatar_seen(&h.take(b), "alice@x/pc"), None);

    // A card without a photo: empty metadata, and no hash in presence.
    let got = set_card(&mut h, a, SetPhoto::None);
    let events = pep_events(&got);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].node, METADATA_NODE);
    assert!(
        matches!(&events[0].change, Change::Items(i) if i[0].payload == "<metadata xmlns='urn:xmpp:avatar:metadata'/>")
    );
    assert_eq!(card_of(&mut h, c, "alice@x").photo, CardPhoto::Without);
    assert_eq!(
        avatar_seen(&h.take(b), "alice@x/pc"),
        Some(Some(PhotoUpdate::NoPhoto))
    );
}

#[test]
fn a_photo_that_cannot_be_converted_leaves_the_card_as_set() {
    let (mut h, a, b) = Harness::alice_watched_by_bob();
    publish_avatar(&mut h, a, b"picture");
    set_card(&mut h, a, SetPhoto::Kept);
    assert_eq!(card_of(&mut h, b, "alice@x").photo, CardPhoto::AsStored);
}

#[test]
fn a_photo_too_big_to_keep_is_refused_before_anything_is_kept() {
    let mut config = EngineConfig::for_domain("x");
    config.limits.max_document_bytes = 100;
    let mut h = Harness::with_users(config, &["alice@x"]);
    let a = h.login("alice@x", "pc");
    let got = set_card(&mut h, a, SetPhoto::Image(image(&[7; 100])));
    match answer_of(&got) {
        Stanza::Error(e) => assert_eq!(e.condition, ErrorCondition::NotAcceptable),
        other => panic!("not refused: {other:?}"),
    }
    assert!(h.store.documents(&j("alice@x")).expect("read").is_empty());
}

#[test]
fn the_known_avatar_survives_eviction_and_does_not_count_as_a_document() {
    let mut config = EngineConfig::for_domain("x");
    config.limits.max_documents_per_user = 5;
    let mut h = Harness::with_users(config, &["alice@x", "bob@x"]);
    let a = h.login("alice@x", "pc");
    let hash = publish_avatar(&mut h, a, b"kept");
    h.logout(a);
    let stored: Vec<String> = h
        .store
        .documents(&j("alice@x"))
        .expect("read")
        .into_iter()
        .map(|(k, _)| k.to_string())
        .collect();
    assert!(stored.contains(&"avatar".to_owned()), "{stored:?}");

    let a = h.login("alice@x", "laptop");
    assert_eq!(
        avatar_seen(&h.take(a), "alice@x/laptop"),
        Some(Some(PhotoUpdate::Hash(hash)))
    );
    // Two nodes, two items and the card: five documents, the avatar record not among them.
    let got = set_card(&mut h, a, SetPhoto::Image(image(b"kept")));
    assert!(
        matches!(
            answer_of(&got),
            Stanza::Answer {
                answer: Answer::Done,
                ..
            }
        ),
        "{got:?}"
    );
}

#[test]
fn deleting_the_metadata_node_removes_the_avatar() {
    let (mut h, a, b) = Harness::alice_watched_by_bob();
    publish_avatar(&mut h, a, b"picture");
    h.take(b);
    ask(
        &mut h,
        a,
        "delete",
        Call::Pep(pep::Call::Delete {
            node: METADATA_NODE.into(),
        }),
    );
    assert_eq!(
        avatar_seen(&h.take(b), "alice@x/pc"),
        Some(Some(PhotoUpdate::NoPhoto))
    );
    assert_eq!(card_of(&mut h, b, "alice@x").photo, CardPhoto::Without);
}
