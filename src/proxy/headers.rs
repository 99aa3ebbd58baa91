//! Headers between client and upstream: hop-by-hop removal, credential stripping,
//! forwarded-* and identity headers, and the client address they are based on.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH, HOST, HeaderName, HeaderValue};
use ipnet::IpNet;

use crate::auth::credential::{X_API_KEY, carries_basic};
use crate::model::{AuthMethodId, ProjectId, TriggerId};

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
pub const X_REQUEST_ID: &str = "x-request-id";
pub const X_TRIGGER_ID: &str = "x-hookgate-trigger-id";
pub const X_PROJECT_ID: &str = "x-hookgate-project-id";
pub const X_AUTH_METHOD_ID: &str = "x-hookgate-auth-method-id";

/// The client's address: the TCP peer, or, when the peer is a trusted proxy, the
/// right-most `x-forwarded-for` entry that is not itself a trusted proxy.
pub fn client_address(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    if !is_trusted(peer_ip, trusted) {
        return peer_ip;
    }
    let mut client = peer_ip;
    for entry in forwarded_entries(headers).rev() {
        let Ok(ip) = entry.parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(client, trusted) {
            break;
        }
    }
    client
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

fn forwarded_entries(headers: &HeaderMap) -> impl DoubleEndedIterator<Item = &str> {
    let entries: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    entries.into_iter()
}

/// Removes hop-by-hop headers, including every header `connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Removes the credentials hookgate consumed: every `x-api-key` (and `x_api_key`, which
/// CGI-style upstreams read as the same), and `authorization` when any comma-separated
/// element of it uses the Basic scheme (other schemes are the upstream's business, but
/// `Bearer x, Basic <token>` still carries a password an upstream may read).
pub fn strip_credentials(headers: &mut HeaderMap) {
    let keys: Vec<HeaderName> = headers
        .keys()
        .filter(|name| cgi_spelling(name) == X_API_KEY)
        .cloned()
        .collect();
    for name in keys {
        headers.remove(name);
    }
    let basic = headers
        .get_all(AUTHORIZATION)
        .iter()
        .any(|v| carries_basic(v.as_bytes()));
    if basic {
        headers.remove(AUTHORIZATION);
    }
}

/// What the upstream learns about the request besides the client's own headers.
pub struct Forwarding<'a> {
    pub peer: SocketAddr,
    pub trusted: &'a [IpNet],
    pub tls: bool,
    pub upstream_authority: String,
    pub trigger_id: TriggerId,
    pub project_id: ProjectId,
    pub method_id: Option<AuthMethodId>,
    pub request_id: &'a HeaderValue,
}

/// Turns the client's headers into the upstream's, in place.
// TODO(hookgate): rewrite headers in one pass with prebuilt header names and no
// per-header allocation; the profile shows this as the largest cost after the
// request future's copies. Remove when `make bench` shows the gain.
pub fn prepare_upstream_headers(
    headers: &mut HeaderMap,
    client_host: Option<HeaderValue>,
    f: &Forwarding<'_>,
) {
    let forwarded_for = forwarded_for(headers, f.peer, f.trusted);
    strip_hop_by_hop(headers);
    headers.remove(CONTENT_LENGTH); // re-framed from the body actually sent
    let spoofable: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_spoofable(n))
        .cloned()
        .collect();
    for name in spoofable {
        headers.remove(name);
    }

    set(headers, HOST, &f.upstream_authority);
    headers.remove(X_FORWARDED_HOST);
    if let Some(host) = client_host.filter(|h| is_plausible_host(h.as_bytes())) {
        headers.insert(X_FORWARDED_HOST, host);
    }
    set(
        headers,
        X_FORWARDED_PROTO,
        if f.tls { "https" } else { "http" },
    );
    set(headers, X_FORWARDED_FOR, &forwarded_for);
    headers.insert(X_REQUEST_ID, f.request_id.clone());
    set(headers, X_TRIGGER_ID, &f.trigger_id.to_string());
    set(headers, X_PROJECT_ID, &f.project_id.to_string());
    if let Some(method) = f.method_id {
        set(headers, X_AUTH_METHOD_ID, &method.to_string());
    }
}

/// Headers hookgate sets on every upstream request; a client's copy is replaced.
const FORWARDING: [&str; 4] = [
    X_FORWARDED_FOR,
    X_FORWARDED_HOST,
    X_FORWARDED_PROTO,
    X_REQUEST_ID,
];

/// Client headers that claim a client address. `x-forwarded-for`, set by hookgate from
/// the peer, is the upstream's one source of it; a client's copy of these would let it
/// pose as any address to an upstream that trusts one of them.
const ADDRESS_HEADERS: [&str; 6] = [
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "x-original-forwarded-for",
    "true-client-ip",
    "cf-connecting-ip",
];

/// A client host that can go upstream as `x-forwarded-host`: a non-empty host[:port]
/// of letters, digits, `.`, `-`, `:`, `[` and `]` (IPv6 literals). Anything else (userinfo
/// `@`, spaces, quotes, commas, slashes) is left out rather than passed on for an
/// upstream to build links or redirects from.
fn is_plausible_host(host: &[u8]) -> bool {
    !host.is_empty()
        && host
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(b))
}

/// A header name as CGI-style servers read it (PHP, WSGI, Rack: `HTTP_X_API_KEY`), where
/// `_` and `-` are the same character.
fn cgi_spelling(name: &HeaderName) -> String {
    name.as_str().replace('_', "-")
}

