//! HTTP File Upload (XEP-0363) served by presenced itself: the slots the XMPP shell hands out
//! ([`server_xmpp::translate::features::upload::SlotIssuer`]) and the files behind them, on the process's one HTTP
//! listener ([`routes`]).
//!
//! Layout under `data_dir/upload/`: `<owner>/<slot>/content` (the file) and `<owner>/<slot>/meta` (its content
//! type, then its name). `<owner>` is a keyed hash of the uploader's bare JID and `<slot>` 16 random bytes, both
//! lower-case hex; the file name in URLs is reduced to `[A-Za-z0-9._-]`. So every path the HTTP side opens is built
//! from three checked segments and can never leave the directory, whatever a URL says.
//!
//! A PUT URL carries its expiry and an HMAC-SHA256 (key: `data_dir/upload.key`, 32 random bytes made at first
//! start) over the path, the size, the content type and the expiry; the PUT's `Content-Length` and `Content-Type`
//! must be the signed ones. The per-user quota is counted from the owner's directory when a slot is asked for
//! and again when its PUT arrives: no index to drift from the files, and a user's files are few.

mod config;
mod http;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{KeyInit, Mac};
use presence_core::BareJid;
use server_xmpp::translate::features::upload::{Refusal, Slot, SlotIssuer, SlotRequest};
use sha2::Sha256;
use tracing::{info, warn};

pub use config::UploadConfig;
pub use http::routes;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The secret's file in the data directory.
pub const KEY_FILE: &str = "upload.key";
/// The files' directory in the data directory.
pub const DIR: &str = "upload";

/// Why the upload service could not start.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The key or the directory could not be read or made.
    #[error("upload storage {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The key file is not 32 bytes.
    #[error("upload key {0} is damaged (expected 32 bytes); delete it to make a new one")]
    BadKey(PathBuf),
    /// No random bytes for the key.
    #[error("cannot get random bytes for the upload key: {0}")]
    Random(String),
}

/// The limits and addresses of the service (`[upload]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The largest file taken, in bytes.
    pub max_file_size: u64,
    /// The most bytes one user may have stored.
    pub quota: u64,
    /// How long a PUT URL stays valid.
    pub put_valid_for: Duration,
    /// Files older than this are deleted; zero keeps them.
    pub expire_after: Duration,
    /// The URL the files are reached under, without a trailing slash (`http://host:5280`).
    pub url: String,
}

