//! Properties of the two pure parsers on the public port's path: `parse_basic` agrees
//! with a plain reference reading of SPEC §2.2, and `route` never hands on a webhook
//! path that could wander (SPEC §2). Neither panics on any input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use hookgate::auth::credential::parse_basic;
use hookgate::proxy::route::{Route, route};
use proptest::prelude::*;

const A: &str = "0b9f6f4e-3c1a-4a57-9e2b-7d8c1f2a3b4c";

/// SPEC §2.2 read literally: `basic` in any case, one or more spaces, a standard-alphabet
/// base64 token of at most 4096 characters with optional (but correct) padding and
/// canonical trailing bits, split at the first `:`.
fn reference(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let space = value.iter().position(|b| *b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let token: &[u8] = {
        let start = rest.iter().position(|b| *b != b' ')?;
        &rest[start..]
    };
    if token.len() > 4096 {
        return None;
    }
    let decoded = decode_standard(token)?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// A hand-written base64 decoder: standard alphabet, padding optional but exact when
/// present, unused trailing bits zero.
fn decode_standard(token: &[u8]) -> Option<Vec<u8>> {
    let unpadded = token.iter().position(|b| *b == b'=').unwrap_or(token.len());
    let (data, padding) = token.split_at(unpadded);
    if padding.iter().any(|b| *b != b'=') || data.is_empty() {
        return None;
    }
    let tail = data.len() % 4;
    let padding_ok = match padding.len() {
        0 => tail != 1,
        1 => tail == 3,
        2 => tail == 2,
        _ => false,
    };
    if !padding_ok {
        return None;
    }

    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in data {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(sextet);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    (bits == 0).then_some(out)
}

fn parsed(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    parse_basic(value).map(|c| (c.username, c.password.expose().to_vec()))
}

/// Authorization values near the interesting edges: real encodings of arbitrary bytes,
/// with and without padding, under assorted schemes, separators and suffixes.
fn authorization_value() -> impl Strategy<Value = Vec<u8>> {
    let scheme = prop::sample::select(vec![
        "Basic", "Basic", "basic", "BASIC", "bAsIc", "Bearer", "Basi", "Basicc", "",
    ]);
    let separator = prop::sample::select(vec!["", " ", "  ", "    ", "\t", " \t"]);
    let pair = (
        prop::collection::vec(any::<u8>(), 0..16),
        prop::collection::vec(any::<u8>(), 0..48),
    )
        .prop_map(|(mut user, password)| {
            user.retain(|b| *b != b':');
            user.push(b':');
            user.extend_from_slice(&password);
            user
        });
    let raw = prop_oneof![3 => pair, 1 => prop::collection::vec(any::<u8>(), 0..32)];
    let token = prop_oneof![
        3 => raw.prop_flat_map(|raw| {
            let padded = base64::engine::general_purpose::STANDARD.encode(&raw);
            let bare = padded.trim_end_matches('=').to_string();
            let short = padded.strip_suffix('=').unwrap_or(&padded).to_string();
            prop::sample::select(vec![padded, bare, short])
        }),
        1 => "[A-Za-z0-9+/=_:\\- ]{0,24}",
    ];
    let suffix = prop_oneof![
        4 => Just(""),
        1 => prop::sample::select(vec!["=", "==", " ", ", Bearer x", "_", "A", "\t"]),
    ];
    (scheme, separator, token, suffix)
        .prop_map(|(s, sep, t, suf)| format!("{s}{sep}{t}{suf}").into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_basic_never_panics_on_arbitrary_bytes(value in bytes(5000)) {
        let _ = parse_basic(&value);
    }

    #[test]
    fn parse_basic_agrees_with_the_reference(value in authorization_value()) {
        prop_assert_eq!(parsed(&value), reference(&value));
    }

    #[test]
    fn parse_basic_agrees_with_the_reference_on_arbitrary_bytes(value in bytes(64)) {
        prop_assert_eq!(parsed(&value), reference(&value));
    }

    #[test]
    fn parse_basic_reads_back_any_encoded_pair(
        user in bytes(40).prop_filter("no colon", |u| !u.contains(&b':')),
        password in bytes(80),
    ) {
        let mut raw = user.clone();
        raw.push(b':');
        raw.extend_from_slice(&password);
        let token = base64::engine::general_purpose::STANDARD.encode(&raw);
        let value = format!("Basic {token}");
        prop_assert_eq!(parsed(value.as_bytes()), Some((user, password)));
    }

    #[test]
    fn tokens_over_4096_characters_are_never_decoded(len in 4097usize..6000) {
        let value = format!("Basic {}", "A".repeat(len));
        prop_assert!(parse_basic(value.as_bytes()).is_none());
    }

    #[test]
    fn route_never_panics(path in ".{0,200}") {
        let _ = route(&path);
    }

    #[test]
    fn route_never_hands_on_a_path_that_could_wander(path in webhook_path()) {
        if let Route::Webhook { trigger_id, rest } = route(&path) {
            prop_assert!(rest.is_empty() || rest.starts_with('/'), "{}", rest);
            prop_assert!(!path.contains("//"), "{}", path);
            let lower = rest.to_ascii_lowercase();
            for encoded in ["%2f", "%5c", "%2e", "%3b", "%00", "%c0", "%c1"] {
                prop_assert!(!lower.contains(encoded), "{}", rest);
            }
            // `;` path parameters are refused outright: servlet containers drop them
            // before resolving dot segments.
            prop_assert!(!rest.contains(['\\', ';']), "{}", rest);
            if rest.len() > 1 {
                for segment in rest[1..].split('/') {
                    prop_assert!(!segment.is_empty(), "empty segment in {}", rest);
                    prop_assert!(segment != "." && segment != "..", "dot segment in {}", rest);
                }
            }
            prop_assert_eq!(trigger_id.to_string(), A);
            prop_assert_eq!(format!("/i/{}{}", &path[3..39], rest).to_ascii_lowercase(),
                path.to_ascii_lowercase());
        }
    }
}

/// Up to `max` arbitrary bytes.
fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Webhook paths for trigger A whose rest is built from the characters that matter.
fn webhook_path() -> impl Strategy<Value = String> {
    let id = prop::sample::select(vec![A.to_string(), A.to_uppercase()]);
    let prefix = prop::sample::select(vec!["/i/", "//i/", "/i//"]);
    let segment = r"(\.|\.\.|%2[eEfF]|%5[cC]|%3[bB]|%00|%[cC][01]|%25|[a-z0-9._~%\\;]){0,4}";
    let rest = prop::collection::vec(segment, 0..5)
        .prop_map(|segments| segments.iter().map(|s| format!("/{s}")).collect::<String>());
    (prefix, id, rest).prop_map(|(prefix, id, rest)| format!("{prefix}{id}{rest}"))
}

/// The reference reads the bad-inputs cases the way SPEC §2.2 does.
#[test]
fn the_reference_reads_the_bad_inputs_cases_as_the_spec_does() {
    let pair = |u: &str, p: &str| Some((u.as_bytes().to_vec(), p.as_bytes().to_vec()));
    let cases = [
        (
            "Basic aG9vazpwYTpzczp3b3JkMQ==",
            pair("hook", "pa:ss:word1"),
        ),
        ("Basic aG9vazo=", pair("hook", "")),
        ("Basic aG9vaw==", None),
        (
            "BASIC aG9vazpzM2NyZXQtcGFzcw==",
            pair("hook", "s3cret-pass"),
        ),
        (
            "Basic    aG9vazpzM2NyZXQtcGFzcw==",
            pair("hook", "s3cret-pass"),
        ),
        ("Basic\taG9vazpzM2NyZXQtcGFzcw==", None),
        ("Basic aG9vazpzM2NyZXQtcGFzcw", pair("hook", "s3cret-pass")),
        ("Basic =", None),
        ("Basic ***", None),
        ("Basic aG9vazo/Pz8+Pz8/Pw==", pair("hook", "???>????")),
        ("Basic aG9vazo_Pz8-Pz8_Pw==", None),
        (
            "Basic aG9vazpzM2NyZXQtcGFzcwo=",
            pair("hook", "s3cret-pass\n"),
        ),
    ];
    for (value, expected) in cases {
        assert_eq!(reference(value.as_bytes()), expected, "{value}");
        assert_eq!(parsed(value.as_bytes()), expected, "{value}");
    }
}

/// The generated inputs exercise both outcomes often, so agreement means something.
#[test]
fn the_generated_inputs_reach_both_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let (mut credentials, mut webhooks) = (0, 0);
    for _ in 0..1000 {
        let value = authorization_value()
            .new_tree(&mut runner)
            .unwrap()
            .current();
        credentials += usize::from(reference(&value).is_some());
        let path = webhook_path().new_tree(&mut runner).unwrap().current();
        webhooks += usize::from(matches!(route(&path), Route::Webhook { .. }));
    }
    assert!(
        (100..900).contains(&credentials),
        "{credentials} of 1000 decode"
    );
    assert!(
        (50..950).contains(&webhooks),
        "{webhooks} of 1000 route to the webhook"
    );
}
