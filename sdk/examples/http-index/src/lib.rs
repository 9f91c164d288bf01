//! `httpindex` storage: a read-only import source over a plain HTTP server that serves directory
//! listings (`python3 -m http.server`, nginx `autoindex on`, Apache `mod_autoindex`).
//!
//! This is the example out-of-tree adapter of the stowage SDK: it depends on `stowage-sdk` only
//! and shows the whole shape of an adapter in two files. Keys are paths relative to the served
//! folder (`url`), `/`-separated and percent-decoded (`with space.json`, `sub/日本.json`); a
//! blob-mode task stores the file's absolute URL, which the browser fetches directly.
//!
//! - [`Backend::describe`] declares the storage type, its two settings and the one grant it needs:
//!   HTTP to the host of `url`, nothing else.
//! - [`Backend::list`] walks the listing pages ([`html::links`]); [`Backend::stat`] and
//!   [`Backend::get`] are `HEAD` and `GET` on the file's URL.
//! - Failures become typed errors ([`status_error`]): the host retries `transient` and
//!   `throttled` itself, so the adapter never does.

pub mod html;

use std::time::UNIX_EPOCH;

use percent_encoding::percent_decode_str;
use stowage_sdk::http::{self, Request, Response, encode_key};
use stowage_sdk::{
    AdapterInfo, Backend, ByteRange, Capabilities, Config, Direction, Entry, Error, GrantRequest, HttpGrant, Object,
    Page, Setting, SettingKind,
};

use crate::html::Link;

/// Storage type name, as in `/api/storages/httpindex`.
pub const TYPE_NAME: &str = "httpindex";

/// Deepest folder nesting a recursive listing descends into: a symlink loop on the server would
/// otherwise make an endless tree.
const MAX_DEPTH: usize = 32;

/// An `httpindex` storage: where the served folder is, and the optional subfolder to import.
#[derive(Debug)]
pub struct HttpIndex {
    /// `https` or plain `http`.
    https: bool,
    /// `host[:port]` of `url`.
    authority: String,
    /// Percent-encoded path of the served folder; starts and ends with `/`.
    base_path: String,
    /// The `prefix` setting without surrounding `/`; empty for the whole folder.
    prefix: String,
}

fn setting(name: &str, required: bool, help: &str) -> Setting {
    Setting {
        name: name.into(),
        kind: SettingKind::Text,
        secret: false,
        required,
        default_value: None,
        export_default_value: None,
        env_fallback: None,
        help: help.into(),
    }
}

/// Splits `url` into (https, authority, encoded folder path ending in `/`).
///
/// # Errors
/// `invalid-config` for anything but an `http(s)://host[:port]/path` URL. Credentials
/// (`user:password@`) and query strings are refused: they would end up in every task's URL.
fn parse_url(url: &str) -> Result<(bool, String, String), Error> {
    let invalid = |why: &str| Error::InvalidConfig(format!("url {why}, e.g. http://127.0.0.1:8000/data/"));
    let url = url.trim();
    let scheme_end = url.find("://").ok_or_else(|| invalid("must start with http:// or https://"))?;
    let https = match url[..scheme_end].to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => return Err(invalid("must start with http:// or https://")),
    };
    let rest = &url[scheme_end + 3..];
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty() {
        return Err(invalid("has no host"));
    }
    if authority.contains('@') {
        return Err(invalid("must not carry credentials (user:password@)"));
    }
    if path.contains(['?', '#']) || authority.contains(['?', '#']) {
        return Err(invalid("must not have a query or a fragment"));
    }
    // Decode then encode: `my data/` and `my%20data/` name the same folder.
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    let folder = decoded.trim_matches('/');
    let base_path = if folder.is_empty() { "/".to_string() } else { format!("/{}/", encode_key(folder)) };
    Ok((https, authority.to_ascii_lowercase(), base_path))
}

/// The error for a non-2xx answer about `what` (a URL). Status meanings from RFC 9110 §15
/// (<https://www.rfc-editor.org/rfc/rfc9110#section-15>) and RFC 6585 §4 for 429. The response
/// body is never shown: it is whatever the server says, possibly about internals.
pub fn status_error(response: &Response, what: &str) -> Error {
    let status = response.status;
    match status {
        // 404 Not Found, 410 Gone.
        404 | 410 => Error::NotFound(format!("{what}: not found")),
        // A folder's URL without its `/` redirects to `name/`; redirects are not followed.
        300..=399 => Error::NotFound(format!("{what}: redirected (a folder, not a file)")),
        // 401 Unauthorized, 403 Forbidden (also nginx's answer for a folder without autoindex).
        401 | 403 => Error::Denied(format!("{what}: the server refused access (HTTP {status})")),
        // 429 Too Many Requests, with `Retry-After` in seconds when given.
        429 => Error::Throttled(response.header("retry-after").and_then(|v| v.trim().parse().ok())),
        // 408 Request Timeout and every server error: worth a retry.
        408 | 500..=599 => Error::Transient(format!("{what}: server error (HTTP {status})")),
        _ => Error::InvalidConfig(format!("{what}: the server refused the request (HTTP {status})")),
    }
}

