//! The public port's routes, read from the raw (still percent-encoded) path.

use crate::model::TriggerId;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    Healthz,
    Readyz,
    /// `rest` is empty or starts with `/`; it is forwarded as received.
    Webhook {
        trigger_id: TriggerId,
        rest: &'a str,
    },
    /// A webhook path without a usable trigger id.
    UnknownWebhook,
    /// A malformed path (dot segments, empty segments, separators other than `/`, `;`).
    BadPath,
    NotFound,
}

/// Routes `path` (without the query).
pub fn route(path: &str) -> Route<'_> {
    if path.contains("//") {
        return Route::BadPath;
    }
    match path {
        "/healthz" => return Route::Healthz,
        "/readyz" => return Route::Readyz,
        "/i" | "/i/" => return Route::UnknownWebhook,
        _ => {}
    }
    let Some(after) = path.strip_prefix("/i/") else {
        return Route::NotFound;
    };

    let (id, rest) = after
        .find('/')
        .map_or((after, ""), |slash| after.split_at(slash));
    if !rest.is_empty() && rest != "/" && !is_clean_rest(&rest[1..]) {
        return Route::BadPath;
    }
    match TriggerId::parse_canonical(id) {
        Some(trigger_id) => Route::Webhook { trigger_id, rest },
        None => Route::UnknownWebhook,
    }
}

/// No `.`/`..` or empty segments, no `\` or `;`, and no percent-encoded `/`, `\`, `.`,
/// `;`, NUL or overlong-UTF-8 lead byte.
///
/// Upstreams differ in what they take for a separator or a dot segment: some read `\`
/// as `/`, servlet containers drop `;` path parameters before resolving `..;`, and
/// lenient decoders turn `%C0%AE` into `.` or stop a path at `%00`. hookgate forwards
/// none of these, so no such reading can climb out of the trigger's path.
fn is_clean_rest(rest: &str) -> bool {
    !rest.contains(['\\', ';'])
        && rest.split('/').all(|segment| {
            !segment.is_empty() && segment != "." && segment != ".." && !has_refused_escape(segment)
        })
}

/// A percent-escape of `/`, `\`, `.`, `;`, NUL, or `0xC0`/`0xC1`, in any letter case.
fn has_refused_escape(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    bytes.windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1].to_ascii_uppercase(), w[2].to_ascii_uppercase()),
                (b'2', b'F')
                    | (b'5', b'C')
                    | (b'2', b'E')
                    | (b'3', b'B')
                    | (b'0', b'0')
                    | (b'C', b'0')
                    | (b'C', b'1')
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0b9f6f4e-3c1a-4a57-9e2b-7d8c1f2a3b4c";

    fn webhook(rest: &str) -> Route<'_> {
        Route::Webhook {
            trigger_id: TriggerId::parse_canonical(A).expect("uuid"),
            rest,
        }
    }

    #[test]
    fn webhook_paths_route_to_their_trigger() {
        assert_eq!(route(&format!("/i/{A}")), webhook(""));
        assert_eq!(route(&format!("/i/{A}/")), webhook("/"));
        assert_eq!(route(&format!("/i/{A}/a/b%20c")), webhook("/a/b%20c"));
        assert_eq!(route(&format!("/i/{A}/a..b")), webhook("/a..b"));
        assert_eq!(route(&format!("/i/{A}/%41%c2%a0")), webhook("/%41%c2%a0"));
        assert_eq!(route(&format!("/i/{}", A.to_uppercase())), webhook(""));
    }

    #[test]
    fn traversal_and_encoded_separators_are_bad_paths() {
        for rest in [
            "/../B",
            "/..%2FB",
            "/%2e%2e/B",
            "/./x",
            "/a/",
            "/a%5cb",
            "/a%2Fb",
            "/x/.",
            "/..\\B",
            "/a\\b",
            "/..;/B",
            "/.;x/B",
        ] {
            assert_eq!(route(&format!("/i/{A}{rest}")), Route::BadPath, "{rest}");
        }
        assert_eq!(route(&format!("//i/{A}")), Route::BadPath);
        assert_eq!(route(&format!("/i/{A}//x")), Route::BadPath);
    }

    #[test]
    fn semicolons_nul_and_overlong_utf8_escapes_are_bad_paths() {
        for rest in [
            "/x;y",
            "/;/x",
            "/a;",
            "/%3b",
            "/%3B",
            "/..%3b/B",
            "/a%00b",
            "/%c0%ae%c0%ae/B",
            "/%C1%9C",
            "/%c1",
        ] {
            assert_eq!(route(&format!("/i/{A}{rest}")), Route::BadPath, "{rest}");
        }
    }

    #[test]
    fn ids_that_are_not_canonical_uuids_are_unknown_webhooks() {
        assert_eq!(route("/i"), Route::UnknownWebhook);
        assert_eq!(route("/i/"), Route::UnknownWebhook);
        assert_eq!(route("/i/not-a-uuid"), Route::UnknownWebhook);
        assert_eq!(
            route("/i/0b9f6f4e3c1a4a579e2b7d8c1f2a3b4c/x"),
            Route::UnknownWebhook
        );
    }

    #[test]
    fn other_paths_are_not_found() {
        assert_eq!(route("/"), Route::NotFound);
        assert_eq!(route("/ix"), Route::NotFound);
        assert_eq!(route("/healthz/x"), Route::NotFound);
        assert_eq!(route("/healthz"), Route::Healthz);
        assert_eq!(route("/readyz"), Route::Readyz);
    }
}
