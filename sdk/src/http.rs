//! Plain HTTP/1.1 requests over `wasi:http` for adapters (feature `http`): percent-encoding rules
//! for paths and queries, a request/response pair with whole bodies, and [`send`]; the
//! [`Endpoint`] a storage setting names; and the reading of responses every HTTP storage API shares
//! (status classes as [`ErrorKind`]s, `Retry-After`, `Content-Range`, `ETag`).
//!
//! The transport uses the `wasip2` bindings directly (not a higher-level client) so that the
//! host's `HttpRequestDenied` (a request outside the storage's grant or the address policy)
//! reaches the adapter as such and becomes a clear `denied` error. Native builds (unit tests) have
//! no `wasi:http`: there every request is refused.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::{ByteRange, Error, ErrorKind};

/// Bytes kept as they are in a key path: the unreserved set (`A-Za-z0-9-_.~`, RFC 3986) and `/`.
/// Everything else, including space, `+`, `%`, `#`, `?` and non-ASCII, is percent-encoded.
pub const KEY_PATH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// Bytes kept as they are in a query name or value, or a single path segment: the unreserved set only.
pub const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes a key for a URL path, `/` kept (once: a signer must not encode again).
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_PATH).to_string()
}

/// Percent-encodes a value for a query or a single path segment (`/` encoded too).
pub fn encode_value(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// `?a=1&b=2`, names and values percent-encoded; empty for no parameters. A parameter with an
/// empty value is written `name=` (`?delete=`), which S3 and SigV4 treat like `?delete`.
pub fn query_string(query: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in query.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.extend(utf8_percent_encode(name, QUERY_VALUE));
        out.push('=');
        out.extend(utf8_percent_encode(value, QUERY_VALUE));
    }
    out
}

/// An HTTP request about to be sent. `Debug` shows no secret: method, scheme, authority, the path
/// without its query (which may hold a SAS or V4 signature), header names only (`authorization`,
/// `x-ms-*` and `x-goog-*` values may be credentials) and the body's length only.
pub struct Request {
    /// `GET`, `HEAD`, `PUT`, `POST`, `DELETE` or another verb.
    pub method: &'static str,
    /// `https` when true, else plain `http`.
    pub https: bool,
    /// `host[:port]`.
    pub authority: String,
    /// Path and query, already encoded, starting with `/`.
    pub path_and_query: String,
    /// Header names in any case; sent lower-cased.
    pub headers: Vec<(String, String)>,
    /// Sent for `PUT` and `POST` only.
    pub body: Vec<u8>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, query) = match self.path_and_query.split_once('?') {
            Some((path, _)) => (path, Some("<omitted>")),
            None => (self.path_and_query.as_str(), None),
        };
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("https", &self.https)
            .field("authority", &self.authority)
            .field("path", &path)
            .field("query", &query)
            .field("headers", &header_names(&self.headers))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The names of `headers`, for `Debug` output without their values.
fn header_names(headers: &[(String, String)]) -> Vec<&str> {
    headers.iter().map(|(name, _)| name.as_str()).collect()
}

impl Request {
    /// The absolute URL of the request (`scheme://authority/path?query`).
    pub fn url(&self) -> String {
        format!("{}://{}{}", if self.https { "https" } else { "http" }, self.authority, self.path_and_query)
    }

    /// Adds a `content-length` header (the body's length in bytes) to a `PUT` or `POST`, or to any
    /// request with a body: object stores refuse uploads without it, and signers (SigV4, SharedKey)
    /// sign it. Call it once, before signing.
    pub fn set_content_length(&mut self) {
        if !self.body.is_empty() || matches!(self.method, "PUT" | "POST") {
            self.headers.push(("content-length".into(), self.body.len().to_string()));
        }
    }
}

/// A response, body read in full (empty for `HEAD`). `Debug` shows the status, header names and
/// the body's length only: a body may hold a credential (an OAuth2 token answer).
pub struct Response {
    /// The HTTP status code (`200`, `206`, `404`, ...); any status is a response, not an error.
    pub status: u16,
    /// Names as the host gives them (lower case); values that are not UTF-8 are dropped.
    pub headers: Vec<(String, String)>,
    /// The whole body, as received (not decoded); empty for `HEAD` and bodiless answers.
    pub body: Vec<u8>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &header_names(&self.headers))
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Response {
    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// A 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `Retry-After` in seconds (its delay-seconds form, RFC 9110 §10.2.3, which S3, GCS and Azure
    /// send with 429 and 503); `None` when absent or an HTTP date.
    pub fn retry_after(&self) -> Option<u32> {
        self.header("retry-after").and_then(|v| v.trim().parse().ok())
    }
}