/// Client headers an upstream could take for something they are not: any
/// `x-hookgate-*` spelling (hookgate's identity headers), underscore spellings of the
/// forwarding headers, any spelling of the client-address headers, and `proxy`, which
/// CGI turns into `HTTP_PROXY` (httpoxy).
fn is_spoofable(name: &HeaderName) -> bool {
    let spelled = cgi_spelling(name);
    spelled.starts_with("x-hookgate-")
        || (name.as_str().contains('_') && FORWARDING.contains(&spelled.as_str()))
        || ADDRESS_HEADERS.contains(&spelled.as_str())
        || name.as_str() == "proxy"
}

/// One `x-forwarded-for` value: the peer alone, or the trusted chain plus the peer.
fn forwarded_for(headers: &HeaderMap, peer: SocketAddr, trusted: &[IpNet]) -> String {
    let peer_ip = peer.ip().to_canonical().to_string();
    if !is_trusted(peer.ip().to_canonical(), trusted) {
        return peer_ip;
    }
    let mut chain: Vec<&str> = forwarded_entries(headers).collect();
    chain.push(&peer_ip);
    chain.join(", ")
}

fn set(headers: &mut HeaderMap, name: impl http::header::IntoHeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// The client's request id when it is sane (1–128 visible ASCII characters without
/// separators that break log parsing), else a new UUID.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    let sane = headers.get(X_REQUEST_ID).filter(|v| {
        let bytes = v.as_bytes();
        (1..=128).contains(&bytes.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(b))
    });
    match sane {
        Some(value) => value.clone(),
        None => HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("invalid")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    #[test]
    fn connection_named_and_hop_by_hop_headers_are_removed() {
        let mut map = headers(&[
            ("connection", "keep-alive, X-Debug-Bypass"),
            ("x-debug-bypass", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "gzip"),
            ("trailer", "X-T"),
            ("proxy-connection", "keep-alive"),
            ("upgrade", "h2c"),
            ("http2-settings", "AAMAAABkAARAAAAAAAIAAAAA"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut map);
        assert_eq!(map.len(), 1, "{map:?}");
        assert!(map.contains_key("x-kept"));
    }

    #[test]
    fn bearer_authorization_passes_and_basic_is_stripped() {
        let mut bearer = headers(&[("authorization", "Bearer t"), ("x-api-key", "k")]);
        strip_credentials(&mut bearer);
        assert_eq!(
            bearer.get("authorization").map(|v| v.as_bytes()),
            Some(&b"Bearer t"[..])
        );
        assert!(!bearer.contains_key("x-api-key"));

        let mut basic = headers(&[("authorization", "bAsIc aG9vazpzM2NyZXQtcGFzcw==")]);
        strip_credentials(&mut basic);
        assert!(basic.is_empty());

        let mut later = headers(&[("authorization", "Bearer x, basic aG9vazpzM2NyZXQtcGFzcw==")]);
        strip_credentials(&mut later);
        assert!(later.is_empty());
    }

    #[test]
    fn only_plausible_hosts_become_forwarded_host() {
        for host in [
            "hooks.example.com",
            "a-b.example:8443",
            "[::1]:8080",
            "10.0.0.1",
        ] {
            assert!(is_plausible_host(host.as_bytes()), "{host}");
        }
        for host in [
            "",
            "u:p@evil.example",
            "a b",
            "\"x\"",
            "a/b",
            "a,b",
            "evil.example'",
        ] {
            assert!(!is_plausible_host(host.as_bytes()), "{host}");
        }
    }

    #[test]
    fn underscore_spellings_of_reserved_headers_are_spoofable() {
        for name in [
            "x-hookgate-auth-method-id",
            "x_hookgate_auth_method_id",
            "x-hookgate_x",
            "x_forwarded_for",
            "x_request_id",
            "proxy",
            "forwarded",
            "x-real-ip",
            "x_real_ip",
            "x-client-ip",
            "true-client-ip",
            "cf-connecting-ip",
            "x-original-forwarded-for",
        ] {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("name");
            assert!(is_spoofable(&name), "{name}");
        }
        for name in [
            "x-forwarded-for",
            "x_kept",
            "x-hookgate",
            "proxy-status",
            "x-real",
        ] {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("name");
            assert!(!is_spoofable(&name), "{name}");
        }
    }

    #[test]
    fn underscore_spellings_of_the_key_header_are_credentials() {
        let mut map = headers(&[("x_api_key", "k"), ("X_Api-Key", "k"), ("x_api_keys", "k")]);
        strip_credentials(&mut map);
        assert_eq!(map.len(), 1, "{map:?}");
        assert!(map.contains_key("x_api_keys"));
    }

    #[test]
    fn forwarded_for_is_the_peer_unless_the_peer_is_trusted() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let map = headers(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-for", "10.9.9.9"),
        ]);
        assert_eq!(forwarded_for(&map, peer, &[]), "127.0.0.1");
        assert_eq!(client_address(peer, &map, &[]).to_string(), "127.0.0.1");

        let trusted: Vec<IpNet> = vec!["127.0.0.0/8".parse().expect("net")];
        assert_eq!(
            forwarded_for(&map, peer, &trusted),
            "10.0.0.1, 10.9.9.9, 127.0.0.1"
        );
        assert_eq!(client_address(peer, &map, &trusted).to_string(), "10.9.9.9");
    }

    #[test]
    fn insane_request_ids_are_replaced() {
        let kept = request_id(&headers(&[("x-request-id", "abc-123")]));
        assert_eq!(kept, "abc-123");
        let replaced = request_id(&headers(&[("x-request-id", "a b\"c")]));
        assert_eq!(replaced.len(), 36);
    }
}
