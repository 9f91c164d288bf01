//! Bodies of the Cloud Storage JSON API
//! (<https://cloud.google.com/storage/docs/json_api/v1/objects>): the object resource and the
//! `objects.list` answer. Unknown fields are ignored.

use serde::Deserialize;
use serde_json::Value;

/// An object resource (`storage#object`); only the fields the adapter uses.
#[derive(Debug, Deserialize)]
pub struct ObjectResource {
    pub name: String,
    /// Bytes, as a decimal string (`"size": "11"`); a number is accepted too.
    #[serde(default)]
    pub size: Value,
    /// HTTP 1.1 entity tag of the object.
    #[serde(default)]
    pub etag: Option<String>,
    /// Last modification (RFC 3339).
    #[serde(default)]
    pub updated: Option<String>,
}

impl ObjectResource {
    /// `size` in bytes; 0 when missing or unreadable.
    pub fn size(&self) -> u64 {
        match &self.size {
            Value::String(s) => s.trim().parse().unwrap_or(0),
            Value::Number(n) => n.as_u64().unwrap_or(0),
            _ => 0,
        }
    }
}

/// One page of `objects.list` (`storage#objects`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectList {
    #[serde(default)]
    pub items: Vec<ObjectResource>,
    /// "Folders" (with a delimiter): not listed by the adapter.
    #[serde(default)]
    pub prefixes: Vec<String>,
    /// Present when more results remain.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listing as fake-gcs-server and the documentation show it.
    #[test]
    fn list_page() {
        let body = r#"{"kind":"storage#objects","prefixes":["a/b/"],"items":[{"kind":"storage#object",
            "name":"a/b c.txt","bucket":"stowage-test","size":"11","etag":"XrY7u+Ae7tCTyyK7j1rNww==",
            "updated":"2026-11-30T12:57:54.978481Z","acl":[]}],"nextPageToken":"tok"}"#;
        let page: ObjectList = serde_json::from_str(body).unwrap();
        assert_eq!(page.items[0].name, "a/b c.txt");
        assert_eq!(page.items[0].size(), 11);
        assert_eq!(page.items[0].etag.as_deref(), Some("XrY7u+Ae7tCTyyK7j1rNww=="));
        assert_eq!((page.prefixes.len(), page.next_page_token.as_deref()), (1, Some("tok")));
        let empty: ObjectList = serde_json::from_str(r#"{"kind":"storage#objects"}"#).unwrap();
        assert!(empty.items.is_empty() && empty.next_page_token.is_none());
    }
}
