//! Where a peer domain's servers are (RFC 6120 §3.2.1): its static route when one is configured, else DNS SRV
//! `_xmpps-server._tcp.<domain>` (XEP-0368 direct TLS) and `_xmpp-server._tcp.<domain>` (STARTTLS), together in
//! priority order (each target's A/AAAA, on the record's port), else, when the domain publishes neither, the
//! domain's own A/AAAA on 5269 (STARTTLS). DNS is hickory-resolver's, over the system's resolv.conf or one
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

/// One place to reach a peer's server, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Where.
    pub addr: SocketAddr,
    /// TLS from the first byte (XEP-0368, ALPN `xmpp-server`) rather than STARTTLS.
    pub direct_tls: bool,
}

impl Target {
    /// A STARTTLS server at `addr`.
    pub fn starttls(addr: SocketAddr) -> Self {
        Target {
            addr,
            direct_tls: false,
        }
    }
}

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
    routes: HashMap<String, Target>,
    dns: Option<TokioResolver>,
}

impl Resolver {
    pub(crate) fn new(
        routes: HashMap<String, Target>,
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
    pub(crate) async fn addresses(&self, domain: &str) -> Result<Vec<Target>, ResolveError> {
        if let Some(target) = self.routes.get(domain) {
            return Ok(vec![*target]);
        }
        let Some(dns) = &self.dns else {
            return Err(ResolveError::NoRoute {
                domain: domain.to_owned(),
            });
        };
        // XEP-0368 §3: both services' records are merged and tried by priority; a direct-TLS answer that fails
        // leaves the STARTTLS ones (and the other way round).
        let direct = srv(dns, domain, "_xmpps-server._tcp", true).await;
        let starttls = srv(dns, domain, "_xmpp-server._tcp", false).await;
        let mut srv = match (direct, starttls) {
            (Ok(Some(mut d)), Ok(Some(s))) => {
                d.extend(s);
                d
            }
            (Ok(Some(d)), Ok(None) | Err(_)) => d,
            (Ok(None) | Err(_), Ok(Some(s))) => s,
            // Neither publishes: the domain itself on 5269 (RFC 6120 §3.2.2).
            (Ok(None), Ok(None)) => vec![(0, 0, format!("{domain}."), DEFAULT_PORT, false)],
            (_, Err(e)) => return Err(e),
            (Err(e), Ok(None)) => return Err(e),
        };
        // RFC 6120 §3.2.1 / RFC 2782: only targets '.' say there is no service.
        if srv.iter().all(|s| s.2 == ".") {
            return Err(ResolveError::NoService {
                domain: domain.to_owned(),
            });
        }
        // Lowest priority first; among equals, the heavier first (a deterministic reading of the weighting,
        // which only spreads load).
        srv.sort_by_key(|s| (s.0, std::cmp::Reverse(s.1)));
        let mut out = Vec::new();
        let mut last_error = None;
        for (_, _, host, port, direct_tls) in srv.into_iter().filter(|s| s.2 != ".") {
            match dns.lookup_ip(host.as_str()).await {
                Ok(ips) => out.extend(ips.iter().map(|ip| Target {
                    addr: SocketAddr::new(ip, port),
                    direct_tls,
                })),
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

/// The SRV records of `service` for `domain` as (priority, weight, target, port, direct TLS); `None` when there
/// are none.
async fn srv(
    dns: &TokioResolver,
    domain: &str,
    service: &str,
    direct_tls: bool,
) -> Result<Option<Vec<(u16, u16, String, u16, bool)>>, ResolveError> {
    // Fully qualified, so no search domain of resolv.conf is appended.
    let name = format!("{service}.{domain}.");
    match dns.srv_lookup(name.as_str()).await {
        Ok(lookup) => Ok(Some(
            lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(s) => Some((
                        s.priority,
                        s.weight,
                        if s.target.is_root() {
                            ".".to_owned()
                        } else {
                            s.target.to_ascii()
                        },
                        s.port,
                        direct_tls,
                    )),
                    _ => None,
                })
                .collect(),
        )),
        Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(None),
        Err(source) => Err(ResolveError::Dns { name, source }),
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
        let routes = HashMap::from([("b.example".to_owned(), Target::starttls(route))]);
        let resolver = Resolver::new(routes, silent).expect("set up");
        assert_eq!(
            resolver.addresses("b.example").await.expect("routed"),
            vec![Target::starttls(route)]
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
