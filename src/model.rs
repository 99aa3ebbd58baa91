//! Domain types shared by the admin API, the store and the request path: ids as
//! newtypes, auth methods, triggers, audit events and actors.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A webhook endpoint.
    TriggerId
);
id_type!(
    /// The namespace that owns triggers and auth methods.
    ProjectId
);
id_type!(
    /// A webhook auth method.
    AuthMethodId
);

impl TriggerId {
    /// Parses the canonical hyphenated form (8-4-4-4-12 hex digits) in any letter case,
    /// and nothing else: simple, braced and URN forms are not trigger ids.
    pub fn parse_canonical(text: &str) -> Option<Self> {
        parse_canonical_uuid(text).map(Self)
    }
}

/// The canonical hyphenated UUID form, any letter case.
pub fn parse_canonical_uuid(text: &str) -> Option<Uuid> {
    let bytes = text.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let shape_ok = bytes.iter().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => *b == b'-',
        _ => b.is_ascii_hexdigit(),
    });
    if !shape_ok {
        return None;
    }
    Uuid::try_parse(text).ok()
}

/// The two kinds of credential a method can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthType {
    Basic,
    Api,
}

impl AuthType {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthType::Basic => "basic",
            AuthType::Api => "api",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "basic" => Some(AuthType::Basic),
            "api" => Some(AuthType::Api),
            _ => None,
        }
    }
}

/// Who made an admin change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: Uuid,
    pub name: String,
}

/// An auth method as the admin API shows it: no secret, no digest.
#[derive(Clone, Debug, Serialize)]
pub struct AuthMethod {
    pub id: AuthMethodId,
    pub project_id: ProjectId,
    pub name: String,
    pub auth_type: AuthType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_hint: Option<String>,
    pub trigger_ids: Vec<TriggerId>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub scheduled_deletion: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub inserted_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A trigger as the admin API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Trigger {
    pub id: TriggerId,
    pub project_id: ProjectId,
    pub enabled: bool,
    pub auth_required: bool,
    pub upstream_url: Option<String>,
    pub auth_method_ids: Vec<AuthMethodId>,
    #[serde(with = "time::serde::rfc3339")]
    pub inserted_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// One append-only audit record.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEvent {
    pub id: Uuid,
    pub item_type: String,
    pub item_id: Uuid,
    pub event: String,
    pub actor: Option<Actor>,
    pub changes: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub inserted_at: OffsetDateTime,
}

/// Parses an upstream base URL: `http://host[:port][/prefix]`, no query, no user info.
///
/// Only plain HTTP is spoken to upstreams (see the README's known limitations).
// TODO(hookgate): https upstreams through rustls, once a user needs them.
pub fn parse_upstream_url(text: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = text.parse().map_err(|_| format!("`{text}` is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err("must be an http:// URL".into());
    }
    let Some(authority) = uri.authority() else {
        return Err("must name a host".into());
    };
    if authority.as_str().contains('@') {
        return Err("must not carry user information".into());
    }
    if uri.query().is_some() {
        return Err("must not carry a query".into());
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_ids_are_canonical_hyphenated_uuids_in_any_case() {
        let lower = "0b9f6f4e-3c1a-4a57-9e2b-7d8c1f2a3b4c";
        let id = TriggerId::parse_canonical(lower).expect("canonical");
        assert_eq!(TriggerId::parse_canonical(&lower.to_uppercase()), Some(id));
        assert_eq!(id.to_string(), lower);
        for bad in [
            "0b9f6f4e3c1a4a579e2b7d8c1f2a3b4c",
            "{0b9f6f4e-3c1a-4a57-9e2b-7d8c1f2a3b4c}",
            "urn:uuid:0b9f6f4e-3c1a-4a57-9e2b-7d8c1f2a3b4c",
            "0b9f6f4e-3c1a-4a57-9e2b-7d8c1f2a3b4g",
            "0b9f6f4e-3c1a-4a57-9e2b+7d8c1f2a3b4c",
            "",
        ] {
            assert_eq!(TriggerId::parse_canonical(bad), None, "{bad}");
        }
    }

    #[test]
    fn upstream_urls_must_be_plain_http_with_a_host() {
        assert!(parse_upstream_url("http://127.0.0.1:4000").is_ok());
        assert!(parse_upstream_url("http://up.internal/hooks").is_ok());
        assert!(parse_upstream_url("https://x").is_err());
        assert!(parse_upstream_url("http://u:p@x").is_err());
        assert!(parse_upstream_url("http://x/?q=1").is_err());
        assert!(parse_upstream_url("not a url").is_err());
    }
}
