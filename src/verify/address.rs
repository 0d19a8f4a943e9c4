//! Where a check may connect: the address policy (no loopback, link-local or unspecified address with
//! [`AddressPolicy::REMOTE`]), checked on every address a name resolves to, on address literals in keys, realms
//! and redirects, and on each redirect (no downgrade to plain HTTP, no other host for an `http://` key).

use super::*;

/// Which kinds of local addresses a check may connect to. Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7,
/// 100.64/10) are always allowed: on-premises registries such as `10.10.10.10:443` are normal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    /// 127/8, `::1`.
    pub loopback: bool,
    /// 169.254/16, fe80::/10, and the cloud metadata addresses outside them (`fd00:ec2::254`, `100.100.100.200`).
    pub link_local: bool,
    /// 0/8, `::`, broadcast and multicast: nothing a registry can be.
    pub unspecified: bool,
}

impl AddressPolicy {
    /// Every address (the `verify` command; `serve --verify-allow-local-addresses`).
    pub const ANY: Self = Self { loopback: true, link_local: true, unspecified: true };
    /// No loopback, link-local or unspecified address (the periodic checks' default).
    pub const REMOTE: Self = Self { loopback: false, link_local: false, unspecified: false };

    /// `Err(what the address is)` when the policy refuses `ip`, after unwrapping IPv4 addresses carried in IPv6 ones
    /// (IPv4-mapped and -compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`).
    pub fn check(&self, ip: IpAddr) -> Result<(), &'static str> {
        match address_class(ip) {
            Some(AddressClass::Loopback) if !self.loopback => Err("a loopback address"),
            Some(AddressClass::LinkLocal) if !self.link_local => Err("a link-local or cloud metadata address"),
            Some(AddressClass::Unspecified) if !self.unspecified => {
                Err("an unspecified, broadcast or multicast address")
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AddressClass {
    Loopback,
    LinkLocal,
    Unspecified,
}

pub(super) fn address_class(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                return v4_class(v4);
            }
            let segments = v6.segments();
            if v6.is_unspecified() || v6.is_multicast() {
                Some(AddressClass::Unspecified)
            } else if v6.is_loopback() {
                Some(AddressClass::Loopback)
            } else if segments[0] & 0xffc0 == 0xfe80 || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some(AddressClass::LinkLocal)
            } else {
                None
            }
        }
    }
}

pub(super) fn v4_class(v4: Ipv4Addr) -> Option<AddressClass> {
    if v4.is_loopback() {
        Some(AddressClass::Loopback)
    } else if v4.is_link_local() || v4 == Ipv4Addr::new(100, 100, 100, 200) {
        Some(AddressClass::LinkLocal)
    } else if v4.octets()[0] == 0 || v4.is_broadcast() || v4.is_multicast() {
        Some(AddressClass::Unspecified)
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address stands for, in the forms a connection can reach it by.
pub(super) fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // IPv4-mapped ::ffff:a.b.c.d and IPv4-translated ::ffff:0:a.b.c.d.
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low),
        // IPv4-compatible ::a.b.c.d (deprecated), but not `::` and `::1` themselves.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 || lo > 1 => Some(low),
        // NAT64 well-known prefix 64:ff9b::/96 and local-use 64:ff9b:1::/48.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, ..] => Some(low),
        // 6to4 2002:AABB:CCDD::/48.
        [0x2002, a, b, ..] => Some(Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8)),
        _ => None,
    }
}

/// A connection the checks refuse to make (an address the [`AddressPolicy`] refuses, a downgrade to plain HTTP).
#[derive(Debug)]
pub(super) struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Checks an address literal of a URL against the policy; names are checked by [`GuardedResolver`].
pub(super) fn check_url_host(url: &Url, policy: AddressPolicy) -> Result<(), Refused> {
    // `Url` writes every IPv4 spelling (`2130706433`, `0x7f.1`) in dotted form and IPv6 in brackets.
    let host = url.host_str().unwrap_or_default();
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let Ok(ip) = literal.parse::<IpAddr>() else { return Ok(()) };
    policy.check(ip).map_err(|what| Refused(refusal(&ip.to_string(), ip, what)))
}

pub(super) fn refusal(host: &str, ip: IpAddr, what: &str) -> String {
    let host = safe_text::line(host, MAX_HOST_CHARS);
    let named = if host == ip.to_string() { host } else { format!("{host} ({ip})") };
    format!(
        "refused to connect to {named}: {what}; periodic checks only reach registries on other hosts \
         (serve --verify-allow-local-addresses allows it)"
    )
}

/// The resolver of a client with a restricting [`AddressPolicy`]: resolves with the system resolver and refuses
/// the name when any of its addresses is refused, so that a name cannot reach what its address literal could not.
pub(super) struct GuardedResolver {
    pub(super) policy: AddressPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            for address in &addresses {
                if let Err(what) = policy.check(address.ip()) {
                    return Err(Box::new(Refused(refusal(&host, address.ip(), what))) as _);
                }
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The redirect rules: at most [`MAX_REDIRECTS`]; http or https only; a URL every HTTP client accepts; never from
/// HTTPS to HTTP, and plain HTTP only on the host of a request that started there; address literals checked
/// against the policy (names are checked by the resolver when connecting).
pub(super) fn redirect_policy(policy: AddressPolicy) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let next = attempt.url().clone();
        let Some(first) = attempt.previous().first().cloned() else { return attempt.follow() };
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(Refused(format!("more than {MAX_REDIRECTS} redirects")));
        }
        if let Err(reason) = usable_url(&next) {
            return attempt.error(Refused(format!("redirect refused: {reason}")));
        }
        if next.scheme() == "http" && (first.scheme() != "http" || !same_host(&first, &next)) {
            let reason = if first.scheme() == "https" {
                "from HTTPS to plain HTTP: credentials are never downgraded"
            } else {
                "to plain HTTP on another host"
            };
            return attempt.error(Refused(format!("redirect to {} refused: {reason}", shown_host(&next))));
        }
        if let Err(refused) = check_url_host(&next, policy) {
            return attempt.error(Refused(format!("redirect {refused}")));
        }
        attempt.follow()
    })
}

pub(super) fn same_host(a: &Url, b: &Url) -> bool {
    match (a.host_str(), b.host_str()) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

/// `host[:port]` of a URL, display-safe.
pub(super) fn shown_host(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    let shown = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    safe_text::line(&shown, MAX_HOST_CHARS + 6)
}

/// Whether a URL can be requested at all: http or https, a host of at most [`MAX_HOST_CHARS`], at most
/// [`MAX_URL_BYTES`] long and acceptable to `http::Uri`.
pub(super) fn usable_url(url: &Url) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme {:?} is neither http nor https", safe_text::line(url.scheme(), 32)));
    }
    match url.host_str() {
        None | Some("") => return Err("no host".to_owned()),
        Some(host) if host.chars().count() > MAX_HOST_CHARS => {
            return Err(format!("host longer than {MAX_HOST_CHARS} characters"));
        }
        Some(_) => {}
    }
    if url.as_str().len() > MAX_URL_BYTES {
        return Err(format!("URL longer than {MAX_URL_BYTES} bytes"));
    }
    url.as_str().parse::<hyper::Uri>().map(|_| ()).map_err(|e| format!("unusable URL: {e}"))
}
