//! XEP-0421 occupant ids: one stable, opaque id per real bare address and room, the same on every join and for
//! every device, that reveals nothing about the address to anyone without the server's secret.

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::jid::BareJid;

/// The server's secret the ids are keyed with; kept out of `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct OccupantIdKey(Vec<u8>);

impl OccupantIdKey {
    /// A key from secret bytes (the shell keeps them, e.g. in a file of the data directory).
    pub fn new(secret: Vec<u8>) -> Self {
        OccupantIdKey(secret)
    }

    /// The id of `user` in `room`: base64 of HMAC-SHA-256(secret, room, 0, user).
    pub fn occupant_id(&self, room: &BareJid, user: &BareJid) -> String {
        let mut mac =
            hmac::Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(room.as_str().as_bytes());
        // A separator no address contains, so (room, user) pairs cannot collide by shifting bytes between them.
        mac.update(&[0]);
        mac.update(user.as_str().as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }
}

impl std::fmt::Debug for OccupantIdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OccupantIdKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_per_room_and_user_and_keyed() {
        let j = |s: &str| BareJid::new(s).expect("valid");
        let k = OccupantIdKey::new(b"secret".to_vec());
        let a = k.occupant_id(&j("room@conference.x"), &j("alice@x"));
        assert_eq!(a, k.occupant_id(&j("room@conference.x"), &j("alice@x")));
        assert_ne!(a, k.occupant_id(&j("other@conference.x"), &j("alice@x")));
        assert_ne!(a, k.occupant_id(&j("room@conference.x"), &j("bob@x")));
        assert_ne!(
            a,
            OccupantIdKey::new(b"other".to_vec())
                .occupant_id(&j("room@conference.x"), &j("alice@x"))
        );
    }
}
