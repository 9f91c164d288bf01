//! Outbound network of adapters. HTTP (`wasi:http`): every request must target a host of the
//! storage's grant, and every address that host resolves to must pass the operator's address
//! policy. TCP (`wasi:sockets`, for Redis): connections only to an address of the granted host, on
//! the granted port, under the same policy.
//!
//! The check runs at connect time, for each request, not once when the storage is created, so
//! DNS rebinding cannot turn an allowed name into an internal address later (Label Studio's
//! CVE-2023-47116 and CVE-2025-25297). Plain-HTTP requests are sent to the very address that was
//! checked; HTTPS requests reconnect by name, where a rebinding to another address would fail
//! the certificate check for that name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use http::uri::{Authority, Scheme};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::grants::HostRule;

const DNS_FAILURE: &str = "cannot resolve";

/// The `wasi:http` hooks of one adapter instance.
pub struct Egress {
    pub rules: Vec<HostRule>,
    pub allow_private_addresses: bool,
    /// Cap on the connect, first-byte and between-bytes timeouts (wasmtime's default is 600 s).
    pub timeout: std::time::Duration,
}

/// Whether `ip` is a public unicast address: not loopback, private (RFC 1918, ULA), link-local
/// (incl. the 169.254.169.254 metadata service), shared (CGNAT), unspecified, broadcast,
/// multicast or documentation space. IPv6 forms that carry an IPv4 address are judged by it:
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`) and 6to4 (`2002:AABB:CCDD::/16`);
/// NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`) and Teredo (`2001::/32`), whose IPv4 side cannot be
/// judged here, are refused.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if let Some(v4) = v6.to_ipv4() {
                // `to_ipv4` covers mapped and compatible forms (`::1` becomes 0.0.0.1: not public).
                is_public_v4(v4)
            } else if s[0] == 0x2002 {
                is_public_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8))
            } else {
                is_public_v6(v6)
            }
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && ip.segments()[1] == 0x0db8
        || first == 0x2001 && ip.segments()[1] == 0x0000
        || first == 0x0064 && ip.segments()[1] == 0xff9b)
}

/// The addresses `host:port` may be reached at, or why not (for the log: the adapter only learns
/// "denied", or a DNS error when the name does not resolve).
async fn admit(rules: &[HostRule], allow_private: bool, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if !rules.iter().any(|r| r.allows(host, port)) {
        return Err(format!("{host}:{port} is not in the storage's grant"));
    }
    let addrs: Vec<SocketAddr> =
        tokio::net::lookup_host((host, port)).await.map_err(|e| format!("{DNS_FAILURE} {host}: {e}"))?.collect();
    if addrs.is_empty() {
        return Err(format!("{DNS_FAILURE} {host}: no address"));
    }
    if let Some(bad) = addrs.iter().find(|a| !allow_private && !is_public(a.ip())) {
        return Err(format!(
            "{host} resolves to the reserved address {} (allow with --allow-private-addresses)",
            bad.ip()
        ));
    }
    Ok(addrs)
}

/// The `wasi:sockets` check of a TCP grant to `host:port`: allows the implicit wildcard bind
/// that precedes `connect`, and connections to an address `host` resolves to (now, at connect
/// time) on `port` that passes the address policy. Everything else (listen, accept, UDP) is refused.
pub fn tcp_check(
    host: String,
    port: u16,
    allow_private: bool,
) -> impl Fn(
    SocketAddr,
    wasmtime_wasi::sockets::SocketAddrUse,
) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + Sync>>
+ Send
+ Sync
+ 'static {
    use wasmtime_wasi::sockets::SocketAddrUse;
    move |addr, usage| {
        let host = host.clone();
        Box::pin(async move {
            match usage {
                SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
                SocketAddrUse::TcpConnect => {
                    if addr.port() != port {
                        tracing::warn!(
                            "adapter TCP connection refused: port {} is not the granted {port}",
                            addr.port()
                        );
                        return false;
                    }
                    let lookup = tokio::task::spawn_blocking(move || {
                        std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port)).map(|a| a.collect::<Vec<_>>())
                    });
                    let resolved = matches!(lookup.await, Ok(Ok(addrs)) if addrs.iter().any(|a| a.ip() == addr.ip()));
                    if !resolved {
                        tracing::warn!("adapter TCP connection refused: {addr} is not an address of the granted host");
                        return false;
                    }
                    if !allow_private && !is_public(addr.ip()) {
                        tracing::warn!(
                            "adapter TCP connection refused: {addr} is reserved (allow with --allow-private-addresses)"
                        );
                        return false;
                    }
                    true
                }
                _ => false,
            }
        })
    }
}

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<(http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>,
            > + Send,
    > {
        let rules = self.rules.clone();
        let allow_private = self.allow_private_addresses;
        let cap = |t: Option<std::time::Duration>| Some(t.map_or(self.timeout, |t| t.min(self.timeout)));
        let options = Some(RequestOptions {
            connect_timeout: cap(options.and_then(|o| o.connect_timeout)),
            first_byte_timeout: cap(options.and_then(|o| o.first_byte_timeout)),
            between_bytes_timeout: cap(options.and_then(|o| o.between_bytes_timeout)),
        });
        Box::new(async move {
            use http_body_util::BodyExt;

            let uri = request.uri().clone();
            let https = uri.scheme() == Some(&Scheme::HTTPS);
            let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?.trim_matches(['[', ']']).to_string();
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let addrs = match admit(&rules, allow_private, &host, port).await {
                Ok(addrs) => addrs,
                Err(why) if why.starts_with(DNS_FAILURE) => {
                    tracing::warn!("adapter HTTP request failed: {why}");
                    return Err(Error::DnsError { rcode: Some("NXDOMAIN".into()), info_code: None });
                }
                Err(why) => {
                    tracing::warn!("adapter HTTP request refused: {why}");
                    return Err(Error::HttpRequestDenied);
                }
            };
            if !https {
                // Connect to the address just checked; the Host header keeps the name.
                let mut parts = uri.into_parts();
                parts.authority =
                    Some(Authority::try_from(addrs[0].to_string()).map_err(|_| Error::HttpRequestUriInvalid)?);
                *request.uri_mut() = http::Uri::from_parts(parts).map_err(|_| Error::HttpRequestUriInvalid)?;
            }
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::127.0.0.1",
            "::ffff:169.254.169.254",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "64:ff9b:1::a9fe:a9fe",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["52.216.1.1", "8.8.8.8", "2600:1f18::1", "2002:34d8:101::1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn requests_outside_the_grant_or_to_reserved_addresses_are_refused() {
        let rules = vec![HostRule::Exact { host: "localhost".into(), port: 9000 }];
        assert!(admit(&rules, false, "example.com", 9000).await.unwrap_err().contains("not in the storage's grant"));
        assert!(admit(&rules, false, "localhost", 9001).await.unwrap_err().contains("not in the storage's grant"));
        assert!(admit(&rules, false, "localhost", 9000).await.unwrap_err().contains("reserved address"));
        assert!(!admit(&rules, true, "localhost", 9000).await.unwrap().is_empty());
        let metadata = vec![HostRule::Exact { host: "169.254.169.254".into(), port: 80 }];
        assert!(
            admit(&metadata, false, "169.254.169.254", 80)
                .await
                .unwrap_err()
                .contains("reserved address 169.254.169.254")
        );
    }
}
