//! The directory record kept beside a managed account: a user document under the key `directory`, as JSON. Its
//! presence is what marks an account as the directory's (a sync may remove it); accounts without one are local.

use presence_core::BareJid;
use presence_core::directory::DirectoryRecord;
use presence_core::store::{DocumentKey, DocumentStore, StoreError};
use serde::{Deserialize, Serialize};

/// The document key.
pub const KEY: &str = "directory";

fn key() -> DocumentKey {
    DocumentKey::new(KEY).expect("a short, non-empty key")
}

#[derive(Serialize, Deserialize)]
struct Stored {
    dn: String,
    name: Option<String>,
    mail: Option<String>,
    phone: Option<String>,
    changed: Option<String>,
}

/// The record of `user`, if the account is managed.
pub fn read(
    store: &impl DocumentStore,
    user: &BareJid,
) -> Result<Option<DirectoryRecord>, StoreError> {
    let key = key();
    let Some((_, text)) = store.documents(user)?.into_iter().find(|(k, _)| *k == key) else {
        return Ok(None);
    };
    let s: Stored = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
        what: format!("directory record of {user}"),
        detail: e.to_string(),
    })?;
    Ok(Some(DirectoryRecord {
        dn: s.dn,
        name: s.name,
        mail: s.mail,
        phone: s.phone,
        changed: s.changed,
    }))
}

/// Stores `record` as `user`'s.
pub fn write(
    store: &impl DocumentStore,
    user: &BareJid,
    record: &DirectoryRecord,
) -> Result<(), StoreError> {
    let s = Stored {
        dn: record.dn.clone(),
        name: record.name.clone(),
        mail: record.mail.clone(),
        phone: record.phone.clone(),
        changed: record.changed.clone(),
    };
    let text = serde_json::to_string(&s).expect("strings serialise");
    store.put_document(user, &key(), &text)
}

#[cfg(test)]
mod tests {
    use presence_core::store::MemoryStore;

    use super::*;

    #[test]
    fn a_record_reads_back_and_its_absence_means_local() {
        let store = MemoryStore::new();
        let alice = BareJid::new("alice@x").expect("valid");
        assert_eq!(read(&store, &alice).expect("read"), None);
        let r = DirectoryRecord {
            dn: "uid=alice,ou=people,dc=x".into(),
            name: Some("Alice \"A\" Liddell".into()),
            mail: None,
            phone: Some("+1".into()),
            changed: Some("20260101000000Z".into()),
        };
        write(&store, &alice, &r).expect("write");
        assert_eq!(read(&store, &alice).expect("read"), Some(r));
    }
}