/// The upload service: issues slots and keeps the files.
#[derive(Debug)]
pub struct Uploads {
    dir: PathBuf,
    key: [u8; 32],
    settings: Settings,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> UploadError + '_ {
    move |source| UploadError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Uploads {
    /// Opens the service on `data_dir`, making its directory and key at first start.
    pub fn open(data_dir: &Path, settings: Settings) -> Result<Self, UploadError> {
        let dir = data_dir.join(DIR);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let key_path = data_dir.join(KEY_FILE);
        let key = match std::fs::read(&key_path) {
            Ok(bytes) => {
                <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| UploadError::BadKey(key_path))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key).map_err(|e| UploadError::Random(e.to_string()))?;
                write_private(&key_path, &key).map_err(io(&key_path))?;
                info!(path = %key_path.display(), "made a new upload signing key");
                key
            }
            Err(e) => return Err(io(&key_path)(e)),
        };
        Ok(Uploads { dir, key, settings })
    }

    /// The service's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length")
    }

    /// The directory name of `user`'s files: keyed, so a URL does not tell who uploaded it.
    fn owner(&self, user: &BareJid) -> String {
        let mut mac = self.mac();
        mac.update(b"owner\n");
        mac.update(user.as_str().as_bytes());
        hex(&mac.finalize().into_bytes()[..16])
    }

    /// What a PUT URL signs.
    fn signed(&self, path: &str, size: u64, content_type: &str, expires: u64) -> HmacSha256 {
        let mut mac = self.mac();
        mac.update(format!("PUT\n{path}\n{size}\n{content_type}\n{expires}").as_bytes());
        mac
    }

    /// Whether `sig` (hex) is ours for these values; compared in constant time.
    fn verify(&self, path: &str, size: u64, content_type: &str, expires: u64, sig: &str) -> bool {
        let Some(sig) = unhex(sig) else { return false };
        self.signed(path, size, content_type, expires)
            .verify_slice(&sig)
            .is_ok()
    }

    /// Bytes stored under `owner`.
    fn usage(&self, owner: &str) -> std::io::Result<u64> {
        let dir = self.dir.join(owner);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut total = 0;
        for slot in entries {
            match std::fs::metadata(slot?.path().join("content")) {
                Ok(m) => total += m.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Deletes files older than `expire_after`, and uploads abandoned half-way; returns how many went.
    pub fn sweep(&self, now: SystemTime) -> usize {
        let mut removed = 0;
        let Ok(owners) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        for owner in owners.flatten() {
            let Ok(slots) = std::fs::read_dir(owner.path()) else {
                continue;
            };
            for slot in slots.flatten() {
                let path = slot.path();
                let age = |name: &str| {
                    std::fs::metadata(path.join(name))
                        .and_then(|m| m.modified())
                        .ok()
                        .map(|t| now.duration_since(t).unwrap_or_default())
                };
                let expired = match age("content") {
                    Some(a) => {
                        !self.settings.expire_after.is_zero() && a >= self.settings.expire_after
                    }
                    // A PUT that never finished: its slot expired long ago.
                    None => {
                        age("content.part").is_none_or(|a| a >= 2 * self.settings.put_valid_for)
                    }
                };
                if expired {
                    match std::fs::remove_dir_all(&path) {
                        Ok(()) => removed += 1,
                        Err(e) => {
                            warn!(path = %path.display(), error = %e, "cannot delete an expired upload")
                        }
                    }
                }
            }
        }
        removed
    }
}

impl SlotIssuer for Uploads {
    fn max_file_size(&self) -> u64 {
        self.settings.max_file_size
    }

    fn issue(&self, user: &BareJid, request: &SlotRequest) -> Result<Slot, Refusal> {
        let s = &self.settings;
        if request.size > s.max_file_size {
            return Err(Refusal::TooLarge {
                max: s.max_file_size,
            });
        }
        let content_type = request.content_type.as_deref().unwrap_or_default();
        // Whatever is signed must come back as a header value.
        if !content_type.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(Refusal::BadRequest(
                "the content type must be printable ASCII".into(),
            ));
        }
        let owner = self.owner(user);
        let used = self.usage(&owner).map_err(|e| {
            warn!(error = %e, "cannot count a user's uploads");
            Refusal::Internal
        })?;
        if used.saturating_add(request.size) > s.quota {
            return Err(Refusal::Quota { quota: s.quota });
        }
        let mut slot = [0u8; 16];
        getrandom::fill(&mut slot).map_err(|_| Refusal::Internal)?;
        let path = format!(
            "/{DIR}/{owner}/{}/{}",
            hex(&slot),
            safe_name(&request.filename)
        );
        let expires = unix(SystemTime::now() + s.put_valid_for);
        let sig = hex(&self
            .signed(&path, request.size, content_type, expires)
            .finalize()
            .into_bytes());
        Ok(Slot {
            put: format!("{}{path}?expires={expires}&sig={sig}", s.url),
            get: format!("{}{path}", s.url),
            headers: Vec::new(),
        })
    }
}

/// A file name that is safe in a URL path and on disk: other characters become `_`, no leading dot, at most
/// 100 bytes.
fn safe_name(name: &str) -> String {
    // Only the last component: clients send a base name, but a path must not leak directories.
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut out: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if out.starts_with('.') {
        out.replace_range(..1, "_");
    }
    if out.is_empty() {
        out.push_str("file");
    }
    out
}

/// Whether `segment` could be a name [`safe_name`] made.
fn is_safe_name(segment: &str) -> bool {
    !segment.is_empty()
        && segment.len() <= 100
        && !segment.starts_with('.')
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `segment` is 32 lower-case hex digits (an owner or a slot).
fn is_id(segment: &str) -> bool {
    segment.len() == 32
        && segment
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// Writes a file only the owner may read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Sweeps expired files every `every` until the process ends.
pub async fn sweep_forever(uploads: std::sync::Arc<Uploads>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let u = uploads.clone();
        match tokio::task::spawn_blocking(move || u.sweep(SystemTime::now())).await {
            Ok(0) | Err(_) => {}
            Ok(n) => info!(removed = n, "expired uploads deleted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uploads(dir: &Path) -> Uploads {
        Uploads::open(
            dir,
            Settings {
                max_file_size: 100,
                quota: 150,
                put_valid_for: Duration::from_secs(300),
                expire_after: Duration::from_secs(3600),
                url: "http://h:1".into(),
            },
        )
        .expect("open")
    }

    fn request(name: &str, size: u64) -> SlotRequest {
        SlotRequest {
            id: "1".into(),
            to: None,
            filename: name.into(),
            size,
            content_type: Some("text/plain".into()),
        }
    }

    #[test]
    fn names_are_reduced_to_safe_segments() {
        for (given, safe) in [
            ("photo.jpg", "photo.jpg"),
            ("../../etc/passwd", "passwd"),
            ("..", "_."),
            ("a b/c d.txt", "c_d.txt"),
            ("", "file"),
            ("é.txt", "_.txt"),
        ] {
            assert_eq!(safe_name(given), safe, "{given}");
            assert!(is_safe_name(&safe_name(given)), "{given}");
        }
        assert!(!is_safe_name(".."));
        assert!(!is_safe_name("a%2F"));
    }

    #[test]
    fn slots_are_signed_limited_and_the_key_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tmp");
        let u = uploads(dir.path());
        let alice = BareJid::new("alice@x").expect("jid");
        assert_eq!(
            u.issue(&alice, &request("a", 101)),
            Err(Refusal::TooLarge { max: 100 })
        );
        let slot = u.issue(&alice, &request("a.txt", 100)).expect("slot");
        let (put_path, query) = slot.put["http://h:1".len()..]
            .split_once('?')
            .expect("query");
        assert_eq!(slot.get, format!("http://h:1{put_path}"));
        let expires: u64 = query["expires=".len()..query.find('&').expect("&")]
            .parse()
            .expect("n");
        let sig = &query[query.find("sig=").expect("sig") + 4..];
        assert!(u.verify(put_path, 100, "text/plain", expires, sig));
        assert!(!u.verify(put_path, 99, "text/plain", expires, sig));
        assert!(!u.verify(put_path, 100, "text/html", expires, sig));
        assert!(!u.verify(put_path, 100, "text/plain", expires + 1, sig));
        // The same key after a restart: URLs handed out before stay valid.
        drop(u);
        let u = uploads(dir.path());
        assert!(u.verify(put_path, 100, "text/plain", expires, sig));
        // Stored bytes count against the quota.
        let owner = u.owner(&alice);
        let slot_dir = dir.path().join(DIR).join(&owner).join("0".repeat(32));
        std::fs::create_dir_all(&slot_dir).expect("mkdir");
        std::fs::write(slot_dir.join("content"), [0u8; 100]).expect("write");
        assert_eq!(
            u.issue(&alice, &request("b", 51)),
            Err(Refusal::Quota { quota: 150 })
        );
        assert!(u.issue(&alice, &request("b", 50)).is_ok());
        // Expired files go, fresh ones stay.
        assert_eq!(u.sweep(SystemTime::now()), 0);
        assert_eq!(u.sweep(SystemTime::now() + Duration::from_secs(3600)), 1);
        assert!(!slot_dir.exists());
    }
}