/// Whether a response is an HTML page (a listing), by its `Content-Type`.
fn is_html(response: &Response) -> bool {
    response.header("content-type").is_some_and(|t| t.to_ascii_lowercase().contains("text/html"))
}

/// Milliseconds since the epoch of a `Last-Modified` header (an HTTP date, RFC 9110 §5.6.7).
fn last_modified(response: &Response) -> Option<u64> {
    let date = httpdate::parse_http_date(response.header("last-modified")?).ok()?;
    date.duration_since(UNIX_EPOCH).ok().map(|d| d.as_millis() as u64)
}

/// `total` from `Content-Range: bytes a-b/total` (or `bytes */total`).
fn content_range_total(response: &Response) -> Option<u64> {
    let value = response.header("content-range")?;
    value.rsplit_once('/').and_then(|(_, total)| total.trim().parse().ok())
}

/// One page of `keys`: sorted, those after `cursor` (the last key of the previous page), at most
/// `page_size` (at least 1); the next cursor is the page's last key when more keys follow.
fn page_of(mut keys: Vec<String>, cursor: Option<String>, page_size: u32) -> Page {
    keys.sort_unstable();
    keys.dedup();
    let start = cursor.map_or(0, |c| keys.partition_point(|k| *k <= c));
    let rest = &keys[start..];
    let taken = &rest[..rest.len().min(page_size.max(1) as usize)];
    let next_cursor = if rest.len() > taken.len() { taken.last().cloned() } else { None };
    let entries =
        taken.iter().map(|key| Entry { key: key.clone(), size: 0, etag: None, last_modified: None }).collect();
    Page { entries, next_cursor, skipped: Vec::new() }
}

impl HttpIndex {
    /// `scheme://authority/folder/`, the URL every key is relative to.
    fn base_url(&self) -> String {
        format!("{}://{}{}", if self.https { "https" } else { "http" }, self.authority, self.base_path)
    }

    /// The encoded request path of `key` (a file, or a folder when it ends in `/`).
    fn path_of(&self, key: &str) -> String {
        format!("{}{}", self.base_path, encode_key(key))
    }

    /// The request path of a file key. `not-found` for what cannot be a file: an empty key, a
    /// folder (`a/`), and `.`/`..` segments (which would step out of the served folder).
    fn file_path(&self, key: &str) -> Result<String, Error> {
        let segments_ok = key.split('/').all(|s| !s.is_empty() && s != "." && s != "..");
        if !segments_ok {
            return Err(Error::NotFound(format!("{key}: not a file of {}", self.base_url())));
        }
        Ok(self.path_of(key))
    }

    fn send(
        &self,
        method: &'static str,
        path_and_query: String,
        headers: Vec<(String, String)>,
    ) -> Result<Response, Error> {
        http::send(&Request {
            method,
            https: self.https,
            authority: self.authority.clone(),
            path_and_query,
            headers,
            body: Vec::new(),
        })
    }

    /// The folder a prefix names (Label Studio's `prefix.rstrip('/') + '/'`), empty for none.
    ///
    /// # Errors
    /// `invalid-config` for `.`/`..` segments, which would list outside the served folder.
    fn folder_of(prefix: &str) -> Result<String, Error> {
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|s| s == "." || s == "..") {
            return Err(Error::InvalidConfig(format!(
                "prefix {prefix} must stay inside the served folder (no . or ..)"
            )));
        }
        Ok(if prefix.is_empty() { String::new() } else { format!("{prefix}/") })
    }

    /// The listing page of `folder` (empty for the root, else a key prefix ending in `/`).
    fn folder_page(&self, folder: &str) -> Result<Response, Error> {
        self.send("GET", self.path_of(folder), Vec::new())
    }

    /// The children of `folder`; `None` when it is not a folder (404, or not an HTML page).
    fn folder_links(&self, folder: &str) -> Result<Option<Vec<Link>>, Error> {
        let response = self.folder_page(folder)?;
        if response.status == 404 {
            return Ok(None);
        }
        if !response.is_success() {
            return Err(status_error(&response, &format!("{}{}", self.base_url(), encode_key(folder))));
        }
        if !is_html(&response) {
            return Ok(None);
        }
        Ok(Some(html::links(&String::from_utf8_lossy(&response.body))))
    }

    /// Appends the file keys under `folder` to `keys`, descending into subfolders if `recursive`.
    fn walk(&self, folder: &str, recursive: bool, depth: usize, keys: &mut Vec<String>) -> Result<(), Error> {
        let Some(links) = self.folder_links(folder)? else { return Ok(()) };
        for link in links {
            match link {
                Link::File(name) => keys.push(format!("{folder}{name}")),
                Link::Folder(name) if recursive && depth < MAX_DEPTH => {
                    self.walk(&format!("{folder}{name}/"), true, depth + 1, keys)?;
                }
                Link::Folder(_) => {}
            }
        }
        Ok(())
    }
}

