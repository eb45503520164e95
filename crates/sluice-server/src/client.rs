//! Who a request comes from: the client's address, resolved through trusted reverse proxies.
//!
//! Behind a reverse proxy every connection comes from the proxy, so the peer address alone
//! would make all clients one. [`TrustedProxies`] lists the proxies (`--trusted-proxies`,
//! CIDRs) whose forwarding header is believed; from any other peer that header is ignored,
//! since a client can send it itself. The header is read from the right (the entry the nearest
//! proxy appended) and the first address that is not itself a trusted proxy is the client, as
//! nginx's `real_ip_recursive` does. A client can prepend what it likes, but never get past
//! the entry a trusted proxy wrote.
//!
//! [`ClientId`] is the result: the key of the per-client caps and of the Flow.js scope.

use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::{FromRequest, HttpRequest};
use std::convert::Infallible;
use std::fmt;
use std::future::{ready, Ready};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// The client a request comes from, after proxy resolution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ClientId(Option<IpAddr>);

impl ClientId {
    /// The client of `req`, resolved with the [`TrustedProxies`] registered as app data (none
    /// when absent, so the peer address is the client).
    pub fn of(req: &HttpRequest) -> ClientId {
        let peer = req.peer_addr().map(|a| a.ip());
        match req.app_data::<TrustedProxies>() {
            Some(trusted) => ClientId(peer.map(|peer| trusted.resolve(peer, req.headers()))),
            None => ClientId(peer),
        }
    }

    /// A client known by its address (`ClientId::default()` is a client without one).
    pub fn from_ip(ip: IpAddr) -> ClientId {
        ClientId(Some(ip))
    }

    /// The client's address; `None` when the transport has none (in-process tests), in which
    /// case per-client caps do not apply.
    pub fn ip(&self) -> Option<IpAddr> {
        self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}

impl FromRequest for ClientId {
    type Error = Infallible;
    type Future = Ready<Result<ClientId, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(ClientId::of(req)))
    }
}

/// Which forwarding header the trusted proxies write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1` (nginx, HAProxy `option forwardfor`, Traefik, Caddy, cloud load balancers).
    #[default]
    #[value(name = "x-forwarded-for")]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1` (HAProxy `option forwarded`).
    Forwarded,
}

/// The reverse proxies whose forwarding header is believed.
///
/// Only one header is read (see [`ForwardedHeader`]): a proxy that appends to one passes the
/// other through untouched, so a client could otherwise forge its address in the other.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<Cidr>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// Proxies in `nets`, which write `header`.
    pub fn new(nets: Vec<Cidr>, header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies { nets, header }
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(ip))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted proxy; otherwise the
    /// right-most forwarded address that is not a trusted proxy. An entry that is not an address
    /// (`unknown`, an obfuscated name) stops the walk at the proxy that wrote it; if every entry
    /// is a trusted proxy, the left-most one is the client.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for entry in self.entries(headers).iter().rev() {
            let Some(ip) = entry else { return client };
            client = *ip;
            if !self.contains(client) {
                return client;
            }
        }
        client
    }

    /// The forwarded addresses, left (farthest) to right (nearest), across repeated headers;
    /// `None` for an entry that is not an address.
    fn entries(&self, headers: &HeaderMap) -> Vec<Option<IpAddr>> {
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        let mut out = Vec::new();
        for value in headers.get_all(name) {
            let Ok(value) = value.to_str() else {
                out.push(None);
                continue;
            };
            for element in value.split(',') {
                let address = match self.header {
                    ForwardedHeader::XForwardedFor => Some(element.trim()),
                    ForwardedHeader::Forwarded => forwarded_for(element),
                };
                out.push(address.and_then(parse_address));
            }
        }
        out
    }
}

/// The `for=` value of one RFC 7239 element (`for=192.0.2.60;proto=http;by=203.0.113.43`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then(|| value.trim().trim_matches('"'))
    })
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_address(text: &str) -> Option<IpAddr> {
    IpAddr::from_str(text)
        .ok()
        .or_else(|| SocketAddr::from_str(text).ok().map(|a| a.ip()))
        .or_else(|| text.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `::1/128`; a bare address is
/// a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                same_prefix(u128::from(u32::from(net)) << 96, u128::from(u32::from(ip)) << 96, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(u128::from(net), u128::from(ip), self.prefix),
            _ => false,
        }
    }
}

