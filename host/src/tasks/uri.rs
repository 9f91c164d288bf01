//! Storage URIs in task data (`s3://bucket/key` and the like): finding them, and rewriting them
//! to the service's resolver URL, as Label Studio does when it serves tasks
//! (`tasks/models.py::Task.resolve_uri`, `io_storages/utils.py::get_uri_via_regex`).

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use regex::Regex;
use serde_json::Value;

/// Finds storage URIs of some schemes in strings, whole or inside longer text.
///
/// - A string that starts with a scheme's `://` and holds no second URI is one URI as a whole:
///   keys may hold spaces, quotes and brackets (`s3://b/O'Brien [v2].jpg`).
/// - Inside text, a URI right after a quote (`src="…"`, `src='…'`) ends at the next quote of the
///   same kind, so keys with the other quote, spaces, brackets or `<` survive; one right after
///   `(` (Markdown's `![alt](s3://…)`) ends at the `)` that closes it; any other ends at
///   whitespace, `<` or `>` (`<img src=s3://b/x.png>`).
///
/// Label Studio's `get_uri_via_regex` stops every URI at the first quote, space or `>`, so
/// `<img src="s3://b/O'Brien.jpg">` resolves `s3://b/O` there; stowage does not repeat it.
pub struct UriMatcher {
    start: Regex,
}

impl UriMatcher {
    /// `None` when there is no scheme to look for.
    pub fn new(schemes: &[String]) -> Option<UriMatcher> {
        if schemes.is_empty() {
            return None;
        }
        let alternatives = schemes.iter().map(|s| regex::escape(s)).collect::<Vec<_>>().join("|");
        // `\b` keeps `xs3://` from matching `s3`.
        let start = Regex::new(&format!(r"\b(?:{alternatives})://")).expect("escaped schemes form a valid regex");
        Some(UriMatcher { start })
    }

    /// The byte ranges of the URIs in `s`, in order, not overlapping.
    pub fn spans(&self, s: &str) -> Vec<std::ops::Range<usize>> {
        let mut found = Vec::new();
        let mut from = 0;
        // A value that is one URI, whitespace around it aside (Label Studio strips the value).
        let trimmed = s.trim_end();
        let lead = s.len() - s.trim_start().len();
        while let Some(m) = self.start.find_at(s, from) {
            let whole = m.start() == lead
                && self.start.find_at(trimmed, m.end()).is_none()
                && !trimmed[lead..].contains(['\n', '\r', '\t']);
            let end = if whole { trimmed.len() } else { m.end() + uri_len(&s[..m.start()], &s[m.end()..]) };
            // A bare scheme (`s3://` then a delimiter) names no object.
            if end > m.end() {
                found.push(m.start()..end);
            }
            from = end.max(m.end());
        }
        found
    }

    fn each<'s>(&self, s: &'s str) -> impl Iterator<Item = &'s str> {
        self.spans(s).into_iter().map(move |r| &s[r])
    }
}

/// How many bytes of `rest` (what follows `scheme://`) belong to a URI that `before` leads to.
fn uri_len(before: &str, rest: &str) -> usize {
    match before.chars().next_back() {
        Some(q @ ('"' | '\'')) => rest.find([q, '\n', '\r']).unwrap_or(rest.len()),
        Some('(') => {
            let mut depth = 0usize;
            for (i, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => return i,
                    ')' => depth -= 1,
                    c if c.is_whitespace() => return i,
                    _ => {}
                }
            }
            rest.len()
        }
        _ => rest.find(|c: char| c.is_whitespace() || c == '<' || c == '>').unwrap_or(rest.len()),
    }
}

/// Every distinct URI in the string values of `data` (nested lists and objects included).
pub fn find(data: &Value, m: &UriMatcher) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    visit(data, &mut |s| found.extend(m.each(s).map(str::to_string)));
    found
}

fn visit(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|i| visit(i, f)),
        Value::Object(map) => map.values().for_each(|i| visit(i, f)),
        _ => {}
    }
}

