//! One directory sync: read the directory and the accounts, [`presence_core::directory::plan`] the changes, and
//! make them (or only print them, `--dry-run`). With a running engine the roster edits and removals go through
//! it, so online users see them at once and removed users' sessions end; without one (the CLI while no server
//! runs) the store is edited directly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use presence_core::directory::{Change, ContactEdit, HeldAccount, PlanRefusal, plan_checked};
use presence_core::roster::RosterEntry;
use presence_core::runtime::Handle;
use presence_core::store::{Account, Store, StoreError};
use presence_core::{BareJid, Input};

use super::client::{self, DirectoryError};
use super::config::LdapConfig;
use super::record;

/// Why a sync did not run.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The directory could not be read: nothing was changed.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// The directory's answer looks wrong: nothing was changed.
    #[error(transparent)]
    Refused(#[from] PlanRefusal),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A store task died.
    #[error("the store task failed: {0}")]
    Task(String),
}

/// Where changes go.
#[derive(Clone)]
pub enum Target {
    /// Print only.
    DryRun,
    /// The store directly (no server runs).
    Store,
    /// The store, with roster edits and session ends through the running engine.
    Engine(Handle),
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SyncError::Task(e.to_string()))?
        .map_err(SyncError::from)
}

/// Runs one sync and returns its changes, one line each (`would …` for a dry run).
pub async fn run<S: Store + Send + Sync + 'static>(
    config: &LdapConfig,
    domain: &str,
    store: Arc<S>,
    target: Target,
) -> Result<Vec<String>, SyncError> {
    let directory = client::users(config, domain).await?;
    let s = store.clone();
    // Every account with its record, and who lists whom (for renames and removals).
    let (held, listed_by) = blocking(move || {
        let mut held = Vec::new();
        let mut listed_by: BTreeMap<BareJid, Vec<BareJid>> = BTreeMap::new();
        for jid in s.list_accounts()? {
            for (contact, _) in s.roster(&jid)? {
                listed_by.entry(contact).or_default().push(jid.clone());
            }
            let record = record::read(s.as_ref(), &jid)?;
            held.push(HeldAccount { jid, record });
        }
        Ok((held, listed_by))
    })
    .await?;
    let changes = plan_checked(&directory, &held)?;
    let mut lines = Vec::new();
    for change in changes {
        if matches!(target, Target::DryRun) {
            lines.push(format!("would {change}"));
            continue;
        }
        apply(&store, &target, &change, &listed_by).await?;
        tracing::info!(%change, "directory sync");
        lines.push(change.to_string());
    }
    Ok(lines)
}

/// Makes one change durable, then tells the engine.
async fn apply<S: Store + Send + Sync + 'static>(
    store: &Arc<S>,
    target: &Target,
    change: &Change,
    listed_by: &BTreeMap<BareJid, Vec<BareJid>>,
) -> Result<(), SyncError> {
    let s = store.clone();
    let c = change.clone();
    // An account without cached credentials: the next login, checked by the directory, caches them.
    let uncached = |jid: &BareJid| Account {
        jid: jid.clone(),
        credentials: Vec::new(),
        digest: Vec::new(),
    };
    blocking(move || match &c {
        Change::Create(user) => {
            s.put_account(&uncached(&user.jid))?;
            record::write(s.as_ref(), &user.jid, &user.record)
        }
        Change::Update { user, .. } => {
            if c.drops_credentials() {
                s.put_account(&uncached(&user.jid))?;
            }
            record::write(s.as_ref(), &user.jid, &user.record)
        }
        Change::Remove(jid) => s.remove_account(jid).map(|_| ()),
    })
    .await?;
    let (contact, edit) = match change {
        Change::Remove(jid) => {
            if let Target::Engine(hub) = target {
                submit(hub, Input::AccountRemoved { user: jid.clone() }).await;
            }
            (
                jid,
                ContactEdit::Remove {
                    contact: jid.clone(),
                },
            )
        }
        other => match other.renames() {
            Some((jid, name)) => (
                jid,
                ContactEdit::Rename {
                    contact: jid.clone(),
                    name: name.map(str::to_owned),
                },
            ),
            None => return Ok(()),
        },
    };
    for holder in listed_by.get(contact).into_iter().flatten() {
        if matches!(change, Change::Remove(j) if j == holder) {
            continue;
        }
        match target {
            Target::Engine(hub) => {
                submit(
                    hub,
                    Input::EditContacts {
                        user: holder.clone(),
                        edits: vec![edit.clone()],
                    },
                )
                .await
            }
            _ => {
                let (s, holder, edit) = (store.clone(), holder.clone(), edit.clone());
                blocking(move || edit_stored(s.as_ref(), &holder, &edit)).await?;
            }
        }
    }
    Ok(())
}

