//! Plain HTTP/1.1 requests over `wasi:http` for adapters (feature `http`): percent-encoding rules
//! for paths and queries, a request/response pair with whole bodies, and [`send`].
//!
//! The transport uses the `wasip2` bindings directly (not a higher-level client) so that the
//! host's `HttpRequestDenied` (a request outside the storage's grant or the address policy)
//! reaches the adapter as such and becomes a clear `denied` error. Native builds (unit tests) have
//! no `wasi:http`: there every request is refused.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::Error;

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

/// An HTTP request about to be sent.
#[derive(Debug)]
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

impl Request {
    /// The absolute URL of the request (`scheme://authority/path?query`).
    pub fn url(&self) -> String {
        format!("{}://{}{}", if self.https { "https" } else { "http" }, self.authority, self.path_and_query)
    }
}

/// A response, body read in full (empty for `HEAD`).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Names as the host gives them (lower case); values that are not UTF-8 are dropped.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
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