/// The kind of a failed response that carries no error code the backend knows (a `HEAD` answer has
/// no body; a proxy in front of the service answers with HTML), from its status alone:
///
/// | status | kind | why |
/// |---|---|---|
/// | 401, 403 | `denied` | credentials missing, wrong or not allowed |
/// | 404 | `not-found` | |
/// | 405, 501 | `unsupported` | the service does not implement the operation |
/// | 429, 503 | `throttled` | too many requests / overloaded (RFC 6585 §4, RFC 9110 §15.6.4); S3's `SlowDown` and Azure's `ServerBusy` are 503 |
/// | 408, other 5xx | `transient` | the same request may succeed later |
/// | anything else (other 4xx, an unfollowed 3xx) | `invalid-config` | the request as configured cannot work |
///
/// A backend whose documentation says otherwise for a status (GCS: 503 is a `backendError` to
/// retry, 410 a gone upload session) matches that status first and falls back to this.
pub fn status_kind(status: u16) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::Denied,
        404 => ErrorKind::NotFound,
        405 | 501 => ErrorKind::Unsupported,
        429 | 503 => ErrorKind::Throttled,
        408 | 500..=599 => ErrorKind::Transient,
        _ => ErrorKind::InvalidConfig,
    }
}

/// Whether an error code or reason sent by a server is safe to repeat in a message: 1 to 64 ASCII
/// letters and digits, plus the bytes in `punctuation` (S3 `Kms.Disabled`: `.`; GCS reasons: `_`).
/// Anything else (spaces, URLs, markup) could carry text a hostile server wants shown.
pub fn code_like(value: &str, punctuation: &[u8]) -> bool {
    (1..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || punctuation.contains(&b))
}

/// What went wrong, in the form every adapter's messages use: `{doc} ({code}, HTTP {status})` for
/// a code the backend documents (`doc` being the fixed description quoted from the provider's
/// error list, never the server's own message), `{code} (HTTP {status})` for another code,
/// `HTTP {status}` without one (`doc` is then ignored).
pub fn failure_detail(status: u16, code: Option<&str>, doc: Option<&str>) -> String {
    match (code, doc) {
        (Some(code), Some(doc)) => format!("{doc} ({code}, HTTP {status})"),
        (Some(code), None) => format!("{code} (HTTP {status})"),
        (None, _) => format!("HTTP {status}"),
    }
}

/// The `Range` header value of a byte range: `bytes={start}-{end}` (`end` inclusive, RFC 9110
/// §14.1.2), or `bytes={start}-` to the end of the object. Azure takes the same value in `x-ms-range`.
pub fn range_header(range: &ByteRange) -> String {
    match range.end {
        Some(end) => format!("bytes={}-{end}", range.start),
        None => format!("bytes={}-", range.start),
    }
}

/// The complete length from a `Content-Range` value (`bytes 0-9/100` or `bytes */100`, RFC 9110
/// §14.4), in bytes; `None` when unknown (`bytes 0-9/*`) or unreadable.
pub fn content_range_total(value: &str) -> Option<u64> {
    value.rsplit_once('/').and_then(|(_, total)| total.trim().parse().ok())
}

/// An entity tag without its quotes or weak marker (`"abc"` and `W/"abc"` → `abc`), as stowage
/// stores ETags from headers and listings alike.
pub fn unquote_etag(etag: &str) -> String {
    let etag = etag.trim();
    etag.strip_prefix("W/").unwrap_or(etag).trim_matches('"').to_string()
}

/// An HTTP(S) service a storage setting names, parsed from `http(s)://host[:port][/base]`
/// (`s3_endpoint`, `gcs_endpoint`, `azure_endpoint`, a service account's `token_uri`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `https` when true, else plain `http`.
    pub https: bool,
    /// `host[:port]`, lower-cased, without the scheme's default port (`:443`, `:80`).
    pub authority: String,
    /// The path the service lives under: empty, or `/`-led without a trailing `/` (`/base`).
    pub base_path: String,
}

/// Why an endpoint setting is not a usable URL; [`EndpointError::reason`] says it in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointError {
    /// Not `http://` or `https://`.
    Scheme,
    /// User info, a query, a fragment, white space or another refused character.
    NotPlain,
    /// Nothing between the scheme and the path.
    NoHost,
}

