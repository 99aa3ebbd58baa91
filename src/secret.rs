//! Secrets as types: values that never print, key generation from the OS CSPRNG,
//! SHA-256 digests and constant-time comparison.
//!
//! Everything that can authenticate someone (admin tokens, API keys, passwords, URLs
//! carrying passwords) is held in [`SecretString`] or [`SecretBytes`], whose `Debug`
//! and `Display` print a redaction marker. Comparisons go through [`Digest32`], whose
//! equality is constant-time.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const REDACTED: &str = "[redacted]";

/// A secret text: a password, an API key, a token, a connection URL.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call sites are few and easy to audit.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Secret bytes from the wire, e.g. a Basic password that need not be UTF-8.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(value: Vec<u8>) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A 32-byte digest (SHA-256 or HMAC-SHA256) compared in constant time.
#[derive(Clone, Copy)]
pub struct Digest32([u8; 32]);

impl Digest32 {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for Digest32 {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Digest32 {}

impl std::hash::Hash for Digest32 {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for Digest32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest32 {
    Digest32(Sha256::digest(bytes).into())
}

/// The digest under which an admin token is configured (`token_sha256`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenDigest(Digest32);

impl TokenDigest {
    pub fn of(token: &[u8]) -> Self {
        Self(sha256(token))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Parses 64 hex characters, either case.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = decode_hex(text)?;
        Digest32::from_slice(&bytes).map(Self)
    }
}

/// Lower-case hex of `bytes`.
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    out
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS generator failing is not recoverable: no key may be made without it.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// A new API key: 32 random bytes as 64 lower-case hex characters.
pub fn generate_api_key() -> SecretString {
    SecretString(encode_hex(&random_bytes::<32>()))
}

/// A new admin token: 32 random bytes, hex, prefixed so it is recognisable in a leak scan.
pub fn generate_admin_token() -> SecretString {
    SecretString(format!("hgat_{}", encode_hex(&random_bytes::<32>())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let text = SecretString::new("hunter2-password");
        let bytes = SecretBytes::new(b"hunter2-password".to_vec());
        let digest = sha256(b"hunter2-password");
        for shown in [
            format!("{text:?}"),
            format!("{text}"),
            format!("{bytes:?}"),
            format!("{digest:?}"),
            format!("{:?}", TokenDigest::of(b"hunter2-password")),
        ] {
            assert_eq!(shown.replace("TokenDigest(", "").replace(')', ""), REDACTED);
        }
    }

    #[test]
    fn generated_api_keys_are_64_lower_hex_and_distinct() {
        let a = generate_api_key();
        let b = generate_api_key();
        assert_eq!(a.expose().len(), 64);
        assert!(
            a.expose()
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn digests_compare_by_value() {
        assert_eq!(sha256(b"a"), sha256(b"a"));
        assert_ne!(sha256(b"a"), sha256(b"b"));
    }

    #[test]
    fn token_digest_parses_hex_of_either_case() {
        let hex = encode_hex(sha256(b"t").as_bytes());
        assert_eq!(TokenDigest::from_hex(&hex), Some(TokenDigest::of(b"t")));
        assert_eq!(
            TokenDigest::from_hex(&hex.to_uppercase()),
            Some(TokenDigest::of(b"t"))
        );
        assert_eq!(TokenDigest::from_hex("abc"), None);
    }
}