/// A roster edit made on the store itself (no engine holds the roster).
fn edit_stored(store: &impl Store, user: &BareJid, edit: &ContactEdit) -> Result<(), StoreError> {
    match edit {
        ContactEdit::Remove { contact } => store.remove_roster_entry(user, contact),
        ContactEdit::Rename { contact, name } => {
            let entry = store.roster(user)?.into_iter().find(|(c, _)| c == contact);
            if let Some((
                _,
                RosterEntry::Listed {
                    mut details,
                    subscription,
                },
            )) = entry
            {
                details.name = name.clone();
                store.put_roster_entry(
                    user,
                    contact,
                    &RosterEntry::Listed {
                        details,
                        subscription,
                    },
                )?;
            }
            Ok(())
        }
    }
}

/// Hands an input to the engine, waiting while its queue is full (a sync is not in a hurry, and every input
/// of it must arrive); gives up only when the engine has stopped.
async fn submit(hub: &Handle, mut input: Input) {
    loop {
        match hub.submit(input) {
            Ok(()) => return,
            Err(rejected) => {
                if matches!(rejected.error, presence_core::runtime::SubmitError::Stopped) {
                    tracing::warn!("the engine stopped during a directory sync");
                    return;
                }
                input = *rejected.input;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Syncs at once and then every `config.sync_interval` (never when it is zero), logging failures; runs until
/// the task is dropped.
pub async fn periodic<S: Store + Send + Sync + 'static>(
    config: Arc<LdapConfig>,
    domain: String,
    store: Arc<S>,
    hub: Handle,
) {
    if config.sync_interval.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(config.sync_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match run(&config, &domain, store.clone(), Target::Engine(hub.clone())).await {
            Ok(lines) => tracing::debug!(changes = lines.len(), "directory sync done"),
            Err(e) => tracing::warn!(error = %e, "directory sync failed; accounts unchanged"),
        }
    }
}

#[cfg(test)]
mod tests {
    use presence_core::roster::{ItemDetails, Link, Subscription};
    use presence_core::store::{MemoryStore, RosterStore};

    use super::*;

    #[test]
    fn stored_edits_rename_keeping_the_subscription_and_remove() {
        let store = MemoryStore::new();
        let (alice, bob) = (
            BareJid::new("alice@x").expect("valid"),
            BareJid::new("bob@x").expect("valid"),
        );
        let subscription = Subscription {
            outbound: Link::On,
            inbound: Link::On,
        };
        let listed = |name: &str| RosterEntry::Listed {
            details: ItemDetails {
                name: Some(name.into()),
                groups: vec!["Team".into()],
            },
            subscription,
        };
        store
            .put_roster_entry(&alice, &bob, &listed("Bob"))
            .expect("put");
        let rename = ContactEdit::Rename {
            contact: bob.clone(),
            name: Some("Robert".into()),
        };
        edit_stored(&store, &alice, &rename).expect("rename");
        assert_eq!(
            store.roster(&alice).expect("roster"),
            vec![(bob.clone(), listed("Robert"))]
        );
        // A rename of an item the user does not have adds none.
        edit_stored(&store, &bob, &rename).expect("rename");
        assert!(store.roster(&bob).expect("roster").is_empty());
        edit_stored(&store, &alice, &ContactEdit::Remove { contact: bob }).expect("remove");
        assert!(store.roster(&alice).expect("roster").is_empty());
    }
}
