//! Reading credentials out of request headers: pure functions, no I/O.
//!
//! `x-api-key` carries an API key; `authorization: Basic <token>` carries a username
//! and password. A header that appears more than once makes the request ambiguous,
//! and an ambiguous request never authenticates.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::secret::SecretBytes;

pub const X_API_KEY: &str = "x-api-key";

/// Basic tokens longer than this are not decoded (SPEC §2.2).
pub const MAX_BASIC_TOKEN: usize = 4096;

/// The standard alphabet with padding optional, canonical trailing bits required.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a request presents, before any verifier is consulted.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// Neither `x-api-key` nor `authorization` is present.
    Nothing,
    /// A credential header appears more than once: never a match.
    Ambiguous,
    /// At most one of each; either may be unusable (e.g. a Bearer token).
    Credentials {
        api_key: Option<SecretBytes>,
        basic: Option<BasicCredential>,
    },
}

/// A decoded Basic credential; both parts are bytes, compared exactly.
#[derive(Debug, PartialEq, Eq)]
pub struct BasicCredential {
    pub username: Vec<u8>,
    pub password: SecretBytes,
}

/// Reads the credential headers of a request.
pub fn presented(headers: &HeaderMap) -> Presented {
    let mut keys = headers.get_all(X_API_KEY).iter();
    let mut authorizations = headers.get_all(AUTHORIZATION).iter();
    let (key, authorization) = (keys.next(), authorizations.next());
    if key.is_none() && authorization.is_none() {
        return Presented::Nothing;
    }
    if keys.next().is_some() || authorizations.next().is_some() {
        return Presented::Ambiguous;
    }

    Presented::Credentials {
        api_key: key.map(|value| SecretBytes::new(trim_blanks(value.as_bytes()).to_vec())),
        basic: authorization.and_then(|value| parse_basic(value.as_bytes())),
    }
}

/// Spaces and tabs around an API key are not part of it.
fn trim_blanks(value: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !blank(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |i| i + 1);
    &value[start..end]
}

/// True when an `authorization` value uses the Basic scheme, credential or not.
///
/// Looser than [`parse_basic`] on purpose: a value this parser refuses (a tab after
/// the scheme, say) may still carry a password some upstream would read, so it is
/// stripped like a good one.
pub fn is_basic_scheme(value: &[u8]) -> bool {
    let value = trim_blanks(value);
    let end = value
        .iter()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(value.len());
    value[..end].eq_ignore_ascii_case(b"basic")
}

/// True when any comma-separated element of an `authorization` value uses the Basic
/// scheme (see [`is_basic_scheme`]): `Bearer x, Basic <token>` carries a Basic
/// credential too, even though it is not one hookgate accepts.
pub fn carries_basic(value: &[u8]) -> bool {
    value.split(|b| *b == b',').any(is_basic_scheme)
}

/// Parses `Basic <token>`: scheme in any case, one or more spaces, a standard-alphabet
/// base64 token (padding optional), and a `:` separating username from password.
pub fn parse_basic(value: &[u8]) -> Option<BasicCredential> {
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let token = &rest[rest.iter().position(|b| *b != b' ')?..];
    if token.len() > MAX_BASIC_TOKEN || !is_base64_token(token) {
        return None;
    }

    let decoded = BASE64.decode(token).ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let password = decoded[colon + 1..].to_vec();
    let mut username = decoded;
    username.truncate(colon);
    Some(BasicCredential {
        username,
        password: SecretBytes::new(password),
    })
}