/// Replaces each URI `u` for which `replacement(u)` is `Some` in the string values of `data`.
pub fn rewrite(data: &mut Value, m: &UriMatcher, replacement: &impl Fn(&str) -> Option<String>) {
    match data {
        Value::String(s) => {
            let mut out = String::new();
            let mut copied = 0;
            for span in m.spans(s) {
                if let Some(r) = replacement(&s[span.clone()]) {
                    out.push_str(&s[copied..span.start]);
                    out.push_str(&r);
                    copied = span.end;
                }
            }
            if copied > 0 {
                out.push_str(&s[copied..]);
                *s = out;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| rewrite(i, m, replacement)),
        Value::Object(map) => map.values_mut().for_each(|i| rewrite(i, m, replacement)),
        _ => {}
    }
}

/// Label Studio's resolver link of a task's URI: `/tasks/{id}/resolve/?fileuri=<base64url, padded>`.
pub fn resolver_url(task_id: i64, uri: &str) -> String {
    format!("/tasks/{task_id}/resolve/?fileuri={}", URL_SAFE.encode(uri))
}

/// Decodes a `fileuri` parameter: base64url (padded or not), else a percent-encoded URI (as
/// Label Studio falls back to `unquote`).
pub fn decode_fileuri(param: &str) -> Option<String> {
    let b64 = URL_SAFE.decode(param).or_else(|_| URL_SAFE_NO_PAD.decode(param.trim_end_matches('=')));
    if let Some(s) = b64.ok().and_then(|b| String::from_utf8(b).ok()).filter(|s| s.contains("://")) {
        return Some(s);
    }
    percent_encoding::percent_decode_str(param).decode_utf8().ok().map(|s| s.into_owned()).filter(|s| s.contains("://"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uris_are_found_and_rewritten_everywhere() {
        let re = UriMatcher::new(&["s3".into(), "gs".into()]).unwrap();
        let mut data = json!({
            "image": "s3://b/a b+c%.jpg",
            "html": "<img src=\"s3://b/x.png\"> and gs://other/y.png",
            "list": [{"deep": "s3://b/z.json"}, 3, null],
            "plain": "https://example.com/s3://not-a-uri-start",
        });
        let found: Vec<String> = find(&data, &re).into_iter().collect();
        assert_eq!(
            found,
            ["gs://other/y.png", "s3://b/a b+c%.jpg", "s3://b/x.png", "s3://b/z.json", "s3://not-a-uri-start"]
        );
        rewrite(&mut data, &re, &|u: &str| u.starts_with("s3://b/").then(|| resolver_url(7, u)));
        assert_eq!(data["html"], "<img src=\"/tasks/7/resolve/?fileuri=czM6Ly9iL3gucG5n\"> and gs://other/y.png");
        assert_eq!(data["list"][0]["deep"], json!(resolver_url(7, "s3://b/z.json")));
        assert_eq!(data["image"], json!(resolver_url(7, "s3://b/a b+c%.jpg")));
    }

    /// One row per way a URI sits in a string: the URIs found, in order.
    #[test]
    fn uris_end_where_their_quoting_says() {
        let m = UriMatcher::new(&["s3".into(), "gs".into(), "azure-blob".into()]).unwrap();
        let rows: &[(&str, &[&str])] = &[
            ("s3://b/O'Brien [v2].jpg", &["s3://b/O'Brien [v2].jpg"]),
            ("s3://b/a b (1) & c=d?#.png", &["s3://b/a b (1) & c=d?#.png"]),
            (r#"<img src="s3://b/O'Brien [v2].jpg">"#, &["s3://b/O'Brien [v2].jpg"]),
            (r#"<img src='s3://b/say "hi" <3>.jpg'/>"#, &[r#"s3://b/say "hi" <3>.jpg"#]),
            ("<p>see s3://b/plain.png<br>and gs://g/k%20x+y.png now</p>", &["s3://b/plain.png", "gs://g/k%20x+y.png"]),
            ("![cat](s3://b/cat_(1).png) and ![dog](gs://g/dog.png)", &["s3://b/cat_(1).png", "gs://g/dog.png"]),
            ("[a](s3://b/a b.png)", &["s3://b/a"]),
            ("two: s3://b/a.jpg s3://b/b.jpg", &["s3://b/a.jpg", "s3://b/b.jpg"]),
            ("s3://b/a.jpg s3://b/b.jpg", &["s3://b/a.jpg", "s3://b/b.jpg"]),
            ("line\ns3://b/ünï cöde.jpg", &["s3://b/ünï"]),
            ("azure-blob://c/dir/n\u{0303}o.png", &["azure-blob://c/dir/n\u{0303}o.png"]),
            ("xs3://b/not.png s3:// alone", &[]),
            (" s3://b/a b.jpg\n", &["s3://b/a b.jpg"]),
            ("<img src=s3://b/x.png>", &["s3://b/x.png"]),
            (r#""s3://b/unterminated"#, &["s3://b/unterminated"]),
        ];
        for (text, want) in rows {
            let got: Vec<&str> = m.each(text).collect();
            assert_eq!(&got, want, "{text:?}");
        }
    }

    proptest::proptest! {
        /// Spans are in order, inside the string, on char boundaries and start at a scheme;
        /// rewriting with the identity changes nothing.
        #[test]
        fn spans_are_well_formed_for_any_text(text in "(s3://|gs://|[ \"'()<>\na-z/.ä])*") {
            let m = UriMatcher::new(&["s3".into(), "gs".into()]).unwrap();
            let mut last = 0;
            for r in m.spans(&text) {
                proptest::prop_assert!(r.start >= last && r.end <= text.len() && r.start < r.end);
                proptest::prop_assert!(text[r.clone()].starts_with("s3://") || text[r.clone()].starts_with("gs://"));
                last = r.end;
            }
            let mut v = Value::String(text.clone());
            rewrite(&mut v, &m, &|u: &str| Some(u.to_string()));
            proptest::prop_assert_eq!(v, Value::String(text));
        }
    }

    #[test]
    fn fileuri_round_trips_padded_unpadded_and_quoted() {
        let uri = "s3://bucket/dir/ünï cöde?#.png";
        let padded = URL_SAFE.encode(uri);
        assert_eq!(decode_fileuri(&padded).as_deref(), Some(uri));
        assert_eq!(decode_fileuri(padded.trim_end_matches('=')).as_deref(), Some(uri));
        assert_eq!(decode_fileuri("s3%3A%2F%2Fbucket%2Fa.png").as_deref(), Some("s3://bucket/a.png"));
        assert_eq!(decode_fileuri("nonsense"), None);
    }
}