impl EndpointError {
    /// Why, in words, as messages end: `it must start with http:// or https://`, `only scheme,
    /// host, port and path are allowed`, `the host is missing`.
    pub fn reason(self) -> &'static str {
        match self {
            EndpointError::Scheme => "it must start with http:// or https://",
            EndpointError::NotPlain => "only scheme, host, port and path are allowed",
            EndpointError::NoHost => "the host is missing",
        }
    }

    /// `invalid-config("{setting} {value:?} is not a valid URL: {reason}")`; with `value` `None`
    /// (a setting that may hold secrets, e.g. part of a connection string) the value is not shown:
    /// `"{setting} is not a valid URL: {reason}"`.
    pub fn into_error(self, setting: &str, value: Option<&str>) -> Error {
        let shown = value.map(|v| format!(" {v:?}")).unwrap_or_default();
        Error::InvalidConfig(format!("{setting}{shown} is not a valid URL: {}", self.reason()))
    }
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for EndpointError {}

impl Endpoint {
    /// Parses `http(s)://host[:port][/base]`: the scheme must be `http` or `https`; user info
    /// (`@`), a query (`?`), a fragment (`#`) and white space are refused, so a setting cannot
    /// smuggle a second host or a parameter into every request. Trailing `/`s are dropped.
    pub fn parse(raw: &str) -> Result<Endpoint, EndpointError> {
        Endpoint::parse_refusing(raw, &[])
    }

    /// [`Endpoint::parse`], refusing `also_refused` characters after the scheme as well (Azure
    /// refuses `%`: its signatures cover the base path as written).
    pub fn parse_refusing(raw: &str, also_refused: &[char]) -> Result<Endpoint, EndpointError> {
        let (https, rest) = if let Some(rest) = raw.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = raw.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(EndpointError::Scheme);
        };
        if rest.contains(['?', '#', '@']) || rest.contains(also_refused) || rest.contains(char::is_whitespace) {
            return Err(EndpointError::NotPlain);
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(EndpointError::NoHost);
        }
        let default_port = if https { ":443" } else { ":80" };
        let authority = authority.strip_suffix(default_port).unwrap_or(authority).to_ascii_lowercase();
        let base_path = path.trim_matches('/');
        let base_path = if base_path.is_empty() { String::new() } else { format!("/{base_path}") };
        Ok(Endpoint { https, authority, base_path })
    }

    /// The endpoint of setting `setting`, whose value `raw` is not secret and is quoted in the
    /// error: `s3_endpoint "ftp://x" is not a valid URL: it must start with http:// or https://`.
    pub fn from_setting(setting: &str, raw: &str) -> Result<Endpoint, Error> {
        Endpoint::parse(raw).map_err(|e| e.into_error(setting, Some(raw)))
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// `scheme://authority`, no path.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme(), self.authority)
    }

    /// `scheme://authority/base`, without a trailing `/`.
    pub fn url(&self) -> String {
        format!("{}{}", self.origin(), self.base_path)
    }

    /// A request to this endpoint's host; `path_and_query` is encoded and already holds the base
    /// path if the service wants it.
    pub fn request(
        &self,
        method: &'static str,
        path_and_query: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Request {
        Request { method, https: self.https, authority: self.authority.clone(), path_and_query, headers, body }
    }
}

/// Sends `request` and reads the whole response. Any HTTP status is a response.
///
/// # Errors
/// Transport failures only: `denied` when the host refused the request (outside the grant or the
/// address policy), `transient` for DNS, connection, TLS and timeout failures, `invalid-config`
/// for a request that cannot be built. Messages name the host, never headers or bodies.
pub fn send(request: &Request) -> Result<Response, Error> {
    transport::send(request)
}

/// `denied`, for a request the host refused (grant or address policy): names the host, nothing else.
pub fn refused(authority: &str) -> Error {
    Error::Denied(format!("the stowage host refused the connection to {authority} (address policy)"))
}

#[cfg(target_arch = "wasm32")]
mod transport {
    use std::io::Write;

    use crate::Error;
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
    use wasip2::io::streams::StreamError;

    use super::{Request, Response, refused};

    /// Bytes asked for per read of the response body.
    const READ_CHUNK: u64 = 256 * 1024;

