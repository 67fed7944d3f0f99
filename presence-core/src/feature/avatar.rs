//! Avatars: the account's one picture, whether a client sets it as a XEP-0084 avatar in PEP or as the PHOTO of
//! its XEP-0054 vCard, converted between the two as XEP-0398 asks, and announced in available presence as the
//! XEP-0153 hash.
//!
//! The split between engine and shell: the shell reads the XML (a vCard's PHOTO, a metadata item's `<info/>`, a
//! presence's `vcard-temp:x:update`) into the typed values here and writes them back out; the engine decides with
//! them and never parses XML. It does write the two PEP payloads of an avatar it converts from a vCard (see
//! [`Image::data_payload`]), because every value in them is of a type that needs no escaping: a hex hash, a
//! number, base64 and a checked MIME type.
//!
//! What the engine keeps of the conversion is one small record per account, [`Known`], under the document key
//! `avatar`: which avatar the account has (or that it has none). The image itself lives once, as the item of the
//! `urn:xmpp:avatar:data` node; the vCard document is kept without its PHOTO, which is filled in from that item
//! when the card is read. So neither direction has to rewrite the other's document, and no conversion can start
//! another.

use base64::Engine as _;
use sha1::Digest as _;

/// The PEP node of avatar images (XEP-0084).
pub const DATA_NODE: &str = "urn:xmpp:avatar:data";
/// The PEP node of avatar metadata (XEP-0084).
pub const METADATA_NODE: &str = "urn:xmpp:avatar:metadata";

/// Why a value read from a client is not an avatar's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvatarError {
    /// Not 40 hex digits.
    #[error("'{0}' is not a SHA-1 hash in hex")]
    Hash(String),
    /// Not `type/subtype` of RFC 6838's restricted names.
    #[error("'{0}' is not a MIME type")]
    Mime(String),
}

/// The SHA-1 of an image as 40 lowercase hex digits: the XEP-0084 item id and the XEP-0153 photo hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AvatarHash(String);

impl AvatarHash {
    /// The hash of `image`.
    pub fn of(image: &[u8]) -> Self {
        use std::fmt::Write as _;
        let digest = sha1::Sha1::digest(image);
        let mut hex = String::with_capacity(2 * digest.len());
        for b in digest.iter() {
            write!(hex, "{b:02x}").expect("writing to a String cannot fail");
        }
        AvatarHash(hex)
    }

    /// A hash a client sent (upper-case digits are taken and lowered, since clients compare them as text).
    pub fn parse(s: &str) -> Result<Self, AvatarError> {
        let s = s.trim();
        if s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(AvatarHash(s.to_ascii_lowercase()))
        } else {
            Err(AvatarError::Hash(s.to_owned()))
        }
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An image's MIME type, `type/subtype` in RFC 6838's restricted-name characters, so it can stand in an XML
/// attribute or a record line unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MimeType(String);

impl MimeType {
    /// A type a client sent.
    pub fn parse(s: &str) -> Result<Self, AvatarError> {
        let s = s.trim();
        let name = |p: &str| {
            (1..=127).contains(&p.len())
                && p.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        };
        match s.split_once('/') {
            Some((t, sub)) if name(t) && name(sub) => Ok(MimeType(s.to_ascii_lowercase())),
            _ => Err(AvatarError::Mime(s.to_owned())),
        }
    }

    /// The type's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which image is the avatar (XEP-0084's `<info/>`): what the metadata node says and what the engine remembers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Info {
    /// The image's hash, also its item id in the data node.
    pub hash: AvatarHash,
    /// Its type.
    pub mime: MimeType,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What a publish to the metadata node says, as the shell read it from the payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Metadata {
    /// This is the avatar (the first `<info/>` whose image the data node can hold: one without a `url`).
    Avatar(Info),
    /// No `<info/>`: the user has no avatar any more (XEP-0084, "disabling").
    Disabled,
}

/// An image a user set as the PHOTO of their vCard. The hash is computed here, so it always matches the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Image {
    mime: MimeType,
    data: Vec<u8>,
    hash: AvatarHash,
}

impl Image {
    /// The image of `data`, of type `mime`.
    pub fn new(mime: MimeType, data: Vec<u8>) -> Self {
        let hash = AvatarHash::of(&data);
        Image { mime, data, hash }
    }

    /// The image's hash.
    pub fn hash(&self) -> &AvatarHash {
        &self.hash
    }

    /// What the metadata node says of it.
    pub fn info(&self) -> Info {
        Info {
            hash: self.hash.clone(),
            mime: self.mime.clone(),
            bytes: self.data.len() as u64,
        }
    }

    /// The image's bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The payload of its item in the data node (XEP-0084).
    pub(crate) fn data_payload(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.data);
        format!("<data xmlns='{DATA_NODE}'>{b64}</data>")
    }
}

/// The payload of a metadata item (XEP-0084): the avatar's `<info/>`, or none to say there is no avatar.
pub(crate) fn metadata_payload(info: Option<&Info>) -> String {
    match info {
        Some(i) => format!(
            "<metadata xmlns='{METADATA_NODE}'><info id='{}' bytes='{}' type='{}'/></metadata>",
            i.hash.as_str(),
            i.bytes,
            i.mime.as_str()
        ),
        None => format!("<metadata xmlns='{METADATA_NODE}'/>"),
    }
}

