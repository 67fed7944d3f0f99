//! Writing accounts and rosters straight into a server's storage (presenced's redb or PostgreSQL store, Prosody's
//! `internal` files), so that provisioning thousands of users takes seconds, not an XMPP registration each.

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use examples::store::RedbStore;
use examples::store::postgres::PgStore;
use presence_core::roster::{ItemDetails, Link, RosterEntry, Subscription};
use presence_core::store::{Account, AccountStore, RosterStore, ScramHash};

use crate::Error;
use crate::accounts::{DOMAIN, PASSWORD, contacts, jid};
use crate::scram;
use crate::scram_cache::hex;

/// Where `provision` writes: the embedded store or a PostgreSQL database.
pub(crate) enum ProvisionStore {
    Redb(RedbStore),
    Pg(PgStore),
}

impl ProvisionStore {
    pub(crate) fn roster(&self) -> &dyn RosterStore {
        match self {
            ProvisionStore::Redb(s) => s,
            ProvisionStore::Pg(s) => s,
        }
    }
}

pub(crate) fn provision(
    data_dir: Option<&Path>,
    postgres: Option<&str>,
    scram_cache: Option<&Path>,
    users: usize,
    roster: usize,
    roster_users: usize,
) -> Result<(), Error> {
    let store = match (postgres, data_dir) {
        // A few connections: the inserts are spread over them from as many threads.
        (Some(url), _) => ProvisionStore::Pg(PgStore::connect(url, PG_WRITERS)?),
        (None, Some(dir)) => {
            std::fs::create_dir_all(dir)?;
            ProvisionStore::Redb(RedbStore::open(dir.join(examples::config::STORE_FILE))?)
        }
        (None, None) => return Err("provision needs --data-dir or --postgres".into()),
    };
    let start = Instant::now();
    // Verifiers cost two PBKDF2 runs each (and the cached client keys one more): derive them on every core,
    // write them from this thread (redb) or from PG_WRITERS threads (PostgreSQL).
    let want_keys = scram_cache.is_some();
    let accounts = parallel_map(users, |i| {
        let account = examples::credentials::new_account(jid(i), PASSWORD)?;
        let line = if want_keys {
            cache_line(i, &account)?
        } else {
            String::new()
        };
        Ok::<_, Error>((account, line))
    });
    let accounts: Vec<(Account, String)> = accounts.into_iter().collect::<Result<_, _>>()?;
    let derived = start.elapsed();
    match &store {
        ProvisionStore::Redb(s) => {
            for (account, _) in &accounts {
                s.put_account(account)?;
            }
        }
        ProvisionStore::Pg(s) => {
            let chunk = accounts.len().div_ceil(PG_WRITERS).max(1);
            std::thread::scope(|scope| {
                let handles: Vec<_> = accounts
                    .chunks(chunk)
                    .map(|part| {
                        let s = s.clone();
                        scope.spawn(move || {
                            part.iter()
                                .try_for_each(|(account, _)| s.put_account(account))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .try_for_each(|h| h.join().expect("no panic"))
            })?;
        }
    }
    if let Some(cache) = scram_cache {
        let text: String = accounts
            .iter()
            .flat_map(|(_, l)| [l.as_str(), "\n"])
            .collect();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(cache)?
            .write_all(text.as_bytes())?;
    }
    let written = start.elapsed();
    let entry = RosterEntry::Listed {
        details: ItemDetails::default(),
        subscription: Subscription {
            outbound: Link::On,
            inbound: Link::On,
        },
    };
    let n = roster_users.min(users);
    for i in 0..n {
        for j in contacts(i, n, roster) {
            store.roster().put_roster_entry(&jid(i), &jid(j), &entry)?;
        }
    }
    eprintln!(
        "provisioned {users} users in {:.1} s ({:.1} s deriving verifiers, {:.1} s writing to {}), \
{} mutual contacts each for u0..u{} in {:.1} s",
        written.as_secs_f64(),
        derived.as_secs_f64(),
        (written - derived).as_secs_f64(),
        if postgres.is_some() {
            "PostgreSQL"
        } else {
            "redb"
        },
        contacts(0, n, roster).len(),
        n.saturating_sub(1),
        (start.elapsed() - written).as_secs_f64()
    );
    Ok(())
}

/// Connections (and threads) `provision --postgres` writes with.
pub(crate) const PG_WRITERS: usize = 4;

/// The SCRAM key cache line of user `i` (see [`ScramCache`]), derived from the SCRAM-SHA-1 verifier's salt and
/// checked against its stored key.
pub(crate) fn cache_line(i: usize, account: &Account) -> Result<String, Error> {
    use sha1::Digest as _;
    let c = account
        .credentials
        .iter()
        .find(|c| c.hash == ScramHash::Sha1)
        .ok_or("the account has no SCRAM-SHA-1 verifier")?;
    let k = scram::Keys::derive(PASSWORD, &c.salt, c.iterations);
    if sha1::Sha1::digest(k.client_key).as_slice() != c.stored_key.as_slice()
        || k.server_key.as_slice() != c.server_key.as_slice()
    {
        return Err("derived SCRAM keys do not match the stored verifier".into());
    }
    Ok(format!(
        "u{i} {} {} {} {}",
        B64.encode(&c.salt),
        c.iterations,
        hex(&k.client_key),
        hex(&k.server_key)
    ))
}

/// Runs `f(i)` for i in 0..n on every core, results in order.
pub(crate) fn parallel_map<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let f = &f;
    let mut parts: Vec<Vec<(usize, T)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| s.spawn(move || (t..n).step_by(threads).map(|i| (i, f(i))).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect()
    });
    let mut all: Vec<(usize, T)> = parts.iter_mut().flat_map(std::mem::take).collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
}

/// Prosody's `internal` storage: one Lua file per user and store, `DATA/localhost/{accounts,roster}/USER.dat`.
pub(crate) fn prosody_provision(
    data_path: &Path,
    users: usize,
    roster: usize,
    roster_users: usize,
    cache: &Path,
) -> Result<(), Error> {
    use sha1::Digest as _;
    const ITERATIONS: u32 = 4096;
    let start = Instant::now();
    let host = data_path.join(DOMAIN);
    std::fs::create_dir_all(host.join("accounts"))?;
    std::fs::create_dir_all(host.join("roster"))?;
    let keys = parallel_map(users, |i| {
        let salt = format!("bench-salt-u{i}");
        (
            salt.clone(),
            scram::Keys::derive(PASSWORD, salt.as_bytes(), ITERATIONS),
        )
    });
    let mut cache_lines = String::new();
    for (i, (salt, k)) in keys.iter().enumerate() {
        let stored_key = sha1::Sha1::digest(k.client_key);
        std::fs::write(
            host.join("accounts").join(format!("u{i}.dat")),
            format!(
                "return {{\n\t[\"iteration_count\"] = {ITERATIONS};\n\t[\"salt\"] = \"{salt}\";\n\
\t[\"server_key\"] = \"{}\";\n\t[\"stored_key\"] = \"{}\";\n}};\n",
                hex(&k.server_key),
                hex(&stored_key)
            ),
        )?;
        cache_lines.push_str(&format!(
            "u{i} {} {ITERATIONS} {} {}\n",
            B64.encode(salt),
            hex(&k.client_key),
            hex(&k.server_key)
        ));
    }
    let n = roster_users.min(users);
    for i in 0..n {
        let mut f = String::from(
            "return {\n\t[false] = {\n\t\t[\"version\"] = 1;\n\t\t[\"pending\"] = {};\n\t};\n",
        );
        for j in contacts(i, n, roster) {
            f.push_str(&format!(
                "\t[\"u{j}@{DOMAIN}\"] = {{\n\t\t[\"groups\"] = {{}};\n\t\t[\"subscription\"] = \"both\";\n\t}};\n"
            ));
        }
        f.push_str("};\n");
        std::fs::write(host.join("roster").join(format!("u{i}.dat")), f)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cache)?
        .write_all(cache_lines.as_bytes())?;
    eprintln!(
        "prosody: wrote {users} accounts and {n} rosters of {} contacts in {:.1} s",
        contacts(0, n, roster).len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
