//! Label Studio's rules for bucket storages (feature `object-store`): S3, GCS, Azure Blob and
//! any other store of keys in a flat namespace where `/` only looks like a folder separator.
//!
//! What lives here is what Label Studio does the same way for all of them (`io_storages/s3/models.py`,
//! `io_storages/gcs/models.py` and `utils.py`, `io_storages/azure_blob/models.py`, 1.23):
//!
//! - a storage's `prefix` is a folder: stored without trailing `/` ([`prefix_setting`]), listed as
//!   `prefix/` ([`folder`]), so `images` never lists `images2/x.jpg`;
//! - a listing without `recursive_scan` returns the folder's direct children only (delimiter `/`),
//!   and never keys ending in `/`, the empty objects consoles create as folders ([`ListRequest`],
//!   [`page`]);
//! - an export storage writes annotation `N` to `{prefix}/N` ([`export_key`]);
//! - a blob-mode task holds `{scheme}://{bucket}/{key}` ([`blob_uri`], [`key_of_uri`]).
//!
//! Each backend keeps its own API: parameter names ([`ListApi`]), error codes, signing, and the
//! messages Label Studio words per backend.
//!
//! ```
//! use stowage_sdk::object_store::{ListApi, ListRequest, page};
//!
//! const LIST: ListApi = ListApi { fixed: &[("list-type", "2")], page_size: "max-keys", max_page_size: 1000, cursor: "continuation-token" };
//! let request = ListRequest::new(LIST, "images//", None, 5000, false);
//! assert_eq!(request.query(), [("list-type", "2"), ("max-keys", "1000"), ("prefix", "images/"), ("delimiter", "/")]);
//! ```

use crate::http::{Response, content_range_total, unquote_etag};
use crate::{ByteRange, Config, Entry, Object, Page};

/// The `prefix` setting as a folder path: trimmed, trailing `/`s removed; `None` when unset or
/// empty (`""`, `"/"`). Label Studio strips the `/` when it lists (`prefix.rstrip('/') + '/'`) and
/// joins with one when it exports (`f"{prefix}/{key}"`).
pub fn prefix_setting(config: &Config) -> Option<String> {
    config.text("prefix").map(|p| p.trim_end_matches('/').to_string()).filter(|p| !p.is_empty())
}

/// The key prefix that lists folder `prefix`: empty for the whole bucket, else `prefix` with
/// exactly one trailing `/` (`images`, `images/` and `images//` all give `images/`).
pub fn folder(prefix: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() { String::new() } else { format!("{prefix}/") }
}

/// Whether `key` is a folder marker: a key ending in `/` (the zero-byte object the S3 and GCS
/// consoles create for an empty folder), which Label Studio skips ("is skipped because it is a
/// folder").
pub fn is_folder_marker(key: &str) -> bool {
    key.ends_with('/')
}

/// The key annotation `annotation_id` is exported to: `{prefix}/{annotation_id}`, or the bare id
/// without a prefix (`prefix` as [`prefix_setting`] gives it, no trailing `/`); Label Studio's
/// `save_annotation` of the S3, GCS and Azure export storages.
pub fn export_key(prefix: Option<&str>, annotation_id: u64) -> String {
    match prefix {
        Some(prefix) => format!("{prefix}/{annotation_id}"),
        None => annotation_id.to_string(),
    }
}

/// `{scheme}://{bucket}/{key}`: the URI a blob-mode task stores (`s3://`, `gs://`,
/// `azure-blob://`), also how adapters name an object in messages. The key is not encoded.
pub fn blob_uri(scheme: &str, bucket: &str, key: &str) -> String {
    format!("{scheme}://{bucket}/{key}")
}

/// `{scheme}://{bucket}`: how adapters name the bucket (container) itself in messages.
pub fn bucket_uri(scheme: &str, bucket: &str) -> String {
    format!("{scheme}://{bucket}")
}

