//! Where a peer domain's servers are (RFC 6120 §3.2.1): its static route when one is configured, else DNS SRV
//! `_xmpp-server._tcp.<domain>` (each target's A/AAAA, on the record's port), else, when the domain publishes no
//! such record, the domain's own A/AAAA on 5269. DNS is hickory-resolver's, over the system's resolv.conf or one
//! configured nameserver.

use std::collections::HashMap;
use std::net::SocketAddr;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

/// The port of a domain that publishes no SRV record (RFC 6120 §3.2.2, the fallback process).
const DEFAULT_PORT: u16 = 5269;

/// Which DNS federation asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nameserver {
    /// The system's (resolv.conf).
    System,
    /// This one, over UDP and TCP on its port (a local resolver, or a test's).
    At(SocketAddr),
    /// None: only statically routed domains are reached.
    Off,
}

/// Why no address was found for a peer domain.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no route to {domain} and DNS is off")]
    NoRoute { domain: String },
    #[error("{domain} offers no server-to-server service (its SRV target is '.')")]
    NoService { domain: String },
    #[error("{domain} has no address")]
    NoAddress { domain: String },
    #[error("DNS lookup of {name} failed: {source}")]
    Dns { name: String, source: NetError },
}

/// Why the resolver could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up DNS for federation ({nameserver:?}): {source}")]
pub struct ResolverSetupError {
    pub nameserver: Nameserver,
    pub source: NetError,
}

/// Static routes first, then DNS when there is a nameserver.
pub(crate) struct Resolver {
    routes: HashMap<String, SocketAddr>,
    dns: Option<TokioResolver>,
}

impl Resolver {
    pub(crate) fn new(
        routes: HashMap<String, SocketAddr>,
        nameserver: Nameserver,
    ) -> Result<Self, ResolverSetupError> {
        let fail = |source| ResolverSetupError { nameserver, source };
        let provider = TokioRuntimeProvider::default();
        let dns = match nameserver {
            Nameserver::Off => None,
            Nameserver::System => Some(
                TokioResolver::builder(provider)
                    .map_err(fail)?
                    .build()
                    .map_err(fail)?,
            ),
            Nameserver::At(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut server.connections {
                    c.port = addr.port();
                }
                let config = ResolverConfig::from_name_servers(vec![server]);
                Some(
                    TokioResolver::builder_with_config(config, provider)
                        .build()
                        .map_err(fail)?,
                )
            }
        };
        Ok(Resolver { routes, dns })
    }

    /// Whether domains without a static route may be looked up.
    pub(crate) fn has_dns(&self) -> bool {
        self.dns.is_some()
    }

    /// The addresses to try for `domain`, in order.
    pub(crate) async fn addresses(&self, domain: &str) -> Result<Vec<SocketAddr>, ResolveError> {
        if let Some(addr) = self.routes.get(domain) {
            return Ok(vec![*addr]);
        }
        let Some(dns) = &self.dns else {
            return Err(ResolveError::NoRoute {
                domain: domain.to_owned(),
            });
        };
        // Fully qualified, so no search domain of resolv.conf is appended.
        let srv_name = format!("_xmpp-server._tcp.{domain}.");
        let targets = match dns.srv_lookup(srv_name.as_str()).await {
            Ok(lookup) => {
                let mut srv: Vec<_> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::SRV(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect();
                // RFC 6120 §3.2.1 / RFC 2782: a single target '.' says there is no service.
                if srv.len() == 1 && srv[0].target.is_root() {
                    return Err(ResolveError::NoService {
                        domain: domain.to_owned(),
                    });
                }
                // Lowest priority first; among equals, the heavier first (a deterministic reading of the
                // weighting, which only spreads load).
                srv.sort_by_key(|s| (s.priority, std::cmp::Reverse(s.weight)));
                srv.into_iter()
                    .filter(|s| !s.target.is_root())
                    .map(|s| (s.target.to_ascii(), s.port))
                    .collect()
            }
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => {
                vec![(format!("{domain}."), DEFAULT_PORT)]
            }
            Err(source) => {
                return Err(ResolveError::Dns {
                    name: srv_name,
                    source,
                });
            }
        };
        let mut out = Vec::new();
        let mut last_error = None;
        for (host, port) in targets {
            match dns.lookup_ip(host.as_str()).await {
                Ok(ips) => out.extend(ips.iter().map(|ip| SocketAddr::new(ip, port))),
                Err(source) => last_error = Some((host, source)),
            }
        }
        match (out.is_empty(), last_error) {
            (false, _) => Ok(out),
            (true, Some((name, source)))
                if !source.is_no_records_found() && !source.is_nx_domain() =>
            {
                Err(ResolveError::Dns { name, source })
            }
            (true, _) => Err(ResolveError::NoAddress {
                domain: domain.to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_static_route_is_used_without_asking_dns() {
        let route: SocketAddr = "127.0.0.1:5270".parse().unwrap();
        // A nameserver nothing answers at: asking it would fail, so an answer proves it was not asked.
        let silent = Nameserver::At("127.0.0.1:9".parse().unwrap());
        let routes = HashMap::from([("b.example".to_owned(), route)]);
        let resolver = Resolver::new(routes, silent).expect("set up");
        assert_eq!(
            resolver.addresses("b.example").await.expect("routed"),
            vec![route]
        );
    }

    #[tokio::test]
    async fn without_dns_only_routed_domains_are_found() {
        let resolver = Resolver::new(HashMap::new(), Nameserver::Off).expect("set up");
        assert!(!resolver.has_dns());
        let err = resolver.addresses("c.example").await.expect_err("no route");
        assert!(
            matches!(err, ResolveError::NoRoute { ref domain } if domain == "c.example"),
            "{err}"
        );
    }
}
