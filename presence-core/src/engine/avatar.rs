//! XEP-0398: one avatar per account, whichever way a client sets it (see `feature::avatar` for what is kept).
//!
//! - **PEP → vCard.** When the user publishes avatar metadata whose image the data node holds, that becomes the
//!   account's avatar; a card read back carries it as its PHOTO. Metadata with no `<info/>`, or deleting the
//!   metadata node, removes it.
//! - **vCard → PEP.** When the user sets a card with a PHOTO, the card is kept without it and the image is
//!   published as the data item (id: its SHA-1) and then the metadata item, notifying as the user's own publish
//!   would. A card without PHOTO publishes empty metadata. Nodes the server creates get the `open` access model:
//!   the vCard the picture came from is readable by anyone here (XEP-0054), so a `presence` node would promise a
//!   privacy the card does not keep; nodes the user made keep their own configuration.
//! - **Presence.** Once the server knows the avatar (or knows there is none), it replaces the hash in every
//!   available presence of the account (XEP-0153's `vcard-temp:x:update`), and a change re-announces the
//!   presence of the sessions that are available, so contacts fetch the new picture.
//!
//! No loop: converting from the vCard publishes through [`Engine::pep_publish_as_owner`], which does not come
//! back here, and converting from PEP only records which avatar the account has, never rewriting the card.

use super::Engine;
use super::user::User;
use crate::feature::Answer;
use crate::feature::avatar::{self, DATA_NODE, Image, Known, METADATA_NODE, Metadata};
use crate::feature::pep::{self, AccessModel, Node, Options};
use crate::feature::vcard::{self, CardPhoto, SetPhoto};
use crate::jid::BareJid;
use crate::session::SessionId;
use crate::stanza::{ErrorCondition, RequestId};
use crate::store::StoreWrite;

/// Why the photo of a card could not be converted: a condition and the text that explains it.
type Refusal = (ErrorCondition, String);

/// The item id of metadata that says there is no avatar (the item replaces the last one; its id names nothing).
const NO_AVATAR_ITEM: &str = "current";

/// The access model of the nodes the server creates for a vCard's photo.
fn created_open() -> Options {
    Options {
        access_model: Some(AccessModel::Open),
        ..Options::default()
    }
}

/// What a PEP request says of the account's avatar: a publish to the metadata node that the shell read, or the
/// metadata node's deletion (no avatar, as empty metadata would say).
pub(super) fn metadata_of(call: &pep::Call) -> Option<Metadata> {
    match call {
        pep::Call::Publish {
            node,
            avatar: Some(metadata),
            ..
        } if node == METADATA_NODE => Some(metadata.clone()),
        pep::Call::Delete { node } if node == METADATA_NODE => Some(Metadata::Disabled),
        _ => None,
    }
}

/// The PHOTO of `user`'s card as read back.
pub(super) fn card_photo(user: &User) -> CardPhoto {
    match user.avatar.as_deref() {
        None => CardPhoto::AsStored,
        Some(Known::NoAvatar) => CardPhoto::Without,
        Some(Known::Avatar(info)) => match data_item(user, &info.hash) {
            Some(data) => CardPhoto::Image {
                mime: info.mime.clone(),
                data: data.clone(),
            },
            // The image was retracted from the data node since: there is nothing to show.
            None => CardPhoto::Without,
        },
    }
}

/// The data node's item holding the image of `hash`.
fn data_item<'u>(user: &'u User, hash: &avatar::AvatarHash) -> Option<&'u String> {
    user.documents
        .get(&pep::item_key(DATA_NODE, hash.as_str())?)
}

