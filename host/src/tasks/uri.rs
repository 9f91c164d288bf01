//! Storage URIs in task data (`s3://bucket/key` and the like): finding them, and rewriting them
//! to the service's resolver URL, as Label Studio does when it serves tasks
//! (`tasks/models.py::Task.resolve_uri`, `io_storages/utils.py::get_uri_via_regex`).

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use regex::Regex;
use serde_json::Value;

/// Finds storage URIs of some schemes in strings: a value that is one URI as a whole (keys may
/// hold spaces), or URIs embedded in text or HTML (ending at whitespace, quotes or brackets).
pub struct UriMatcher {
    whole: Regex,
    embedded: Regex,
}

impl UriMatcher {
    /// `None` when there is no scheme to look for.
    pub fn new(schemes: &[String]) -> Option<UriMatcher> {
        if schemes.is_empty() {
            return None;
        }
        let alternatives = schemes.iter().map(|s| regex::escape(s)).collect::<Vec<_>>().join("|");
        let whole = Regex::new(&format!(r#"^(?:{alternatives})://[^\n\r\t"'<>]+$"#))
            .expect("escaped schemes form a valid regex");
        let embedded = Regex::new(&format!(r#"\b(?:{alternatives})://[^\s"'<>()\[\]{{}}]+"#))
            .expect("escaped schemes form a valid regex");
        Some(UriMatcher { whole, embedded })
    }

    fn each<'s>(&self, s: &'s str) -> Vec<&'s str> {
        if self.whole.is_match(s) { vec![s] } else { self.embedded.find_iter(s).map(|m| m.as_str()).collect() }
    }
}

/// Every distinct URI in the string values of `data` (nested lists and objects included).
pub fn find(data: &Value, m: &UriMatcher) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    visit(data, &mut |s| found.extend(m.each(s).into_iter().map(str::to_string)));
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
            if m.whole.is_match(s) {
                if let Some(r) = replacement(s) {
                    *s = r;
                }
            } else if let std::borrow::Cow::Owned(o) =
                m.embedded.replace_all(s, |c: &regex::Captures| replacement(&c[0]).unwrap_or_else(|| c[0].to_string()))
            {
                *s = o;
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