impl Backend for HttpIndex {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            type_name: TYPE_NAME.into(),
            title: "HTTP directory index".into(),
            // Read only: the host offers no export storage of this type.
            capabilities: Capabilities::READ,
            settings: vec![
                setting(
                    "url",
                    true,
                    "URL of the served folder, whose page is a directory listing, e.g. http://127.0.0.1:8000/data/",
                ),
                setting("prefix", false, "Subfolder of url to import (optional)"),
            ],
            // HTTP to the host and port of `url` only; no default hosts, as `url` is required.
            grants: vec![GrantRequest::Http(HttpGrant { endpoint_setting: "url".into(), default_hosts: vec![] })],
            regex_on_basename: false,
            key_value: false,
            // None: task URLs are plain http(s) URLs the browser fetches itself. Declaring
            // `http`/`https` would make the host rewrite them to its resolver and proxy the bytes.
            uri_schemes: vec![],
        }
    }

    /// Parses `url` and `prefix`; no I/O (the host opens a backend per instance).
    fn open(config: Config) -> Result<Self, Error> {
        let (https, authority, base_path) = parse_url(config.require("url")?)?;
        let prefix = config.get("prefix").unwrap_or("").trim_matches('/').to_string();
        Ok(HttpIndex { https, authority, base_path, prefix })
    }

    /// The folder (`url`, or its `prefix` subfolder) must answer with a listing page.
    fn check(&self, _direction: Direction) -> Result<(), Error> {
        let folder = Self::folder_of(&self.prefix)?;
        let what = format!("{}{}", self.base_url(), encode_key(&folder));
        let response = self.folder_page(&folder)?;
        if !response.is_success() {
            return Err(status_error(&response, &what));
        }
        if !is_html(&response) {
            return Err(Error::InvalidConfig(format!("{what} is not a directory listing (an HTML page)")));
        }
        Ok(())
    }

    /// Keys under `prefix` (a folder: Label Studio's `prefix.rstrip('/') + '/'`), sorted by full
    /// path; only direct children unless `recursive`. The cursor is the last key of the previous page.
    ///
    /// Listing pages have no paging of their own, so every call walks the whole tree again and
    /// cuts out one page: O(n) requests per page. Fine for an example and a small folder; an
    /// adapter for a large store would use the store's own paging, as the S3 adapter does.
    ///
    /// Sizes are 0 and there is no etag: listing pages carry no machine-readable size (python's
    /// none at all). [`Backend::stat`] gives the real size.
    fn list(&self, prefix: &str, cursor: Option<String>, page_size: u32, recursive: bool) -> Result<Page, Error> {
        let folder = Self::folder_of(prefix)?;
        let mut keys = Vec::new();
        self.walk(&folder, recursive, 0, &mut keys)?;
        Ok(page_of(keys, cursor, page_size))
    }

    /// `HEAD` on the file's URL (`GET` when the server refuses `HEAD`). A folder is `not-found`.
    fn stat(&self, key: &str) -> Result<Entry, Error> {
        let path = self.file_path(key)?;
        let mut response = self.send("HEAD", path.clone(), Vec::new())?;
        // 405 Method Not Allowed, 501 Not Implemented: a server without HEAD.
        let head = !matches!(response.status, 405 | 501);
        if !head {
            response = self.send("GET", path, Vec::new())?;
        }
        if !response.is_success() {
            return Err(status_error(&response, &self.blob_uri(key)));
        }
        let size = match head {
            true => response.header("content-length").and_then(|v| v.trim().parse().ok()).unwrap_or(0),
            false => response.body.len() as u64,
        };
        Ok(Entry {
            key: key.to_string(),
            size,
            etag: response.header("etag").map(str::to_string),
            last_modified: last_modified(&response),
        })
    }

    /// `GET` on the file's URL, with a `Range` header for a range. A server that ignores `Range`
    /// (python's http.server does) answers 200 with the whole file, cut here; a range past the
    /// end gives the bytes up to the end, or none.
    fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Object, Error> {
        let path = self.file_path(key)?;
        let mut headers = Vec::new();
        if let Some(r) = &range {
            let end = r.end.map(|e| e.to_string()).unwrap_or_default();
            headers.push(("range".to_string(), format!("bytes={}-{end}", r.start)));
        }
        let response = self.send("GET", path, headers)?;
        let (body, total_size) = match response.status {
            // 206 Partial Content: the range, and the total in Content-Range.
            206 => {
                let total = content_range_total(&response);
                let total = total.unwrap_or(response.body.len() as u64);
                (response.body.clone(), total)
            }
            // 416 Range Not Satisfiable: the range starts past the end.
            416 => (Vec::new(), content_range_total(&response).unwrap_or(0)),
            200 => {
                let total = response.body.len() as u64;
                let body = match &range {
                    Some(r) => {
                        let start = r.start.min(total) as usize;
                        let end = r.end.map_or(total, |e| e.saturating_add(1).min(total)) as usize;
                        response.body[start..end.max(start)].to_vec()
                    }
                    None => response.body.clone(),
                };
                (body, total)
            }
            _ => return Err(status_error(&response, &self.blob_uri(key))),
        };
        Ok(Object {
            body,
            total_size,
            etag: response.header("etag").map(str::to_string),
            content_type: response.header("content-type").map(str::to_string),
            last_modified: last_modified(&response),
        })
    }

    /// The file's absolute URL, key percent-encoded: `http://127.0.0.1:8000/data/with%20space.json`.
    fn blob_uri(&self, key: &str) -> String {
        format!("{}{}", self.base_url(), encode_key(key))
    }

    /// The key of a URL under `url` (inverse of [`Backend::blob_uri`]).
    fn key_of_uri(&self, uri: &str) -> Option<String> {
        let rest = uri.strip_prefix(&self.base_url())?;
        if rest.contains(['?', '#']) {
            return None;
        }
        let key = percent_decode_str(rest).decode_utf8().ok()?.into_owned();
        self.file_path(&key).ok().map(|_| key)
    }
}

