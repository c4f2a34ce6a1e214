//! Which peers are trusted to speak for the client: forwarded_allow_ips (forwarding headers) and
//! proxy_allow_ips (PROXY preambles) share this address and CIDR matching. Pure: never reads a
//! socket or a header.
use std::net::IpAddr;

use super::Peer;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Any,
    Net { addr: IpAddr, prefix: u8 },
}

/// A parsed forwarded_allow_ips or proxy_allow_ips. Unix-socket peers are always trusted: only
/// local processes reach them (gunicorn does the same for both settings).
#[derive(Debug, Clone, Default)]
pub struct TrustedPeers {
    rules: Vec<Rule>,
}

impl TrustedPeers {
    /// Entries were validated by config; an entry that still does not parse is ignored.
    pub fn parse(entries: &[String]) -> Self {
        let rules = entries
            .iter()
            .filter_map(|e| parse_rule(e.trim()))
            .collect();
        TrustedPeers { rules }
    }

    pub fn trusts(&self, peer: &Peer) -> bool {
        match peer {
            Peer::Unix => true,
            Peer::Tcp(addr) => self.rules.iter().any(|rule| rule_matches(rule, addr.ip())),
        }
    }
}

fn parse_rule(entry: &str) -> Option<Rule> {
    if entry == "*" {
        return Some(Rule::Any);
    }
    let (addr, prefix) = match entry.split_once('/') {
        Some((addr, prefix)) => (addr.parse::<IpAddr>().ok()?, prefix.parse::<u8>().ok()?),
        None => {
            let addr = entry.parse::<IpAddr>().ok()?;
            (addr, if addr.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some(Rule::Net { addr, prefix })
}

fn rule_matches(rule: &Rule, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (rule, ip) {
        (Rule::Any, _) => true,
        (
            Rule::Net {
                addr: IpAddr::V4(net),
                prefix,
            },
            IpAddr::V4(ip),
        ) => prefix_eq(
            u128::from(u32::from(*net)) << 96,
            u128::from(u32::from(ip)) << 96,
            *prefix,
        ),
        (
            Rule::Net {
                addr: IpAddr::V6(net),
                prefix,
            },
            IpAddr::V6(ip),
        ) => prefix_eq(u128::from(*net), u128::from(ip), *prefix),
        _ => false,
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - u32::from(prefix));
    a & mask == b & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> Peer {
        Peer::Tcp(std::net::SocketAddr::new(ip.parse().unwrap(), 1234))
    }

    fn trusted(entries: &[&str]) -> TrustedPeers {
        TrustedPeers::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn default_trusts_loopback_only() {
        let peers = trusted(&["127.0.0.1", "::1"]);
        assert!(peers.trusts(&peer("127.0.0.1")));
        assert!(peers.trusts(&peer("::1")));
        assert!(!peers.trusts(&peer("127.0.0.2")));
        assert!(!peers.trusts(&peer("10.0.0.1")));
        assert!(peers.trusts(&Peer::Unix));
    }

    #[test]
    fn cidr_ranges_and_wildcard() {
        let peers = trusted(&["10.0.0.0/8", "fd00::/8"]);
        assert!(peers.trusts(&peer("10.200.3.4")));
        assert!(!peers.trusts(&peer("11.0.0.1")));
        assert!(peers.trusts(&peer("fd12::1")));
        assert!(peers.trusts(&peer("::ffff:10.1.1.1")));
        assert!(trusted(&["*"]).trusts(&peer("8.8.8.8")));
        assert!(trusted(&["0.0.0.0/0"]).trusts(&peer("8.8.8.8")));
    }
}
