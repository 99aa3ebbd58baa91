//! Headers between client and upstream: hop-by-hop removal, credential stripping,
//! forwarded-* and identity headers, and the client address they are based on.

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderMap;
use http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH, HOST, HeaderName, HeaderValue};
use http::header::{Entry, OccupiedEntry};
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

/// The same names, made once: inserting by `&str` would parse the name every time.
mod names {
    use http::HeaderName;

    pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static(super::X_FORWARDED_FOR);
    pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static(super::X_FORWARDED_HOST);
    pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static(super::X_FORWARDED_PROTO);
    pub static X_REQUEST_ID: HeaderName = HeaderName::from_static(super::X_REQUEST_ID);
    pub static X_TRIGGER_ID: HeaderName = HeaderName::from_static(super::X_TRIGGER_ID);
    pub static X_PROJECT_ID: HeaderName = HeaderName::from_static(super::X_PROJECT_ID);
    pub static X_AUTH_METHOD_ID: HeaderName = HeaderName::from_static(super::X_AUTH_METHOD_ID);
}

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
///
/// Scans the names first and changes the map only when one is there: most responses
/// carry none, and a scan is cheaper than nine removals.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(|name| is_hop_by_hop(name.as_str())) {
        return;
    }
    for name in connection_named(headers) {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
}

/// The header names a `connection` field lists (hop-by-hop by the client's say-so).
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(CONNECTION)
        .iter()
        // Bytes, not text: a non-ASCII byte elsewhere in the value must not hide a name.
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .filter_map(|name| HeaderName::from_bytes(name.trim_ascii()).ok())
        .collect()
}

/// What the upstream learns about the request besides the client's own headers.
pub struct Forwarding<'a> {
    pub peer: SocketAddr,
    /// `peer`'s address as a header value.
    pub peer_value: &'a HeaderValue,
    pub trusted: &'a [IpNet],
    pub tls: bool,
    /// The client's `host` (or absolute-form authority), for `x-forwarded-host`.
    pub client_host: Option<HeaderValue>,
    /// `host` for the upstream: its authority.
    pub upstream_host: HeaderValue,
    /// The trigger was protected, so the credentials hookgate consumed are removed.
    pub protected: bool,
    pub trigger_id: TriggerId,
    pub project_id: ProjectId,
    pub method_id: Option<AuthMethodId>,
    pub request_id: &'a HeaderValue,
}

/// The upstream's headers, made from the client's in one pass.
///
/// The client's fields go over one by one unless [`ClientHeaders::keeps`] drops them
/// (hop-by-hop, framing, credentials, spoofable, the ones hookgate sets); then come the
/// forwarding and identity headers. The new map is sized once, and only headers whose
/// value hookgate makes are allocated.
pub fn upstream_headers(client: HeaderMap, f: &Forwarding<'_>) -> HeaderMap {
    let forwarded_for = if is_trusted(f.peer.ip().to_canonical(), f.trusted) {
        forwarded_for(&client, f.peer, f.trusted)
    } else {
        f.peer_value.clone()
    };
    let mut upstream = HeaderMap::with_capacity(client.len() + 8);
    copy_client_fields(client, f.protected, &mut upstream);
    add_forwarding_fields(&mut upstream, forwarded_for, f);
    upstream
}

/// Moves the client's fields that [`ClientHeaders`] keeps into `upstream`, every value
/// of a kept name in its order.
fn copy_client_fields(client: HeaderMap, protected: bool, upstream: &mut HeaderMap) {
    let filter = ClientHeaders::new(&client, protected);
    let mut kept_name: Option<OccupiedEntry<'_, HeaderValue>> = None;
    for (name, value) in client {
        // The map yields a name once, then `None` for each further value of it.
        let Some(name) = name else {
            if let Some(entry) = kept_name.as_mut() {
                entry.append(value);
            }
            continue;
        };
        kept_name = None;
        if filter.keeps(&name) {
            kept_name = Some(match upstream.entry(name) {
                Entry::Vacant(vacant) => vacant.insert_entry(value),
                Entry::Occupied(mut occupied) => {
                    occupied.append(value);
                    occupied
                }
            });
        }
    }

    for value in filter.other_authorization {
        upstream.append(AUTHORIZATION, value);
    }
}