/// The key of `uri` if it names an object of `bucket` ([`blob_uri`] inverted); `None` for another
/// scheme, another bucket, or no key.
pub fn key_of_uri(scheme: &str, bucket: &str, uri: &str) -> Option<String> {
    let rest = uri.strip_prefix(scheme)?.strip_prefix("://")?;
    let (in_bucket, key) = rest.split_once('/')?;
    (in_bucket == bucket && !key.is_empty()).then(|| key.to_string())
}

/// How one backend's list call names its query parameters; `prefix` and `delimiter` are named
/// alike everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListApi {
    /// Parameters every list call starts with (S3 `list-type=2`, Azure `restype=container&comp=list`).
    pub fixed: &'static [(&'static str, &'static str)],
    /// The page-size parameter (`max-keys`, `maxResults`, `maxresults`).
    pub page_size: &'static str,
    /// The largest page the backend returns (S3 and GCS 1000, Azure 5000); larger asks are capped.
    pub max_page_size: u32,
    /// The parameter carrying the previous page's cursor (`continuation-token`, `pageToken`, `marker`).
    pub cursor: &'static str,
}

/// One list call, shaped by Label Studio's rules: the prefix as a [`folder`], delimiter `/` when
/// only direct children are wanted, the page size within `1..=max_page_size`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRequest {
    api: ListApi,
    /// `""` or a folder ending in `/`, sent as `prefix` when not empty.
    pub prefix: String,
    /// True: delimiter `/`, so keys in sub-folders are left out (the backend rolls them up).
    pub direct_children_only: bool,
    /// The cursor of the previous page, as the backend gave it.
    pub cursor: Option<String>,
    /// Decimal page size, already capped.
    page_size: String,
}

impl ListRequest {
    /// The call for [`Backend::list`](crate::Backend::list)`(prefix, cursor, page_size, recursive)`.
    pub fn new(api: ListApi, prefix: &str, cursor: Option<String>, page_size: u32, recursive: bool) -> ListRequest {
        ListRequest {
            api,
            prefix: folder(prefix),
            direct_children_only: !recursive,
            cursor,
            page_size: page_size.clamp(1, api.max_page_size).to_string(),
        }
    }

    /// One key anywhere under folder `prefix` (the whole bucket for `None`): what a connection
    /// check asks to see that the bucket answers and, for an import storage, that the folder holds
    /// something (Label Studio's `validate_connection`).
    pub fn probe(api: ListApi, prefix: Option<&str>) -> ListRequest {
        ListRequest::new(api, prefix.unwrap_or(""), None, 1, true)
    }

    /// The query parameters, raw (to be encoded once, e.g. by [`crate::http::query_string`]), in
    /// this order: `fixed`, page size, `prefix` (if any), `delimiter=/` (if direct children only),
    /// cursor (if any).
    pub fn query(&self) -> Vec<(&str, &str)> {
        let mut query = self.api.fixed.to_vec();
        query.push((self.api.page_size, &self.page_size));
        if !self.prefix.is_empty() {
            query.push(("prefix", &self.prefix));
        }
        if self.direct_children_only {
            query.push(("delimiter", "/"));
        }
        if let Some(cursor) = &self.cursor {
            query.push((self.api.cursor, cursor));
        }
        query
    }
}

/// A page of entries as the host gets it: folder markers ([`is_folder_marker`]) dropped, and an
/// empty cursor read as no next page.
pub fn page(entries: impl IntoIterator<Item = Entry>, next_cursor: Option<String>) -> Page {
    Page {
        entries: entries.into_iter().filter(|e| !is_folder_marker(&e.key)).collect(),
        next_cursor: next_cursor.filter(|c| !c.is_empty()),
        skipped: Vec::new(),
    }
}

/// The entry of `key` from the headers of a `HEAD` or `GET` answer: `Content-Length` (bytes, 0
/// when missing), `ETag` (unquoted) and `Last-Modified` (IMF-fixdate, to milliseconds).
pub fn entry_from_headers(key: &str, response: &Response) -> Entry {
    Entry {
        key: key.to_string(),
        size: response.header("content-length").and_then(|v| v.trim().parse().ok()).unwrap_or(0),
        etag: response.header("etag").map(unquote_etag),
        last_modified: response.header("last-modified").and_then(crate::time::http_date_millis),
    }
}

