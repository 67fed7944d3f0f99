//! The client's SCRAM key cache (RFC 5802 §5.1): ClientKey and ServerKey per user, salt and iteration count, kept
//! in a file across runs, so that a login storm measures the server's work and not the tool's PBKDF2.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::Error;
use crate::accounts::PASSWORD;
use crate::scram;

/// Cached SCRAM keys by "user salt iterations".
pub(crate) struct ScramCache {
    pub(crate) path: Option<PathBuf>,
    pub(crate) map: Mutex<HashMap<String, scram::Keys>>,
    pub(crate) new: Mutex<Vec<String>>,
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex20(s: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    if s.len() != 40 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl ScramCache {
    pub(crate) fn load(path: Option<PathBuf>) -> Result<ScramCache, Error> {
        let mut map = HashMap::new();
        if let Some(p) = &path
            && let Ok(text) = std::fs::read_to_string(p)
        {
            for line in text.lines() {
                let f: Vec<&str> = line.split(' ').collect();
                if let [user, salt, iter, ck, sk] = f[..]
                    && let (Some(client_key), Some(server_key)) = (unhex20(ck), unhex20(sk))
                {
                    map.insert(
                        format!("{user} {salt} {iter}"),
                        scram::Keys {
                            client_key,
                            server_key,
                        },
                    );
                }
            }
        }
        Ok(ScramCache {
            path,
            map: Mutex::new(map),
            new: Mutex::new(Vec::new()),
        })
    }

    pub(crate) async fn keys(
        &self,
        user: usize,
        sf: &scram::ServerFirst,
    ) -> Result<scram::Keys, Error> {
        let key = format!("u{user} {} {}", sf.salt_b64, sf.iterations);
        if let Some(k) = self.map.lock().expect("not poisoned").get(&key) {
            return Ok(*k);
        }
        let (salt, i) = (sf.salt.clone(), sf.iterations);
        let k =
            tokio::task::spawn_blocking(move || scram::Keys::derive(PASSWORD, &salt, i)).await?;
        if self.path.is_some() {
            self.new.lock().expect("not poisoned").push(format!(
                "{key} {} {}",
                hex(&k.client_key),
                hex(&k.server_key)
            ));
        }
        self.map.lock().expect("not poisoned").insert(key, k);
        Ok(k)
    }

    pub(crate) fn save(&self) -> Result<(), Error> {
        let new = std::mem::take(&mut *self.new.lock().expect("not poisoned"));
        if let (Some(p), false) = (&self.path, new.is_empty()) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?;
            let mut text = new.join("\n");
            text.push('\n');
            f.write_all(text.as_bytes())?;
        }
        Ok(())
    }
}
