//! Store fault injection for the end-to-end fault tests, and nothing else.
//!
//! The runtime must fail closed when the store fails (DESIGN §1: nothing acknowledged before its commit, a failed
//! load is an error and never "no such user"). An end-to-end test can only see that against the real `presenced`
//! process if it can make the store fail on demand, mid-run, from outside. [`FaultyStore`] wraps the real store;
//! when `presenced` starts with `PRESENCED_FAULT_FILE=/some/path` in its environment, every commit
//! ([`Store::apply`]) and every load ([`Store::load_user`], [`AccountStore::account`]) fails while that file
//! exists, and works again once the test removes it. Without the variable the wrapper never fails and costs one
//! `Option` check per call.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use presence_core::BareJid;
use presence_core::store::{Account, Layer, Store, StoreError, StoreWrite, UserRecord};

/// The environment variable naming the switch file.
pub const FAULT_FILE_VAR: &str = "PRESENCED_FAULT_FILE";

/// A store that fails commits and loads while a switch file exists; see the module documentation.
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    /// While this file exists, the guarded calls fail; `None`: never.
    switch: Option<PathBuf>,
}

impl<S> FaultyStore<S> {
    /// Wraps `inner`, failing while `switch` (when given) exists.
    pub fn new(inner: S, switch: Option<PathBuf>) -> Self {
        FaultyStore { inner, switch }
    }

    /// Wraps `inner` with the switch file named by `PRESENCED_FAULT_FILE`; unset or empty: never fails.
    pub fn from_env(inner: S) -> Self {
        Self::from_var(inner, std::env::var_os(FAULT_FILE_VAR))
    }

    fn from_var(inner: S, var: Option<OsString>) -> Self {
        let switch = var.filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(path) = &switch {
            // Loud on purpose: a production server started with this variable would fail on demand.
            tracing::warn!(
                switch = %path.display(),
                "store fault injection armed: commits and loads fail while the switch file exists"
            );
        }
        Self::new(inner, switch)
    }

    /// The switch file, if any.
    pub fn switch(&self) -> Option<&Path> {
        self.switch.as_deref()
    }

    /// `Err` when the switch is on, naming the operation that was refused.
    fn check(&self, op: &str) -> Result<(), StoreError> {
        match &self.switch {
            Some(path) if path.exists() => Err(StoreError::Backend(format!(
                "injected fault: {op} refused while {} exists",
                path.display()
            ))),
            _ => Ok(()),
        }
    }
}

impl<S: Store> Layer for FaultyStore<S> {
    type Inner = S;

    fn inner(&self) -> &S {
        &self.inner
    }

    fn commit(&self, writes: &[StoreWrite]) -> Result<(), StoreError> {
        self.check("commit")?;
        self.inner.apply(writes)
    }

    fn load(&self, users: &[BareJid]) -> Vec<Result<Option<UserRecord>, StoreError>> {
        match self.check("load") {
            Ok(()) => self.inner.load_users(users),
            Err(e) => users.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    fn lookup_account(&self, user: &BareJid) -> Result<Option<Account>, StoreError> {
        // Sign-in reads the account; failing it lets a test see authentication fail closed.
        self.check("account lookup")?;
        self.inner.account(user)
    }
}

#[cfg(test)]
mod tests {
    use presence_core::roster::RosterEntry;
    use presence_core::store::{AccountStore, MemoryStore, RosterStore};

    use super::*;
    use crate::credentials::new_account;

    fn j(s: &str) -> BareJid {
        BareJid::new(s).expect("valid")
    }

    fn roster_put(user: &str, contact: &str) -> StoreWrite {
        StoreWrite::RosterPut {
            user: j(user),
            contact: j(contact),
            entry: RosterEntry::Requested,
        }
    }

    /// A store with alice, wired to a switch file that does not exist yet.
    fn setup() -> (tempfile::TempDir, PathBuf, FaultyStore<MemoryStore>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let switch = dir.path().join("fail");
        let inner = MemoryStore::new();
        inner
            .put_account(&new_account(j("alice@x.org"), "pw").expect("account"))
            .expect("put");
        (dir, switch.clone(), FaultyStore::new(inner, Some(switch)))
    }

    #[test]
    fn passes_through_while_the_switch_file_is_absent() {
        let (_dir, _switch, s) = setup();
        s.apply(&[roster_put("alice@x.org", "bob@x.org")])
            .expect("commit");
        let rec = s
            .load_user(&j("alice@x.org"))
            .expect("load")
            .expect("alice exists");
        assert_eq!(rec.roster.len(), 1);
        assert_eq!(rec.roster[0].0, j("bob@x.org"));
        assert!(s.account(&j("alice@x.org")).expect("lookup").is_some());
        assert!(s.load_user(&j("nobody@x.org")).expect("load").is_none());
    }

    #[test]
    fn fails_while_the_switch_file_exists_and_writes_nothing() {
        let (_dir, switch, s) = setup();
        std::fs::write(&switch, "").expect("switch on");

        let e = s
            .apply(&[roster_put("alice@x.org", "bob@x.org")])
            .expect_err("commit must fail");
        let StoreError::Backend(msg) = &e else {
            panic!("a backend error, not {e:?}");
        };
        assert!(msg.starts_with("injected fault: commit"), "{msg}");
        assert!(msg.contains(&switch.display().to_string()), "{msg}");
        assert!(s.load_user(&j("alice@x.org")).is_err(), "load must fail");
        assert!(s.account(&j("alice@x.org")).is_err(), "lookup must fail");
        // The refused commit reached nothing: the inner store never saw it.
        assert!(
            s.inner()
                .roster(&j("alice@x.org"))
                .expect("inner")
                .is_empty(),
            "nothing written during a fault"
        );

        std::fs::remove_file(&switch).expect("switch off");
        s.apply(&[roster_put("alice@x.org", "bob@x.org")])
            .expect("commit works again");
        assert_eq!(
            s.load_user(&j("alice@x.org"))
                .expect("load works again")
                .expect("alice")
                .roster
                .len(),
            1
        );
    }

    #[test]
    fn the_switch_comes_from_the_variable_and_empty_means_none() {
        let s = FaultyStore::from_var(MemoryStore::new(), Some("/tmp/f".into()));
        assert_eq!(s.switch(), Some(Path::new("/tmp/f")));
        assert_eq!(
            FaultyStore::from_var(MemoryStore::new(), Some("".into())).switch(),
            None
        );
        assert_eq!(
            FaultyStore::from_var(MemoryStore::new(), None).switch(),
            None
        );
    }

    #[test]
    fn without_a_switch_it_is_the_inner_store() {
        presence_core::store::conformance::run(|| FaultyStore::new(MemoryStore::new(), None));
    }
}
