//! The accounts every command works on: users u0..u{N-1}@localhost with one password, and their rosters (ring
//! neighbours). Provisioning, the `roster` command and the fan-out workload must agree on them, so they live here.

use presence_core::BareJid;

/// The XMPP domain of every account (and the name the certificate is checked against).
pub(crate) const DOMAIN: &str = "localhost";
/// Every account's password.
pub(crate) const PASSWORD: &str = "bench-pw";

pub(crate) fn jid(i: usize) -> BareJid {
    BareJid::new(&format!("u{i}@{DOMAIN}")).expect("valid jid")
}

/// The R contacts of user `i` among `n` users: its ring neighbours i±1..i±R/2 (mod n). Symmetric, so every pair
/// is mutual; R is rounded down to even and capped so that no neighbour repeats.
pub(crate) fn contacts(i: usize, n: usize, r: usize) -> Vec<usize> {
    let half = (r / 2).min(n.saturating_sub(1) / 2);
    let mut out = Vec::with_capacity(2 * half);
    for k in 1..=half {
        out.push((i + k) % n);
        out.push((i + n - k) % n);
    }
    out
}

/// The bare JID of a `from` attribute.
pub(crate) fn bare(from: &str) -> &str {
    from.split('/').next().unwrap_or(from)
}