/// Standard alphabet, then either no padding or exactly the padding that completes the
/// last quantum, then nothing. (The decoder alone would also take partial padding.)
fn is_base64_token(token: &[u8]) -> bool {
    let body_len = token.iter().position(|b| *b == b'=').unwrap_or(token.len());
    let (body, padding) = token.split_at(body_len);
    !body.is_empty()
        && body
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        && padding.len() <= 2
        && padding.iter().all(|b| *b == b'=')
        && (padding.is_empty() || token.len().is_multiple_of(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(value: &str) -> Option<(String, String)> {
        parse_basic(value.as_bytes()).map(|c| {
            (
                String::from_utf8_lossy(&c.username).into_owned(),
                String::from_utf8_lossy(c.password.expose()).into_owned(),
            )
        })
    }

    fn pair(user: &str, password: &str) -> Option<(String, String)> {
        Some((user.into(), password.into()))
    }

    #[test]
    fn basic_splits_on_the_first_colon_only() {
        assert_eq!(
            basic("Basic aG9vazpwYTpzczp3b3JkMQ=="),
            pair("hook", "pa:ss:word1")
        );
    }

    #[test]
    fn basic_scheme_is_case_insensitive_and_allows_several_spaces() {
        for value in [
            "basic aG9vazpzM2NyZXQtcGFzcw==",
            "BASIC aG9vazpzM2NyZXQtcGFzcw==",
            "Basic    aG9vazpzM2NyZXQtcGFzcw==",
            "Basic aG9vazpzM2NyZXQtcGFzcw",
        ] {
            assert_eq!(basic(value), pair("hook", "s3cret-pass"), "{value}");
        }
    }

    #[test]
    fn malformed_basic_tokens_are_not_credentials() {
        for value in [
            "Basic",
            "Basic ",
            "Basic =",
            "Basic ***",
            "Basic\taG9vazpzM2NyZXQtcGFzcw==",
            "Basic aG9vaw==",
            "Basic aG9vazo_Pz8-Pz8_Pw==",
            "Basic aG9vazpzM2NyZXQtcGFzcw==x",
            "Basic aG9vazpzM2NyZXQtcGFzcw===",
            "Basic aG9vazpzM2NyZXQtcGFzcw=",
            "Basic aG9vazo/Pz8+Pz8/Pw=",
            "Basic aG9vazpz M2NyZXQtcGFzcw==",
            "Basic aG9vazpzM2NyZXQtcGFzcw==, Bearer abc",
            "Bearer abc",
        ] {
            assert_eq!(basic(value), None, "{value}");
        }
    }

    #[test]
    fn decoded_secrets_are_never_trimmed() {
        assert_eq!(
            basic("Basic aG9vazpzM2NyZXQtcGFzcwo="),
            pair("hook", "s3cret-pass\n")
        );
        assert_eq!(basic("Basic aG9vazog"), pair("hook", " "));
        assert_eq!(basic("Basic aG9vazo="), pair("hook", ""));
    }

    #[test]
    fn standard_alphabet_symbols_decode() {
        assert_eq!(
            basic("Basic aG9vazo/Pz8+Pz8/Pw=="),
            pair("hook", "???>????")
        );
    }

    #[test]
    fn oversized_tokens_are_not_decoded() {
        let value = format!("Basic {}", "A".repeat(MAX_BASIC_TOKEN + 4));
        assert_eq!(basic(&value), None);
    }

    #[test]
    fn api_key_is_trimmed_of_spaces_and_tabs_only() {
        let mut headers = HeaderMap::new();
        headers.insert(X_API_KEY, " \tabc d\t ".parse().expect("header"));
        let Presented::Credentials {
            api_key: Some(key),
            basic: None,
        } = presented(&headers)
        else {
            panic!("expected a key");
        };
        assert_eq!(key.expose(), b"abc d");
    }

    #[test]
    fn repeated_credential_headers_are_ambiguous() {
        let mut headers = HeaderMap::new();
        headers.append(X_API_KEY, "a".parse().expect("header"));
        headers.append(X_API_KEY, "b".parse().expect("header"));
        assert_eq!(presented(&headers), Presented::Ambiguous);

        let mut headers = HeaderMap::new();
        headers.append(
            AUTHORIZATION,
            "Basic aG9vazpzM2NyZXQtcGFzcw==".parse().expect("h"),
        );
        headers.append(AUTHORIZATION, "Bearer x".parse().expect("h"));
        assert_eq!(presented(&headers), Presented::Ambiguous);
    }

    #[test]
    fn a_basic_element_anywhere_in_the_value_carries_basic() {
        for value in [
            "Basic x",
            "Bearer x, Basic y",
            "Bearer x,basic",
            "a, b,\tBASIC\tz",
        ] {
            assert!(carries_basic(value.as_bytes()), "{value}");
        }
        for value in ["Bearer x", "Bearer x, Basics y", "Digest a=b, c=basic", ""] {
            assert!(!carries_basic(value.as_bytes()), "{value}");
        }
    }

    #[test]
    fn the_basic_scheme_is_recognised_whatever_follows_it() {
        for value in ["Basic x", "basic\tx", "BASIC", "Basic,x", " bAsIc  x"] {
            assert!(is_basic_scheme(value.as_bytes()), "{value}");
        }
        for value in ["Bearer x", "Basics x", "Basi x", "", "x Basic"] {
            assert!(!is_basic_scheme(value.as_bytes()), "{value}");
        }
    }

    #[test]
    fn no_credential_headers_is_nothing() {
        assert_eq!(presented(&HeaderMap::new()), Presented::Nothing);
    }
}
