//! Caps on connections: in total and per peer address, shared by every shell of the process (ejabberd's and
//! Prosody's connection limits are the model). A connection holds a [`Permit`] for its whole life; dropping it
//! gives the place back.

use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::HashMap;
use parking_lot::Mutex;

use super::metrics::Rejection;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The process holds its maximum of connections.
    #[error("the server holds its maximum of {limit} connections")]
    Total {
        /// The cap.
        limit: usize,
    },
    /// The address holds its maximum of connections.
    #[error("{addr} holds its maximum of {limit} connections")]
    PerAddress {
        /// The peer's address.
        addr: IpAddr,
        /// The cap.
        limit: usize,
    },
}

impl Refused {
    /// The metric label of the cap that refused.
    pub fn rejection(self) -> Rejection {
        match self {
            Refused::Total { .. } => Rejection::Total,
            Refused::PerAddress { .. } => Rejection::PerAddress,
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_addr: HashMap<IpAddr, usize>,
}

/// The connection caps.
#[derive(Debug)]
pub struct Admission {
    max_total: usize,
    /// 0: no cap per address.
    max_per_addr: usize,
    counts: Mutex<Counts>,
}

/// A connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    addr: IpAddr,
}

impl Admission {
    /// Caps of `max_total` connections, `max_per_addr` per address (0: no cap per address).
    pub fn new(max_total: usize, max_per_addr: usize) -> Arc<Self> {
        Arc::new(Admission {
            max_total,
            max_per_addr,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Takes a place for a connection from `addr`, or says which cap refused it.
    pub fn admit(self: &Arc<Self>, addr: IpAddr) -> Result<Permit, Refused> {
        let mut c = self.counts.lock();
        if c.total >= self.max_total {
            return Err(Refused::Total {
                limit: self.max_total,
            });
        }
        let here = c.per_addr.get(&addr).copied().unwrap_or(0);
        if self.max_per_addr > 0 && here >= self.max_per_addr {
            return Err(Refused::PerAddress {
                addr,
                limit: self.max_per_addr,
            });
        }
        c.total += 1;
        c.per_addr.insert(addr, here + 1);
        Ok(Permit {
            admission: self.clone(),
            addr,
        })
    }

    /// Connections held now.
    pub fn held(&self) -> usize {
        self.counts.lock().total
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.admission.counts.lock();
        c.total -= 1;
        if let hashbrown::hash_map::Entry::Occupied(mut e) = c.per_addr.entry(self.addr) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_refuse_and_dropped_permits_give_places_back() {
        let a = Admission::new(3, 2);
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let two: IpAddr = "192.0.2.2".parse().unwrap();
        let p1 = a.admit(one).unwrap();
        let _p2 = a.admit(one).unwrap();
        assert_eq!(
            a.admit(one).unwrap_err(),
            Refused::PerAddress {
                addr: one,
                limit: 2
            }
        );
        let _p3 = a.admit(two).unwrap();
        assert_eq!(a.admit(two).unwrap_err(), Refused::Total { limit: 3 });
        drop(p1);
        assert_eq!(a.held(), 2);
        assert!(a.admit(one).is_ok());
    }

    #[test]
    fn zero_means_no_cap_per_address() {
        let a = Admission::new(10, 0);
        let ip: IpAddr = "::1".parse().unwrap();
        let permits: Vec<_> = (0..10).map(|_| a.admit(ip).unwrap()).collect();
        assert_eq!(permits.len(), 10);
        assert!(matches!(a.admit(ip), Err(Refused::Total { .. })));
    }
}