// The component's exports exist only in the wasm build; the native build is for unit tests.
#[cfg(target_arch = "wasm32")]
stowage_sdk::export_adapter!(HttpIndex);

#[cfg(test)]
mod tests {
    use super::*;

    fn open(settings: &[(&str, &str)]) -> Result<HttpIndex, Error> {
        let settings = settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        HttpIndex::open(Config { settings, secrets: vec![] })
    }

    fn message(e: Error) -> String {
        match e {
            Error::InvalidConfig(m) | Error::NotFound(m) | Error::Denied(m) | Error::Transient(m) => m,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn describe_asks_for_the_url_host_only() {
        let info = HttpIndex::describe();
        assert_eq!((info.type_name.as_str(), info.title.as_str()), ("httpindex", "HTTP directory index"));
        assert_eq!(info.capabilities, Capabilities::READ);
        let names: Vec<(&str, bool)> = info.settings.iter().map(|s| (s.name.as_str(), s.required)).collect();
        assert_eq!(names, [("url", true), ("prefix", false)]);
        let [GrantRequest::Http(grant)] = info.grants.as_slice() else { panic!("{:?}", info.grants) };
        assert_eq!((grant.endpoint_setting.as_str(), grant.default_hosts.len()), ("url", 0));
    }

    #[test]
    fn urls_are_parsed_and_normalised() {
        let s = open(&[("url", "http://127.0.0.1:8000")]).unwrap();
        assert_eq!(s.blob_uri("a b.json"), "http://127.0.0.1:8000/a%20b.json");
        let s = open(&[("url", "HTTPS://Files.Example.com/my data/"), ("prefix", "/sub/")]).unwrap();
        assert_eq!(
            (s.authority.as_str(), s.base_path.as_str(), s.prefix.as_str()),
            ("files.example.com", "/my%20data/", "sub")
        );
        assert_eq!(open(&[("url", "https://h/my%20data")]).unwrap().base_path, "/my%20data/");
        for (url, why) in [
            ("", "url must be set"),
            ("ftp://h/", "must start with http:// or https://"),
            ("127.0.0.1:8000/", "must start with http:// or https://"),
            ("http:///x", "has no host"),
            ("http://me:pw@h/", "must not carry credentials"),
            ("http://h/?token=x", "must not have a query"),
        ] {
            let m = message(open(&[("url", url)]).unwrap_err());
            assert!(m.contains(why), "{url}: {m}");
            assert!(!m.contains("pw") && !m.contains("token"), "{m}");
        }
    }

    /// Blob URIs percent-encode each key once; `key_of_uri` decodes them back.
    #[test]
    fn blob_uris_round_trip() {
        let s = open(&[("url", "http://127.0.0.1:8000/data/")]).unwrap();
        for (key, uri) in [
            ("with space.json", "http://127.0.0.1:8000/data/with%20space.json"),
            ("unicodé-日本.json", "http://127.0.0.1:8000/data/unicod%C3%A9-%E6%97%A5%E6%9C%AC.json"),
            ("sub/p+c%#.json", "http://127.0.0.1:8000/data/sub/p%2Bc%25%23.json"),
        ] {
            assert_eq!(s.blob_uri(key), uri);
            assert_eq!(s.key_of_uri(uri).as_deref(), Some(key));
        }
        for other in [
            "http://127.0.0.1:8000/other/a.json",
            "http://127.0.0.1:9000/data/a.json",
            "http://127.0.0.1:8000/data/",
            "http://127.0.0.1:8000/data/sub/",
            "http://127.0.0.1:8000/data/../x.json",
            "http://127.0.0.1:8000/data/a.json?x=1",
            "s3://data/a.json",
        ] {
            assert_eq!(s.key_of_uri(other), None, "{other}");
        }
    }

    #[test]
    fn folders_and_dot_segments_are_not_files() {
        let s = open(&[("url", "http://127.0.0.1:8000/")]).unwrap();
        for key in ["", "a/", "../x.json", "a/./b", "a//b"] {
            assert!(matches!(s.stat(key), Err(Error::NotFound(_))), "{key}");
        }
        assert!(matches!(s.list("../up", None, 10, false), Err(Error::InvalidConfig(_))));
        assert_eq!(HttpIndex::folder_of("/a/b/").unwrap(), "a/b/");
        assert_eq!(HttpIndex::folder_of("").unwrap(), "");
    }

    fn response(status: u16, headers: &[(&str, &str)]) -> Response {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Response { status, headers, body: b"<html>internal details</html>".to_vec() }
    }

    /// Statuses map to kinds; the server's body never reaches the message.
    #[test]
    fn statuses_become_typed_errors() {
        let what = "http://h/a.json";
        let kind = |status: u16, headers: &[(&str, &str)]| status_error(&response(status, headers), what);
        assert!(matches!(kind(404, &[]), Error::NotFound(m) if m == "http://h/a.json: not found"));
        assert!(matches!(kind(301, &[("location", "/a.json/")]), Error::NotFound(_)));
        assert!(
            matches!(kind(403, &[]), Error::Denied(m) if m == "http://h/a.json: the server refused access (HTTP 403)")
        );
        assert!(matches!(kind(401, &[]), Error::Denied(_)));
        assert!(matches!(kind(429, &[("retry-after", "7")]), Error::Throttled(Some(7))));
        assert!(matches!(kind(503, &[]), Error::Transient(m) if m == "http://h/a.json: server error (HTTP 503)"));
        assert!(matches!(kind(400, &[]), Error::InvalidConfig(_)));
        assert!(!message(kind(500, &[])).contains("internal"));
    }

    /// Pages of 2 over 5 keys: sorted, each key once, the cursor being the last key returned.
    #[test]
    fn pages_follow_the_cursor() {
        let keys: Vec<String> = ["b", "a/x", "c", "a", "b"].iter().map(|k| k.to_string()).collect();
        let mut cursor = None;
        let mut pages = Vec::new();
        loop {
            let page = page_of(keys.clone(), cursor, 2);
            pages.push(page.entries.iter().map(|e| e.key.clone()).collect::<Vec<_>>());
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(pages, [vec!["a", "a/x"], vec!["b", "c"]]);
        assert_eq!(page_of(keys.clone(), None, 0).entries.len(), 1, "page size 0 still makes progress");
        assert!(page_of(keys, Some("c".into()), 10).entries.is_empty());
    }

    #[test]
    fn content_ranges_and_dates() {
        assert_eq!(content_range_total(&response(206, &[("content-range", "bytes 0-9/100")])), Some(100));
        assert_eq!(content_range_total(&response(416, &[("content-range", "bytes */42")])), Some(42));
        assert_eq!(
            last_modified(&response(200, &[("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT")])),
            Some(784_111_777_000)
        );
    }
}