impl Engine {
    /// A session sets its user's vCard: the card is kept without its photo, which becomes the avatar.
    pub(super) fn vcard_set(
        &mut self,
        id: SessionId,
        user: &BareJid,
        request: RequestId,
        xml: String,
        photo: SetPhoto,
    ) {
        // The image will be a document of its own: refuse it before anything is kept, like any document too big.
        let max = self.config.limits.max_document_bytes;
        if let SetPhoto::Image(image) = &photo
            && image.data_payload().len() > max
        {
            let text = format!(
                "the photo is {} bytes; at most {max} are kept (base64-encoded)",
                image.data().len()
            );
            return self.request_error(id, user, request, ErrorCondition::NotAcceptable, &text);
        }
        if let Err((condition, text)) = self.store_document(user, vcard::key(), xml) {
            return self.request_error(id, user, request, condition, &text);
        }
        let converted = match photo {
            SetPhoto::Image(image) => self.avatar_from_vcard(user, image),
            SetPhoto::None => self.no_avatar_from_vcard(user),
            SetPhoto::Kept => {
                self.remember_avatar(user, None);
                Ok(())
            }
        };
        match converted {
            Ok(()) => self.answer(id, request, Answer::Done),
            Err((condition, text)) => {
                let text = format!("the vCard is kept, but not its photo: {text}");
                self.request_error(id, user, request, condition, &text)
            }
        }
    }

    /// Publishes a card's photo as the avatar, unless it already is (clients set the whole card again to change
    /// a nickname; that should not notify anyone of a picture they have).
    fn avatar_from_vcard(&mut self, user: &BareJid, image: Image) -> Result<(), Refusal> {
        let info = image.info();
        let current = self.users.get(user).is_some_and(|u| {
            matches!(u.avatar.as_deref(), Some(Known::Avatar(known)) if *known == info)
                && data_item(u, &info.hash).is_some()
        });
        if !current {
            let id = info.hash.as_str().to_owned();
            // Data first, then metadata, as XEP-0084 orders it: whoever hears of the metadata can fetch the data.
            self.pep_publish_as_owner(
                user,
                DATA_NODE,
                id.clone(),
                image.data_payload(),
                created_open(),
            )?;
            self.pep_publish_as_owner(
                user,
                METADATA_NODE,
                id,
                avatar::metadata_payload(Some(&info)),
                created_open(),
            )?;
        }
        self.remember_avatar(user, Some(Known::Avatar(info)));
        Ok(())
    }

    /// A card without a photo: the user has no avatar. Empty metadata tells those who follow the metadata node,
    /// if there was an avatar to take back (one the server knew of, or one published before it converted any).
    fn no_avatar_from_vcard(&mut self, user: &BareJid) -> Result<(), Refusal> {
        let had = self
            .users
            .get(user)
            .is_some_and(|u| match u.avatar.as_deref() {
                Some(Known::Avatar(_)) => true,
                Some(Known::NoAvatar) => false,
                None => pep::node_key(METADATA_NODE)
                    .and_then(|k| u.documents.get(&k))
                    .is_some_and(|d| !Node::from_document(d).items.is_empty()),
            });
        if had {
            self.pep_publish_as_owner(
                user,
                METADATA_NODE,
                NO_AVATAR_ITEM.to_owned(),
                avatar::metadata_payload(None),
                created_open(),
            )?;
        }
        self.remember_avatar(user, Some(Known::NoAvatar));
        Ok(())
    }

    /// The user published avatar metadata: it becomes the account's avatar when the data node holds its image.
    pub(super) fn avatar_from_pep(&mut self, user: &BareJid, metadata: Metadata) {
        let known = match metadata {
            Metadata::Avatar(info) => {
                let held = self
                    .users
                    .get(user)
                    .is_some_and(|u| data_item(u, &info.hash).is_some());
                // An image kept elsewhere (a `url`) or not published (yet) is no avatar the vCard can show; the
                // server stops claiming to know one, and the clients' own hashes pass on.
                held.then_some(Known::Avatar(info))
            }
            Metadata::Disabled => Some(Known::NoAvatar),
        };
        self.remember_avatar(user, known);
    }

    /// Records what the server knows of the avatar and, when that changed, announces it: every available
    /// session's presence goes out again with the new hash.
    fn remember_avatar(&mut self, user: &BareJid, known: Option<Known>) {
        let Some(u) = self.users.get_mut(user) else {
            return;
        };
        if u.avatar.as_deref() == known.as_ref() {
            return;
        }
        u.avatar = known.clone().map(Box::new);
        let write = match known {
            Some(k) => StoreWrite::DocumentPut {
                user: user.clone(),
                key: Known::key(),
                document: k.to_document(),
            },
            None => StoreWrite::DocumentRemove {
                user: user.clone(),
                key: Known::key(),
            },
        };
        self.out(super::Output::Store(write));
        self.refresh_presence(user);
    }
}