    fn transport_error(host: &str, code: &ErrorCode) -> Error {
        match code {
            ErrorCode::HttpRequestDenied => refused(host),
            ErrorCode::HttpRequestUriInvalid => Error::InvalidConfig(format!("invalid request URL for {host}")),
            ErrorCode::DnsError(_) => Error::Transient(format!("cannot resolve {host}")),
            ErrorCode::ConnectionRefused => Error::Transient(format!("{host} refused the connection")),
            ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout | ErrorCode::ConnectionWriteTimeout => {
                Error::Transient(format!("timeout talking to {host}"))
            }
            ErrorCode::TlsCertificateError | ErrorCode::TlsAlertReceived(_) | ErrorCode::TlsProtocolError => {
                Error::Transient(format!("TLS error talking to {host}"))
            }
            other => Error::Transient(format!("HTTP request to {host} failed: {}", code_name(other))),
        }
    }

    /// The variant name of an error code (payload-free, so nothing of the request leaks).
    fn code_name(code: &ErrorCode) -> String {
        let debug = format!("{code:?}");
        debug.split(['(', ' ', '{']).next().unwrap_or("error").to_string()
    }

    fn method(name: &str) -> Method {
        match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn send(request: &Request) -> Result<Response, Error> {
        let host = request.authority.as_str();
        let invalid = |what: &str| Error::InvalidConfig(format!("cannot build the request to {host}: {what}"));
        let entries: Vec<(String, Vec<u8>)> =
            request.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec())).collect();
        let headers = Fields::from_list(&entries).map_err(|_| invalid("bad header"))?;
        let outgoing = OutgoingRequest::new(headers);
        outgoing.set_method(&method(request.method)).map_err(|_| invalid("bad method"))?;
        let scheme = if request.https { Scheme::Https } else { Scheme::Http };
        outgoing.set_scheme(Some(&scheme)).map_err(|_| invalid("bad scheme"))?;
        outgoing.set_authority(Some(host)).map_err(|_| invalid("bad host"))?;
        outgoing.set_path_with_query(Some(&request.path_and_query)).map_err(|_| invalid("bad path"))?;

        let has_body = matches!(request.method, "PUT" | "POST");
        let body = if has_body { Some(outgoing.body().map_err(|_| invalid("body taken"))?) } else { None };
        // Send first, then stream the body: the host reads the body while sending.
        let future = outgoing_handler::handle(outgoing, None).map_err(|e| transport_error(host, &e))?;
        let mut body_failed = false;
        if let Some(body) = body {
            match body.write() {
                Ok(mut stream) => {
                    body_failed = stream.write_all(&request.body).is_err() || stream.blocking_flush().is_err();
                    drop(stream);
                }
                Err(()) => body_failed = true,
            }
            body_failed |= OutgoingBody::finish(body, None).is_err();
        }
        let response = loop {
            match future.get() {
                Some(result) => break result,
                None => future.subscribe().block(),
            }
        };
        let response = match response {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => return Err(transport_error(host, &code)),
            Err(()) => return Err(Error::Transient(format!("HTTP request to {host} failed"))),
        };
        if body_failed {
            return Err(Error::Transient(format!("the request body could not be sent to {host}")));
        }
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .filter_map(|(k, v)| String::from_utf8(v).ok().map(|v| (k, v)))
            .collect();
        let mut body = Vec::new();
        if request.method != "HEAD" {
            let incoming = response.consume().map_err(|()| Error::Transient("response body unavailable".into()))?;
            let stream = incoming.stream().map_err(|()| Error::Transient("response body unavailable".into()))?;
            loop {
                match stream.blocking_read(READ_CHUNK) {
                    Ok(chunk) => body.extend_from_slice(&chunk),
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(e)) => {
                        let why = wasip2::http::types::http_error_code(&e)
                            .map_or_else(|| "read failed".to_string(), |c| code_name(&c));
                        return Err(Error::Transient(format!("reading the response from {host} failed: {why}")));
                    }
                }
            }
            drop(stream);
            drop(incoming);
        }
        Ok(Response { status, headers, body })
    }
}

/// Native builds (unit tests) have no `wasi:http`: every request fails as refused.
#[cfg(not(target_arch = "wasm32"))]
mod transport {
    use crate::Error;

    use super::{Request, Response, refused};