/// What an available presence says about its sender's avatar (XEP-0153, `vcard-temp:x:update`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PhotoUpdate {
    /// `<x/>` without `<photo/>`: the client does not know yet, so watchers should not act on it.
    NotReady,
    /// An empty `<photo/>`: no avatar.
    NoPhoto,
    /// The hash of the avatar.
    Hash(AvatarHash),
}

/// What the server knows of an account's avatar; an account with no record is one it never learned about
/// (nothing converted yet), whose clients' own hashes pass on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Known {
    /// This avatar, whose image is the data node's item of that hash.
    Avatar(Info),
    /// The user removed their avatar (or set a vCard without a PHOTO).
    NoAvatar,
}

/// The version of [`Known`]'s record that [`Known::to_document`] writes.
const RECORD_VERSION: u32 = 1;

impl Known {
    /// The key of the record.
    pub(crate) fn key() -> crate::store::DocumentKey {
        crate::store::DocumentKey::new("avatar").expect("a short, non-empty key")
    }

    /// The record: a version line, then `none`, or the `<info/>` one field a line.
    pub(crate) fn to_document(&self) -> String {
        match self {
            Known::NoAvatar => format!("version {RECORD_VERSION}\nnone\n"),
            Known::Avatar(i) => format!(
                "version {RECORD_VERSION}\nhash {}\ntype {}\nbytes {}\n",
                i.hash.as_str(),
                i.mime.as_str(),
                i.bytes
            ),
        }
    }

    /// What [`Known::to_document`] wrote; `None` for a record of another version or a damaged one, which leaves
    /// the account as one the server knows nothing about (its clients' hashes pass on) until the avatar changes.
    pub(crate) fn from_document(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()? != format!("version {RECORD_VERSION}") {
            return None;
        }
        let (mut hash, mut mime, mut bytes) = (None, None, None);
        for line in lines {
            match line.split_once(' ') {
                None if line == "none" => return Some(Known::NoAvatar),
                Some(("hash", v)) => hash = AvatarHash::parse(v).ok(),
                Some(("type", v)) => mime = MimeType::parse(v).ok(),
                Some(("bytes", v)) => bytes = v.parse().ok(),
                _ => {}
            }
        }
        Some(Known::Avatar(Info {
            hash: hash?,
            mime: mime?,
            bytes: bytes?,
        }))
    }

    /// What the account's available presence says of the avatar, given what the client put there: the server's
    /// knowledge replaces the client's (XEP-0398), which passes unchanged while the server knows nothing.
    pub(crate) fn presence(
        known: Option<&Known>,
        client: Option<&PhotoUpdate>,
    ) -> Option<PhotoUpdate> {
        match known {
            Some(Known::Avatar(i)) => Some(PhotoUpdate::Hash(i.hash.clone())),
            Some(Known::NoAvatar) => Some(PhotoUpdate::NoPhoto),
            None => client.cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png() -> MimeType {
        MimeType::parse("image/png").expect("valid")
    }

    #[test]
    fn the_hash_is_sha1_in_lowercase_hex() {
        assert_eq!(
            AvatarHash::of(b"abc").as_str(),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            AvatarHash::parse("A9993E364706816ABA3E25717850C26C9CD0D89D"),
            Ok(AvatarHash::of(b"abc"))
        );
        assert!(AvatarHash::parse("a9993e").is_err());
        assert!(AvatarHash::parse("g9993e364706816aba3e25717850c26c9cd0d89d").is_err());
    }

    #[test]
    fn mime_types_need_no_escaping() {
        assert_eq!(png().as_str(), "image/png");
        assert!(MimeType::parse("image/svg+xml").is_ok());
        for bad in [
            "image",
            "image/",
            "/png",
            "image/p'ng",
            "image/<png>",
            "a/b/c",
            "",
        ] {
            assert!(MimeType::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_images_payloads_name_its_hash() {
        let image = Image::new(png(), b"\x89PNG".to_vec());
        assert_eq!(image.info().bytes, 4);
        assert_eq!(
            image.data_payload(),
            "<data xmlns='urn:xmpp:avatar:data'>iVBORw==</data>"
        );
        assert_eq!(
            metadata_payload(Some(&image.info())),
            format!(
                "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='{}' bytes='4' type='image/png'/></metadata>",
                image.hash().as_str()
            )
        );
        assert_eq!(
            metadata_payload(None),
            "<metadata xmlns='urn:xmpp:avatar:metadata'/>"
        );
    }

    #[test]
    fn the_record_survives_its_document() {
        let avatar = Known::Avatar(Image::new(png(), vec![1, 2, 3]).info());
        for known in [avatar, Known::NoAvatar] {
            assert_eq!(Known::from_document(&known.to_document()), Some(known));
        }
        assert_eq!(Known::from_document("version 2\nnone\n"), None);
        assert_eq!(Known::from_document("version 1\nhash xyz\n"), None);
    }

    #[test]
    fn what_the_server_knows_replaces_the_clients_hash() {
        let client = PhotoUpdate::Hash(AvatarHash::of(b"old"));
        let info = Image::new(png(), b"new".to_vec()).info();
        assert_eq!(
            Known::presence(Some(&Known::Avatar(info.clone())), Some(&client)),
            Some(PhotoUpdate::Hash(info.hash))
        );
        assert_eq!(
            Known::presence(Some(&Known::NoAvatar), Some(&client)),
            Some(PhotoUpdate::NoPhoto)
        );
        assert_eq!(Known::presence(None, Some(&client)), Some(client));
        assert_eq!(Known::presence(None, None), None);
    }
}