/// What a `GET` whose range starts past the end of the object (a 416 answer) reads as: no bytes,
/// as a local file read past its end gives, rather than an error. `total_size` is the object's
/// size in bytes (from the 416's `Content-Range: bytes */{size}`, see [`content_range_total`], or
/// asked for otherwise); ETag and Last-Modified come from the answer's headers, if any.
pub fn past_the_end(response: &Response, total_size: u64) -> Object {
    let entry = entry_from_headers("", response);
    Object { body: Vec::new(), total_size, etag: entry.etag, content_type: None, last_modified: entry.last_modified }
}

/// The body of a successful `GET` sent with `range` (if any), and the object's total size in bytes:
/// a 206 answer is the range, the total taken from its `Content-Range`; a 200 answer is the whole
/// object, from a server that ignored `Range`, and is cut to the range here (the total is then its
/// length).
///
/// The total is `None` for a 206 answer whose `Content-Range` is missing, unreadable or gives no
/// complete length (`bytes 0-9/*`): the body's length is the range's, not the object's, so it is
/// never reported as the total. The caller then learns the size otherwise, e.g. from a `HEAD` or
/// the object's metadata ([`Object::total_size`] has no "unknown").
pub fn ranged_body(response: Response, range: Option<&ByteRange>) -> (Vec<u8>, Option<u64>) {
    if response.status == 206 {
        let total = response.header("content-range").and_then(content_range_total);
        return (response.body, total);
    }
    let mut body = response.body;
    let total = body.len() as u64;
    if let Some(r) = range {
        let start = r.start.min(total) as usize;
        let end = r.end.map_or(total, |e| e.saturating_add(1).min(total)) as usize;
        body = body[start..end.max(start)].to_vec();
    }
    (body, Some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: ListApi =
        ListApi { fixed: &[("list-type", "2")], page_size: "max", max_page_size: 1000, cursor: "token" };

    fn entry(key: &str) -> Entry {
        Entry { key: key.into(), size: 1, etag: None, last_modified: None }
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Response { status, headers, body: body.to_vec() }
    }

    #[test]
    fn prefixes() {
        let config = |prefix: &str| Config { settings: vec![("prefix".into(), prefix.into())], secrets: vec![] };
        assert_eq!(prefix_setting(&config(" a/b// ")).as_deref(), Some("a/b"));
        assert_eq!(prefix_setting(&config("")), None);
        assert_eq!(prefix_setting(&config("/")), None);
        assert_eq!(prefix_setting(&Config::default()), None);
        assert_eq!(
            (folder(""), folder("a"), folder("a/"), folder("a/b//")),
            ("".into(), "a/".into(), "a/".into(), "a/b/".into())
        );
        assert!(is_folder_marker("a/dir/") && !is_folder_marker("a/dir"));
    }

    #[test]
    fn export_keys() {
        assert_eq!(export_key(Some("ann"), 7), "ann/7");
        assert_eq!(export_key(Some("a/b"), 7), "a/b/7");
        assert_eq!(export_key(None, 7), "7");
    }

    #[test]
    fn uris() {
        assert_eq!(blob_uri("s3", "b", "dir/a b+c.jpg"), "s3://b/dir/a b+c.jpg");
        assert_eq!(bucket_uri("gs", "b"), "gs://b");
        assert_eq!(key_of_uri("s3", "b", "s3://b/dir/a b+c.jpg").as_deref(), Some("dir/a b+c.jpg"));
        assert_eq!(key_of_uri("azure-blob", "c", "azure-blob://c/k/").as_deref(), Some("k/"));
        for other in ["s3://other/k", "s3://bb/k", "gs://b/k", "s3://b/", "s3://b", "s3:/b/k", "xs3://b/k"] {
            assert_eq!(key_of_uri("s3", "b", other), None, "{other}");
        }
    }

    /// Direct children under a folder; the whole tree when recursive; page sizes capped.
    #[test]
    fn list_requests() {
        let r = ListRequest::new(API, "images", Some("t1".into()), 0, false);
        assert_eq!(
            r.query(),
            [("list-type", "2"), ("max", "1"), ("prefix", "images/"), ("delimiter", "/"), ("token", "t1")]
        );
        let r = ListRequest::new(API, "", None, 5000, true);
        assert_eq!(r.query(), [("list-type", "2"), ("max", "1000")]);
        assert_eq!(r.prefix, "");
        let r = ListRequest::new(API, "", None, 10, false);
        assert_eq!(r.query(), [("list-type", "2"), ("max", "10"), ("delimiter", "/")]);
        assert_eq!(
            ListRequest::probe(API, Some("a/b")).query(),
            [("list-type", "2"), ("max", "1"), ("prefix", "a/b/")]
        );
        assert_eq!(ListRequest::probe(API, None).query(), [("list-type", "2"), ("max", "1")]);
    }

    #[test]
    fn pages_skip_folder_markers() {
        let p = page([entry("a/x.jpg"), entry("a/dir/"), entry("a/y")], Some(String::new()));
        assert_eq!(p.entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["a/x.jpg", "a/y"]);
        assert_eq!(p.next_cursor, None);
        assert_eq!(page([], Some("next".into())).next_cursor.as_deref(), Some("next"));
    }

    #[test]
    fn entries_from_headers() {
        let r = response(
            200,
            &[("content-length", "11"), ("etag", "\"abc\""), ("last-modified", "Mon, 12 Oct 2009 17:50:30 GMT")],
            b"",
        );
        let e = entry_from_headers("k", &r);
        assert_eq!(
            (e.key.as_str(), e.size, e.etag.as_deref(), e.last_modified),
            ("k", 11, Some("abc"), Some(1_255_369_830_000))
        );
        let e = entry_from_headers("k", &response(200, &[("last-modified", "yesterday")], b""));
        assert_eq!((e.size, e.etag, e.last_modified), (0, None, None));
    }

    #[test]
    fn reads_past_the_end() {
        let r = response(416, &[("content-range", "bytes */10"), ("etag", "\"e\"")], b"<Error/>");
        let o = past_the_end(&r, 10);
        assert_eq!(
            (o.body.len(), o.total_size, o.etag.as_deref(), o.content_type, o.last_modified),
            (0, 10, Some("e"), None, None)
        );
    }

    /// 206 answers are the range; a 200 answer to a ranged GET is cut here.
    #[test]
    fn ranged_bodies() {
        let range = ByteRange { start: 2, end: Some(4) };
        let partial = response(206, &[("content-range", "bytes 2-4/10")], b"234");
        assert_eq!(ranged_body(partial, Some(&range)), (b"234".to_vec(), Some(10)));
        assert_eq!(ranged_body(response(200, &[], b"0123456789"), Some(&range)), (b"234".to_vec(), Some(10)));
        let open = ByteRange { start: 8, end: None };
        assert_eq!(ranged_body(response(200, &[], b"0123456789"), Some(&open)), (b"89".to_vec(), Some(10)));
        let past = ByteRange { start: 20, end: Some(30) };
        assert_eq!(ranged_body(response(200, &[], b"0123456789"), Some(&past)), (vec![], Some(10)));
        assert_eq!(ranged_body(response(200, &[], b"0123456789"), None), (b"0123456789".to_vec(), Some(10)));
    }

    /// A 206 answer without a complete length in `Content-Range` leaves the total unknown: the
    /// range's length is not the object's size.
    #[test]
    fn partial_answers_without_a_total() {
        let range = ByteRange { start: 2, end: Some(4) };
        assert_eq!(ranged_body(response(206, &[], b"234"), Some(&range)), (b"234".to_vec(), None));
        let unknown = response(206, &[("content-range", "bytes 2-4/*")], b"234");
        assert_eq!(ranged_body(unknown, Some(&range)), (b"234".to_vec(), None));
        let garbled = response(206, &[("content-range", "bytes 2-4")], b"234");
        assert_eq!(ranged_body(garbled, Some(&range)), (b"234".to_vec(), None));
    }
}