    pub fn send(request: &Request) -> Result<Response, Error> {
        Err(refused(&request.authority))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte but the unreserved set and `/` is encoded, once.
    #[test]
    fn key_encoding() {
        assert_eq!(encode_key("a/b c+d%e#f?g&h=i"), "a/b%20c%2Bd%25e%23f%3Fg%26h%3Di");
        assert_eq!(encode_key("été/日本.txt"), "%C3%A9t%C3%A9/%E6%97%A5%E6%9C%AC.txt");
        assert_eq!(encode_key("A-Z_a.z~0/9"), "A-Z_a.z~0/9");
        assert_eq!(encode_key("a%20b"), "a%2520b");
        assert_eq!(encode_value("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn query_strings() {
        assert_eq!(query_string(&[]), "");
        assert_eq!(
            query_string(&[("list-type", "2"), ("prefix", "a b/+"), ("delete", "")]),
            "?list-type=2&prefix=a%20b%2F%2B&delete="
        );
    }

    fn response(headers: &[(&str, &str)]) -> Response {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Response { status: 200, headers, body: vec![] }
    }

    /// A body or an upload method gets `content-length`; a bodiless GET does not.
    #[test]
    fn content_length() {
        let mut put = Endpoint::parse("http://h").unwrap().request("PUT", "/k".into(), vec![], vec![]);
        put.set_content_length();
        assert_eq!(put.headers, [("content-length".to_string(), "0".to_string())]);
        let mut get = Endpoint::parse("http://h").unwrap().request("GET", "/k".into(), vec![], vec![]);
        get.set_content_length();
        assert!(get.headers.is_empty());
        let mut delete = Endpoint::parse("http://h").unwrap().request("DELETE", "/".into(), vec![], b"abc".to_vec());
        delete.set_content_length();
        assert_eq!(delete.headers, [("content-length".to_string(), "3".to_string())]);
    }

    #[test]
    fn status_classes() {
        use ErrorKind::*;
        let cases = [
            (401, Denied),
            (403, Denied),
            (404, NotFound),
            (405, Unsupported),
            (501, Unsupported),
            (429, Throttled),
            (503, Throttled),
            (408, Transient),
            (500, Transient),
            (502, Transient),
            (504, Transient),
            (409, InvalidConfig),
            (410, InvalidConfig),
            (400, InvalidConfig),
            (301, InvalidConfig),
            (418, InvalidConfig),
        ];
        for (status, kind) in cases {
            assert_eq!(status_kind(status), kind, "{status}");
        }
    }

    #[test]
    fn codes_and_details() {
        assert!(code_like("NoSuchKey", b"") && code_like("Kms.Disabled", b".") && code_like("not_found", b"_"));
        assert!(!code_like("", b"") && !code_like("Kms.Disabled", b"") && !code_like("Not Found", b"._"));
        assert!(!code_like("look at http://evil", b".") && !code_like(&"A".repeat(65), b""));
        assert_eq!(
            failure_detail(404, Some("NoSuchKey"), Some("The key does not exist")),
            "The key does not exist (NoSuchKey, HTTP 404)"
        );
        assert_eq!(failure_detail(400, Some("NewCode"), None), "NewCode (HTTP 400)");
        assert_eq!(failure_detail(502, None, Some("ignored")), "HTTP 502");
    }

    #[test]
    fn response_headers() {
        assert_eq!(response(&[("Retry-After", " 7 ")]).retry_after(), Some(7));
        assert_eq!(response(&[("retry-after", "Fri, 01 Feb 2019 09:00:00 GMT")]).retry_after(), None);
        assert_eq!(response(&[]).retry_after(), None);
        assert_eq!(content_range_total("bytes 0-9/100"), Some(100));
        assert_eq!(content_range_total("bytes */42"), Some(42));
        assert_eq!(content_range_total("bytes 0-9/*"), None);
        assert_eq!(range_header(&ByteRange { start: 5, end: Some(9) }), "bytes=5-9");
        assert_eq!(range_header(&ByteRange { start: 5, end: None }), "bytes=5-");
        assert_eq!(unquote_etag(" \"abc\" "), "abc");
        assert_eq!(unquote_etag("W/\"abc\""), "abc");
        assert_eq!(unquote_etag("XrY7u+Ae7tCTyyK7j1rNww=="), "XrY7u+Ae7tCTyyK7j1rNww==");
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:3900/").unwrap();
        assert_eq!((e.https, e.authority.as_str(), e.base_path.as_str()), (false, "127.0.0.1:3900", ""));
        assert_eq!((e.origin(), e.url()), ("http://127.0.0.1:3900".to_string(), "http://127.0.0.1:3900".to_string()));
        let e = Endpoint::parse("https://S3.Example.com:443/base//").unwrap();
        assert_eq!((e.https, e.authority.as_str(), e.base_path.as_str()), (true, "s3.example.com", "/base"));
        assert_eq!((e.scheme(), e.url()), ("https", "https://s3.example.com/base".to_string()));
        assert_eq!(Endpoint::parse("http://h:443/a/b").unwrap().authority, "h:443");
        assert_eq!(Endpoint::parse("http://h/a%20b").unwrap().base_path, "/a%20b");
        let cases = [
            ("ftp://x", EndpointError::Scheme),
            ("s3.example.com", EndpointError::Scheme),
            ("file:///etc", EndpointError::Scheme),
            ("http://", EndpointError::NoHost),
            ("http:///path", EndpointError::NoHost),
            ("http://u:p@host", EndpointError::NotPlain),
            ("http://h/?x", EndpointError::NotPlain),
            ("http://h/#x", EndpointError::NotPlain),
            ("http://h /x", EndpointError::NotPlain),
        ];
        for (raw, error) in cases {
            assert_eq!(Endpoint::parse(raw), Err(error), "{raw}");
        }
        assert_eq!(Endpoint::parse_refusing("http://h/a%20b", &['%']), Err(EndpointError::NotPlain));
    }

    /// The value is quoted for plain settings and left out for secret ones.
    #[test]
    fn endpoint_messages() {
        let Err(Error::InvalidConfig(m)) = Endpoint::from_setting("s3_endpoint", "ftp://x") else { panic!() };
        assert_eq!(m, "s3_endpoint \"ftp://x\" is not a valid URL: it must start with http:// or https://");
        let Error::InvalidConfig(m) = EndpointError::NotPlain.into_error("the connection string's BlobEndpoint", None)
        else {
            panic!()
        };
        assert_eq!(
            m,
            "the connection string's BlobEndpoint is not a valid URL: only scheme, host, port and path are allowed"
        );
        assert_eq!(EndpointError::NoHost.to_string(), "the host is missing");
    }

    /// `Debug` of a request or response never shows header values, the query or the body.
    #[test]
    fn debug_hides_secrets() {
        let request = Request {
            method: "PUT",
            https: true,
            authority: "acct.blob.core.windows.net".into(),
            path_and_query: "/c/k?sv=2021-08-06&sig=SIGNATURE%3D".into(),
            headers: vec![
                ("authorization".into(), "SharedKey acct:SHAREDKEYSIG".into()),
                ("x-goog-signature".into(), "GOOGSIG".into()),
                ("x-ms-copy-source-authorization".into(), "Bearer MSTOKEN".into()),
            ],
            body: b"BODYSECRET".to_vec(),
        };
        let shown = format!("{request:?}");
        for secret in ["SIGNATURE", "sig=", "sv=", "SHAREDKEYSIG", "GOOGSIG", "MSTOKEN", "BODYSECRET"] {
            assert!(!shown.contains(secret), "{shown} shows {secret}");
        }
        for shown_part in ["PUT", "acct.blob.core.windows.net", "\"/c/k\"", "authorization", "x-goog-signature", "10"] {
            assert!(shown.contains(shown_part), "{shown} lacks {shown_part}");
        }
        let plain = Endpoint::parse("http://h").unwrap().request("GET", "/b/k".into(), vec![], vec![]);
        assert!(format!("{plain:?}").contains("query: None"), "{plain:?}");
        let response = Response {
            status: 200,
            headers: vec![("set-cookie".into(), "COOKIE".into())],
            body: br#"{"access_token":"TOKEN"}"#.to_vec(),
        };
        let shown = format!("{response:?}");
        assert!(!shown.contains("TOKEN") && !shown.contains("COOKIE"), "{shown}");
        assert!(shown.contains("200") && shown.contains("set-cookie"), "{shown}");
    }

    /// Without wasi:http (native), a request is refused, naming the host only.
    #[test]
    fn native_requests_are_refused() {
        let request = Request {
            method: "GET",
            https: false,
            authority: "10.0.0.1:9000".into(),
            path_and_query: "/b?secret=x".into(),
            headers: vec![("authorization".into(), "s3cr3t".into())],
            body: vec![],
        };
        assert_eq!(request.url(), "http://10.0.0.1:9000/b?secret=x");
        let Err(Error::Denied(m)) = send(&request) else { panic!("not denied") };
        assert_eq!(m, "the stowage host refused the connection to 10.0.0.1:9000 (address policy)");
    }
}