/// hookgate's own fields. Appended, not inserted: every client copy of these names was
/// left behind.
fn add_forwarding_fields(upstream: &mut HeaderMap, forwarded_for: HeaderValue, f: &Forwarding) {
    upstream.append(HOST, f.upstream_host.clone());
    let client_host = f.client_host.as_ref();
    if let Some(host) = client_host.filter(|h| is_plausible_host(h.as_bytes())) {
        upstream.append(names::X_FORWARDED_HOST.clone(), host.clone());
    }
    let proto = HeaderValue::from_static(if f.tls { "https" } else { "http" });
    upstream.append(names::X_FORWARDED_PROTO.clone(), proto);
    upstream.append(names::X_FORWARDED_FOR.clone(), forwarded_for);

    upstream.append(names::X_REQUEST_ID.clone(), f.request_id.clone());
    upstream.append(names::X_TRIGGER_ID.clone(), uuid_value(&f.trigger_id.0));
    upstream.append(names::X_PROJECT_ID.clone(), uuid_value(&f.project_id.0));
    if let Some(method) = f.method_id {
        upstream.append(names::X_AUTH_METHOD_ID.clone(), uuid_value(&method.0));
    }
}

/// A UUID as a header value, formatted on the stack.
fn uuid_value(id: &uuid::Uuid) -> HeaderValue {
    let mut buffer = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = id.hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Which of the client's header fields go upstream.
struct ClientHeaders {
    protected: bool,
    /// On a protected trigger, the `authorization` fields without a Basic credential:
    /// they go on (after the loop, in their order), the Basic ones stay behind.
    other_authorization: Vec<HeaderValue>,
    /// Names a `connection` field lists; empty (no allocation) without one.
    connection_named: Vec<HeaderName>,
}

impl ClientHeaders {
    fn new(client: &HeaderMap, protected: bool) -> Self {
        let other_authorization = if protected {
            client
                .get_all(AUTHORIZATION)
                .iter()
                .filter(|v| !carries_basic(v.as_bytes()))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        Self {
            protected,
            other_authorization,
            connection_named: connection_named(client),
        }
    }

    fn keeps(&self, name: &HeaderName) -> bool {
        let text = name.as_str();
        let dropped = is_hop_by_hop_or_framing(text)
            || text == HOST.as_str()
            || (self.protected && is_api_key_header(text))
            || (self.protected && text == AUTHORIZATION.as_str())
            || is_spoofable(text)
            || self.connection_named.contains(name);
        !dropped
    }
}

/// Hop-by-hop headers and `content-length` (re-framed from the body actually sent), in
/// any CGI spelling: an upstream that folds `_` into `-` must not find framing or a
/// proxy credential the client smuggled as `content_length` or `proxy_authorization`.
fn is_hop_by_hop_or_framing(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| cgi_eq(name, h)) || cgi_eq(name, CONTENT_LENGTH.as_str())
}

/// Client headers that claim a client address or scheme, as proxies and frameworks
/// name them. `x-forwarded-for` and `x-forwarded-proto`, set by hookgate, are the
/// upstream's one source of both; a client's copy of these would let it pose as any
/// address, or as HTTPS, to an upstream that trusts one of them.
const CLAIM_HEADERS: [&str; 17] = [
    "forwarded",
    "forwarded-for",
    "x-real-ip",
    "x-client-ip",
    "client-ip",
    "x-cluster-client-ip",
    "x-original-forwarded-for",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-envoy-external-address",
    "x-proxyuser-ip",
    "front-end-https",
    "x-url-scheme",
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

/// Whether two header names are the same as CGI-style servers read them (PHP, WSGI,
/// Rack: `HTTP_X_API_KEY`), where `_` and `-` are the same character. Header names are
/// lower-case already; `expected` is written with `-`.
fn cgi_eq(name: &str, expected: &str) -> bool {
    name.len() == expected.len() && cgi_starts_with(name, expected)
}

fn cgi_starts_with(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name
            .bytes()
            .zip(prefix.bytes())
            .all(|(n, p)| n == p || (n == b'_' && p == b'-'))
}

/// `x-api-key` in any CGI spelling (`x_api_key`, `x-api_key`, ...).
fn is_api_key_header(name: &str) -> bool {
    cgi_eq(name, X_API_KEY)
}

/// Client headers an upstream could take for something they are not, in any CGI
/// spelling: `x-hookgate-*` (hookgate's identity headers), `x-forwarded*` (hookgate sets
/// the forwarding headers; a client's `x-forwarded-port` or `-ssl` would contradict
/// them), `x-request-id` (hookgate sets it), the claim headers, and `proxy`, which CGI
/// turns into `HTTP_PROXY` (httpoxy).
fn is_spoofable(name: &str) -> bool {
    cgi_starts_with(name, "x-hookgate-")
        || cgi_starts_with(name, "x-forwarded")
        || cgi_eq(name, X_REQUEST_ID)
        || CLAIM_HEADERS.iter().any(|a| cgi_eq(name, a))
        || name == "proxy"
}

/// One `x-forwarded-for` value: the peer alone, or the trusted chain plus the peer.
fn forwarded_for(headers: &HeaderMap, peer: SocketAddr, trusted: &[IpNet]) -> HeaderValue {
    let peer_ip = peer.ip().to_canonical().to_string();
    if !is_trusted(peer.ip().to_canonical(), trusted) {
        return HeaderValue::from_str(&peer_ip).unwrap_or_else(|_| HeaderValue::from_static(""));
    }
    let mut chain: Vec<&str> = forwarded_entries(headers).collect();
    chain.push(&peer_ip);
    HeaderValue::from_str(&chain.join(", ")).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Request ids for requests that bring no sane one of their own.
///
/// Each id is a keyed hash of a per-process counter, shaped as a UUID (version 4): as
/// unguessable and as unlikely to repeat as a random one, without asking the operating
/// system for randomness on every request. The keys are random per process, so the ids
/// say nothing about how many requests an instance has served.
pub struct RequestIds {
    counter: AtomicU64,
    high: RandomState,
    low: RandomState,
}

impl Default for RequestIds {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestIds {
    pub fn new() -> Self {
        Self {
            counter: AtomicU64::new(0),
            high: RandomState::new(),
            low: RandomState::new(),
        }
    }

    /// The client's request id when it is sane (1–128 visible ASCII characters without
    /// separators that break log parsing), else a new one.
    pub fn for_request(&self, headers: &HeaderMap) -> HeaderValue {
        let sane = headers.get(X_REQUEST_ID).filter(|v| {
            let bytes = v.as_bytes();
            (1..=128).contains(&bytes.len())
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(b))
        });
        match sane {
            Some(value) => value.clone(),
            None => uuid_value(&self.next()),
        }
    }

    fn next(&self) -> uuid::Uuid {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let high = self.high.hash_one(n).to_be_bytes();
        let low = self.low.hash_one(n).to_be_bytes();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&high);
        bytes[8..].copy_from_slice(&low);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
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

    /// The upstream's headers for a request from 127.0.0.1 on a trigger.
    fn upstream(client: HeaderMap, protected: bool) -> HeaderMap {
        let request_id = HeaderValue::from_static("rid-1");
        let peer_value = HeaderValue::from_static("127.0.0.1");
        let forwarding = Forwarding {
            peer: "127.0.0.1:5000".parse().expect("addr"),
            peer_value: &peer_value,
            trusted: &[],
            tls: false,
            client_host: Some(HeaderValue::from_static("hooks.example")),
            upstream_host: HeaderValue::from_static("upstream.internal:8080"),
            protected,
            trigger_id: TriggerId(uuid::Uuid::nil()),
            project_id: ProjectId(uuid::Uuid::nil()),
            method_id: None,
            request_id: &request_id,
        };
        upstream_headers(client, &forwarding)
    }

    /// The client's headers that reached the upstream (hookgate's own left out).
    fn passed(map: &HeaderMap) -> Vec<(String, String)> {
        let ours = [
            "host",
            X_FORWARDED_FOR,
            X_FORWARDED_HOST,
            X_FORWARDED_PROTO,
            X_REQUEST_ID,
            X_TRIGGER_ID,
            X_PROJECT_ID,
        ];
        map.iter()
            .filter(|(name, _)| !ours.contains(&name.as_str()))
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_string()))
            .collect()
    }

    #[test]
    fn bearer_authorization_passes_and_basic_is_stripped() {
        let bearer = headers(&[("authorization", "Bearer t"), ("x-api-key", "k")]);
        let map = upstream(bearer, true);
        assert_eq!(
            passed(&map),
            [("authorization".to_string(), "Bearer t".to_string())]
        );

        let basic = headers(&[("authorization", "bAsIc aG9vazpzM2NyZXQtcGFzcw==")]);
        assert!(passed(&upstream(basic, true)).is_empty());

        let later = headers(&[("authorization", "Bearer x, basic aG9vazpzM2NyZXQtcGFzcw==")]);
        assert!(passed(&upstream(later, true)).is_empty());

        // Only the field with the Basic credential stays behind (a preflight may carry
        // both); the other goes on.
        let both = headers(&[
            ("authorization", "Basic aG9vazpzM2NyZXQtcGFzcw=="),
            ("authorization", "Bearer q"),
        ]);
        assert_eq!(
            passed(&upstream(both, true)),
            [("authorization".to_string(), "Bearer q".to_string())]
        );
    }

    #[test]
    fn underscore_spellings_of_hop_by_hop_and_framing_headers_are_removed() {
        let client = headers(&[
            ("proxy_authorization", "Basic b3RoZXI6eHh4eHh4eHg="),
            ("content_length", "99"),
            ("transfer_encoding", "chunked"),
            ("keep_alive", "1"),
            ("proxy_connection", "keep-alive"),
            ("http2_settings", "x"),
            ("x-kept", "yes"),
        ]);
        assert_eq!(
            passed(&upstream(client, false)),
            [("x-kept".to_string(), "yes".to_string())]
        );
    }

    #[test]
    fn a_non_ascii_byte_does_not_hide_the_names_connection_lists() {
        let mut client = headers(&[("x-secret", "1"), ("x-kept", "yes")]);
        client.append(
            CONNECTION,
            HeaderValue::from_bytes(b"x-secret, caf\xE9").expect("obs-text is allowed"),
        );
        assert_eq!(
            passed(&upstream(client, true)),
            [("x-kept".to_string(), "yes".to_string())]
        );
    }

    #[test]
    fn an_open_trigger_passes_credentials_on() {
        let client = headers(&[("authorization", "Basic dTpw"), ("x-api-key", "k")]);
        assert_eq!(passed(&upstream(client, false)).len(), 2);
    }

    #[test]
    fn repeated_fields_keep_every_value_in_order() {
        let client = headers(&[
            ("accept", "a"),
            ("x-multi", "1"),
            ("x-api-key", "k1"),
            ("x-multi", "2"),
            ("x-api-key", "k2"),
            ("x-multi", "3"),
        ]);
        let map = upstream(client, true);
        let multi: Vec<&str> = map
            .get_all("x-multi")
            .iter()
            .map(|v| v.to_str().expect("ascii"))
            .collect();
        assert_eq!(multi, ["1", "2", "3"]);
        assert!(!map.contains_key("x-api-key"));
        assert_eq!(map.get("accept").map(|v| v.as_bytes()), Some(&b"a"[..]));
    }

    #[test]
    fn hookgate_sets_forwarding_and_identity_headers_over_the_clients() {
        let client = headers(&[
            ("host", "hooks.example"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-hookgate-trigger-id", "forged"),
            ("content-length", "5"),
            ("connection", "x-secret-hop"),
            ("x-secret-hop", "1"),
        ]);
        let map = upstream(client, true);
        assert!(passed(&map).is_empty(), "{map:?}");
        let one = |name: &str| {
            let values: Vec<_> = map.get_all(name).iter().collect();
            assert_eq!(values.len(), 1, "{name}: {values:?}");
            values[0].to_str().expect("ascii").to_string()
        };
        assert_eq!(one("host"), "upstream.internal:8080");
        assert_eq!(one(X_FORWARDED_FOR), "127.0.0.1");
        assert_eq!(one(X_FORWARDED_HOST), "hooks.example");
        assert_eq!(one(X_FORWARDED_PROTO), "http");
        assert_eq!(one(X_REQUEST_ID), "rid-1");
        assert_eq!(one(X_TRIGGER_ID), uuid::Uuid::nil().to_string());
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
            "x-forwarded-port",
            "x_forwarded_ssl",
            "x-forwarded",
            "client-ip",
            "client_ip",
            "x-cluster-client-ip",
            "front-end-https",
        ] {
            assert!(is_spoofable(name), "{name}");
        }
        for name in ["x_kept", "x-hookgate", "proxy-status", "x-real"] {
            assert!(!is_spoofable(name), "{name}");
        }
    }

    #[test]
    fn underscore_spellings_of_the_key_header_are_credentials() {
        let map = headers(&[("x_api_key", "k"), ("X_Api-Key", "k"), ("x_api_keys", "k")]);
        let map = upstream(map, true);
        assert_eq!(passed(&map), [("x_api_keys".to_string(), "k".to_string())]);
    }

    #[test]
    fn forwarded_for_is_the_peer_unless_the_peer_is_trusted() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let map = headers(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-for", "10.9.9.9"),
        ]);
        assert_eq!(forwarded_for(&map, peer, &[]), "127.0.0.1");
        let v6: SocketAddr = "[2001:db8::1]:5000".parse().expect("addr");
        assert_eq!(forwarded_for(&map, v6, &[]), "2001:db8::1");
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
        let ids = RequestIds::new();
        let kept = ids.for_request(&headers(&[("x-request-id", "abc-123")]));
        assert_eq!(kept, "abc-123");
        let replaced = ids.for_request(&headers(&[("x-request-id", "a b\"c")]));
        assert_eq!(replaced.len(), 36);
    }

    #[test]
    fn generated_request_ids_are_version_4_uuids_that_do_not_repeat() {
        let ids = RequestIds::new();
        let made: std::collections::HashSet<_> = (0..10_000)
            .map(|_| {
                let value = ids.for_request(&HeaderMap::new());
                let id: uuid::Uuid = value.to_str().expect("ascii").parse().expect("uuid");
                assert_eq!(id.get_version_num(), 4);
                id
            })
            .collect();
        assert_eq!(made.len(), 10_000);
        // Another process (other keys) starts elsewhere, not at the same first id.
        let first = |ids: &RequestIds| ids.for_request(&HeaderMap::new());
        assert_ne!(first(&RequestIds::new()), first(&RequestIds::new()));
    }
}