fn same_prefix(a: u128, b: u128, prefix: u8) -> bool {
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
    a & mask == b & mask
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let bad = || format!("`{text}` is not an address or a CIDR (e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        map
    }

    fn proxies(nets: &[&str], header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect(), header)
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.200.3")) && !net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped IPv6 counts as IPv4");
        let host: Cidr = "127.0.0.1".parse().unwrap();
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")) && !v6.contains(ip("10.0.0.1")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "", "10.0.0.0/", "example.com/8", "1.2.3.4/-1"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarding_headers_are_ignored_from_untrusted_peers() {
        let trusted = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let forged = headers(&[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(trusted.resolve(ip("203.0.113.5"), &forged), ip("203.0.113.5"));
        assert_eq!(TrustedProxies::default().resolve(ip("10.0.0.1"), &forged), ip("10.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.7"], ForwardedHeader::XForwardedFor);
        let peer = ip("10.0.0.1");
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("x-forwarded-for", "198.51.100.1")], "198.51.100.1"),
            // The client prepended a forged entry; the proxies' entries come after it.
            (&[("x-forwarded-for", "1.1.1.1, 198.51.100.1, 192.0.2.7")], "198.51.100.1"),
            (&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "198.51.100.1, 10.9.9.9")], "198.51.100.1"),
            (&[("x-forwarded-for", "198.51.100.1:5555")], "198.51.100.1"),
            (&[("x-forwarded-for", "[2001:db8::5]:443")], "2001:db8::5"),
            // Every hop is a proxy: the left-most one.
            (&[("x-forwarded-for", "10.1.1.1, 10.2.2.2")], "10.1.1.1"),
            // A proxy wrote something that is not an address: the walk stops at that proxy.
            (&[("x-forwarded-for", "198.51.100.1, unknown, 10.3.3.3")], "10.3.3.3"),
            (&[("x-forwarded-for", "")], "10.0.0.1"),
            (&[], "10.0.0.1"),
            // The other header is not read.
            (&[("forwarded", "for=198.51.100.1")], "10.0.0.1"),
        ];
        for (pairs, want) in cases {
            let map = headers(pairs);
            assert_eq!(trusted.resolve(peer, &map), ip(want), "{pairs:?}");
        }
    }

    #[test]
    fn rfc_7239_forwarded_is_read_when_configured() {
        let trusted = proxies(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        let peer = ip("10.0.0.1");
        let cases: &[(&str, &str)] = &[
            ("for=198.51.100.1", "198.51.100.1"),
            ("for=1.1.1.1, for=198.51.100.1;proto=https;by=10.0.0.1", "198.51.100.1"),
            ("For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=\"198.51.100.1:80\", for=10.4.4.4", "198.51.100.1"),
            ("for=1.1.1.1, for=_hidden, for=10.4.4.4", "10.4.4.4"),
            ("proto=https", "10.0.0.1"),
        ];
        for (value, want) in cases {
            let mut map = HeaderMap::new();
            map.insert(HeaderName::from_static("forwarded"), HeaderValue::from_str(value).unwrap());
            map.insert(HeaderName::from_static("x-forwarded-for"), HeaderValue::from_static("9.9.9.9"));
            assert_eq!(trusted.resolve(peer, &map), ip(want), "{value}");
        }
    }

    #[test]
    fn a_request_without_trusted_proxies_is_its_peer() {
        let req = actix_web::test::TestRequest::default()
            .peer_addr("127.0.0.2:4000".parse().unwrap())
            .insert_header(("X-Forwarded-For", "198.51.100.1"))
            .to_http_request();
        assert_eq!(ClientId::of(&req), ClientId::from_ip(ip("127.0.0.2")));
        let behind = actix_web::test::TestRequest::default()
            .peer_addr("127.0.0.1:4000".parse().unwrap())
            .insert_header(("X-Forwarded-For", "198.51.100.1"))
            .app_data(proxies(&["127.0.0.1"], ForwardedHeader::XForwardedFor))
            .to_http_request();
        assert_eq!(ClientId::of(&behind).to_string(), "198.51.100.1");
        assert_eq!(ClientId::of(&actix_web::test::TestRequest::default().to_http_request()).to_string(), "unknown");
    }
}
