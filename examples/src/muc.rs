//! `[muc]`: the group chat service (XEP-0045, DESIGN §5): its domain, its limits, and the key of its occupant ids.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use presence_core::rooms::{OccupantIdKey, RoomLimits, RoomsConfig};
use serde::Deserialize;
use tracing::debug;

/// The XEP-0421 occupant-id key's file in the data directory (32 random bytes made at first start; a new key
/// gives every occupant a new id).
pub const KEY_FILE: &str = "muc.key";

/// `[muc]`. Every limit defaults to DESIGN §5's number.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MucConfig {
    /// Whether the service runs (on by default).
    pub enabled: bool,
    /// The service's domain; `conference.<domain>` when not given. Never the IM domain.
    pub domain: Option<String>,
    /// A new room's occupant limit.
    pub default_max_occupants: usize,
    /// The most occupants a room may be configured for.
    pub max_occupants: usize,
    /// Rooms on this node, ad hoc and persistent.
    pub max_rooms: usize,
    /// Persistent rooms on this node.
    pub max_persistent_rooms: usize,
    /// Messages a new room keeps and sends to newcomers.
    pub history: usize,
    /// The most messages a room may be configured to keep and send.
    pub max_history: usize,
    /// The largest body plus subject of a room message, in bytes.
    pub max_message_bytes: usize,
    /// The most messages one room's archive keeps (older ones are trimmed in steps); 0 archives nothing.
    pub max_archive_per_room: u64,
    /// The XEP-0421 occupant-id key's file; [`KEY_FILE`] in the data directory when not given. The nodes of a
    /// cluster given copies of one key file keep every occupant's id when a room moves between them.
    pub key_file: Option<PathBuf>,
}

impl Default for MucConfig {
    fn default() -> Self {
        let l = RoomLimits::default();
        MucConfig {
            enabled: true,
            domain: None,
            default_max_occupants: l.default_max_occupants,
            max_occupants: l.max_occupants,
            max_rooms: l.max_rooms,
            max_persistent_rooms: l.max_persistent_rooms,
            history: l.default_history,
            max_history: l.max_history,
            max_message_bytes: l.max_message_bytes,
            max_archive_per_room: l.max_archive_per_room,
            key_file: None,
        }
    }
}

impl MucConfig {
    /// The service's domain for the IM domain `domain`.
    pub fn domain_for(&self, domain: &str) -> String {
        self.domain
            .clone()
            .unwrap_or_else(|| format!("conference.{domain}"))
            .to_ascii_lowercase()
    }

    /// Why the section cannot work for the IM domain `domain`, as (key, value, problem).
    pub fn problem(&self, domain: &str) -> Option<(&'static str, String, String)> {
        let service = self.domain_for(domain);
        match presence_core::BareJid::new(&service) {
            Ok(j) if j.local().is_none() && j.domain() != domain => {}
            Ok(j) if j.domain() == domain => {
                return Some((
                    "muc.domain",
                    service,
                    "is the IM domain; the room service needs its own".into(),
                ));
            }
            _ => return Some(("muc.domain", service, "is not a valid domain".into())),
        }
        if self.default_max_occupants == 0 || self.default_max_occupants > self.max_occupants {
            return Some((
                "muc.default_max_occupants",
                self.default_max_occupants.to_string(),
                format!(
                    "must be between 1 and muc.max_occupants ({})",
                    self.max_occupants
                ),
            ));
        }
        if self.history > self.max_history {
            return Some((
                "muc.history",
                self.history.to_string(),
                format!("is above muc.max_history ({})", self.max_history),
            ));
        }
        if self.max_persistent_rooms > self.max_rooms {
            return Some((
                "muc.max_persistent_rooms",
                self.max_persistent_rooms.to_string(),
                format!("is above muc.max_rooms ({})", self.max_rooms),
            ));
        }
        None
    }

    /// The engine's room service settings, with the occupant-id key read from (or made in) `key_file`, or
    /// [`KEY_FILE`] in `data_dir`.
    pub fn rooms_config(&self, domain: &str, data_dir: &Path) -> Result<RoomsConfig, KeyError> {
        let path = self
            .key_file
            .clone()
            .unwrap_or_else(|| data_dir.join(KEY_FILE));
        let mut c = RoomsConfig::new(
            &self.domain_for(domain),
            OccupantIdKey::new(key(&path)?.to_vec()),
        );
        c.limits = RoomLimits {
            default_max_occupants: self.default_max_occupants,
            max_occupants: self.max_occupants,
            max_rooms: self.max_rooms,
            max_persistent_rooms: self.max_persistent_rooms,
            default_history: self.history,
            max_history: self.max_history,
            max_message_bytes: self.max_message_bytes,
            max_archive_per_room: self.max_archive_per_room,
        };
        Ok(c)
    }
}

/// Why the occupant-id key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("room service key {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not 32 bytes.
    #[error("room service key {0} is damaged (expected 32 bytes); delete it to make a new one")]
    Damaged(PathBuf),
    /// No random bytes.
    #[error("cannot get random bytes for the room service key: {0}")]
    Random(String),
}

/// The key in the file at `path`, made at first start.
fn key(path: &Path) -> Result<[u8; 32], KeyError> {
    let path = path.to_path_buf();
    let io = |source| KeyError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Damaged(path.clone()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| KeyError::Random(e.to_string()))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let mut f = {
                use std::os::unix::fs::OpenOptionsExt as _;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io)?
            };
            f.write_all(&key).and_then(|()| f.sync_all()).map_err(io)?;
            debug!(path = %path.display(), "made a new room service key");
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_defaults_to_conference_and_never_takes_the_im_domain() {
        let c = MucConfig::default();
        assert_eq!(c.domain_for("example.com"), "conference.example.com");
        assert!(c.problem("example.com").is_none());
        let same = MucConfig {
            domain: Some("example.com".into()),
            ..MucConfig::default()
        };
        assert!(same.problem("example.com").is_some());
        let history = MucConfig {
            history: 101,
            ..MucConfig::default()
        };
        assert_eq!(history.problem("x").map(|p| p.0), Some("muc.history"));
    }

    #[test]
    fn the_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(KEY_FILE);
        let a = key(&path).expect("made");
        assert_eq!(key(&path).expect("read"), a);
    }

    /// Two nodes pointed at copies of one key file make the same occupant ids; by default each has its own.
    #[test]
    fn nodes_given_one_key_file_make_the_same_occupant_ids() {
        let shared = tempfile::tempdir().expect("dir");
        let (a, b) = (
            tempfile::tempdir().expect("dir"),
            tempfile::tempdir().expect("dir"),
        );
        let id = |c: &MucConfig, data: &Path| {
            let room = presence_core::BareJid::new("r@conference.x").expect("valid");
            let user = presence_core::BareJid::new("alice@x").expect("valid");
            c.rooms_config("x", data)
                .expect("key")
                .key
                .occupant_id(&room, &user)
        };
        let own = MucConfig::default();
        assert_ne!(id(&own, a.path()), id(&own, b.path()));
        let one = MucConfig {
            key_file: Some(shared.path().join("cluster").join(KEY_FILE)),
            ..MucConfig::default()
        };
        assert_eq!(id(&one, a.path()), id(&one, b.path()));
    }
}
