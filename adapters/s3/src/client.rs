//! Requests to S3: addressing, key encoding, signing, and the raw `wasi:http` transport.
//!
//! The transport uses the `wasip2` bindings directly (not wstd) so that the host's
//! `HttpRequestDenied` reaches the adapter as such and becomes a clear `denied` error.

use std::time::{Duration, SystemTime};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use stowage_sdk::Error;

use crate::config::S3Config;
use crate::sign;

/// Bytes kept as they are in a key path: SigV4's unreserved set (`A-Za-z0-9-_.~`) and `/`.
/// Everything else, including space, `+`, `%`, `#`, `?` and non-ASCII, is percent-encoded.
pub const KEY_PATH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// Bytes kept as they are in a query name or value: the unreserved set only.
pub const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes a key for a URL path (once; the signer does not encode again).
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_PATH).to_string()
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

/// An HTTP request about to be signed and sent.
#[derive(Debug)]
pub struct Request {
    pub method: &'static str,
    /// Path and query, encoded, starting with `/`.
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A response, body read in full.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Where requests for one bucket go.
#[derive(Clone, Debug, PartialEq)]
pub struct Addressing {
    pub https: bool,
    /// `host[:port]`.
    pub authority: String,
    /// Prepended to `/{key}`: empty (virtual-hosted) or `/{bucket}` (path-style), after the
    /// endpoint's base path.
    pub path_prefix: String,
}

impl Addressing {
    /// With `s3_endpoint`: path-style `{endpoint}/{bucket}/{key}`. Without: AWS virtual-hosted
    /// `https://{bucket}.s3.{region}.amazonaws.com/{key}`, or path-style on
    /// `s3.{region}.amazonaws.com` for a bucket name with dots (a dotted name breaks the
    /// `*.s3.{region}.amazonaws.com` certificate, as botocore also knows).
    pub fn of(config: &S3Config) -> Addressing {
        match &config.endpoint {
            Some(e) => Addressing {
                https: e.https,
                authority: e.authority.clone(),
                path_prefix: format!("{}/{}", e.base_path, config.bucket),
            },
            None if config.bucket.contains('.') => Addressing {
                https: true,
                authority: format!("s3.{}.amazonaws.com", config.region),
                path_prefix: format!("/{}", config.bucket),
            },
            None => Addressing {
                https: true,
                authority: format!("{}.s3.{}.amazonaws.com", config.bucket, config.region),
                path_prefix: String::new(),
            },
        }
    }

    /// Path and query of an object (`key` raw, encoded here).
    pub fn object_path(&self, key: &str, query: &[(&str, &str)]) -> String {
        format!("{}/{}{}", self.path_prefix, encode_key(key), query_string(query))
    }

    /// Path and query of the bucket itself (`/` or `/{bucket}`).
    pub fn bucket_path(&self, query: &[(&str, &str)]) -> String {
        let path = if self.path_prefix.is_empty() { "/" } else { self.path_prefix.as_str() };
        format!("{path}{}", query_string(query))
    }

    /// Absolute URL of a path from [`Self::object_path`] or [`Self::bucket_path`].
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}://{}{path_and_query}", if self.https { "https" } else { "http" }, self.authority)
    }
}

/// A configured S3 client for one storage.
pub struct Client {
    pub config: S3Config,
    pub addressing: Addressing,
}

impl Client {
    pub fn new(config: S3Config) -> Client {
        let addressing = Addressing::of(&config);
        Client { config, addressing }
    }

    /// Signs (when credentials are set) and sends `request`. Any HTTP status is a response;
    /// only a transport failure is an error.
    pub fn send(&self, mut request: Request) -> Result<Response, Error> {
        if !request.body.is_empty() || matches!(request.method, "PUT" | "POST") {
            request.headers.push(("content-length".into(), request.body.len().to_string()));
        }
        if let Some(credentials) = &self.config.credentials {
            let url = self.addressing.url(&request.path_and_query);
            let signed = sign::sign_headers(
                request.method,
                &url,
                &request.headers,
                &request.body,
                &self.config.region,
                credentials,
                SystemTime::now(),
            )
            .map_err(|e| Error::InvalidConfig(format!("cannot sign the request: {}", e.0)))?;
            request.headers.extend(signed);
        }
        transport::send(&self.addressing, &request)
    }

    /// A presigned URL for `method` on `key`, valid `expires_in`; plain (unsigned) without
    /// credentials, for public buckets.
    pub fn presign(
        &self,
        method: &str,
        key: &str,
        query: &[(&str, &str)],
        expires_in: Duration,
    ) -> Result<String, Error> {
        let url = self.addressing.url(&self.addressing.object_path(key, query));
        match &self.config.credentials {
            None => Ok(url),
            Some(credentials) => {
                sign::presign_url(method, &url, &self.config.region, credentials, SystemTime::now(), expires_in)
                    .map_err(|e| {
                        Error::InvalidConfig(format!("cannot presign s3://{}/{key}: {}", self.config.bucket, e.0))
                    })
            }
        }
    }
}

/// The message for a request the host refused (grant or address policy).
fn refused(addressing: &Addressing) -> Error {
    Error::Denied(format!("the stowage host refused the connection to {} (address policy)", addressing.authority))
}

#[cfg(target_arch = "wasm32")]
mod transport {
    use std::io::Write;

    use stowage_sdk::Error;
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
    use wasip2::io::streams::StreamError;

    use super::{Addressing, Request, Response, refused};

    /// Bytes asked for per read of the response body.
    const READ_CHUNK: u64 = 256 * 1024;

    fn transport_error(addressing: &Addressing, code: &ErrorCode) -> Error {
        let host = &addressing.authority;
        match code {
            ErrorCode::HttpRequestDenied => refused(addressing),
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

    pub fn send(addressing: &Addressing, request: &Request) -> Result<Response, Error> {
        let invalid =
            |what: &str| Error::InvalidConfig(format!("cannot build the request to {}: {what}", addressing.authority));
        let entries: Vec<(String, Vec<u8>)> =
            request.headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec())).collect();
        let headers = Fields::from_list(&entries).map_err(|_| invalid("bad header"))?;
        let outgoing = OutgoingRequest::new(headers);
        outgoing.set_method(&method(request.method)).map_err(|_| invalid("bad method"))?;
        let scheme = if addressing.https { Scheme::Https } else { Scheme::Http };
        outgoing.set_scheme(Some(&scheme)).map_err(|_| invalid("bad scheme"))?;
        outgoing.set_authority(Some(&addressing.authority)).map_err(|_| invalid("bad host"))?;
        outgoing.set_path_with_query(Some(&request.path_and_query)).map_err(|_| invalid("bad path"))?;

        let has_body = matches!(request.method, "PUT" | "POST");
        let body = if has_body { Some(outgoing.body().map_err(|_| invalid("body taken"))?) } else { None };
        // Send first, then stream the body: the host reads the body while sending.
        let future = outgoing_handler::handle(outgoing, None).map_err(|e| transport_error(addressing, &e))?;
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
            Ok(Err(code)) => return Err(transport_error(addressing, &code)),
            Err(()) => return Err(Error::Transient(format!("HTTP request to {} failed", addressing.authority))),
        };
        if body_failed {
            return Err(Error::Transient(format!("the request body could not be sent to {}", addressing.authority)));
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
                        return Err(Error::Transient(format!(
                            "reading the response from {} failed: {why}",
                            addressing.authority
                        )));
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
    use stowage_sdk::Error;

    use super::{Addressing, Request, Response, refused};

    pub fn send(addressing: &Addressing, _request: &Request) -> Result<Response, Error> {
        Err(refused(addressing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Endpoint;

    fn config(bucket: &str, endpoint: Option<&str>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            prefix: None,
            region: "eu-west-1".into(),
            endpoint: endpoint.map(|e| Endpoint::parse(e).unwrap()),
            credentials: None,
            sse_kms_key_id: None,
        }
    }

    /// Every byte but the unreserved set and `/` is encoded, once.
    #[test]
    fn key_encoding() {
        assert_eq!(encode_key("a/b c+d%e#f?g&h=i"), "a/b%20c%2Bd%25e%23f%3Fg%26h%3Di");
        assert_eq!(encode_key("été/日本.txt"), "%C3%A9t%C3%A9/%E6%97%A5%E6%9C%AC.txt");
        assert_eq!(encode_key("A-Z_a.z~0/9"), "A-Z_a.z~0/9");
        assert_eq!(encode_key("a%20b"), "a%2520b");
    }

    #[test]
    fn query_strings() {
        assert_eq!(query_string(&[]), "");
        assert_eq!(
            query_string(&[("list-type", "2"), ("prefix", "a b/+"), ("delete", "")]),
            "?list-type=2&prefix=a%20b%2F%2B&delete="
        );
    }

    #[test]
    fn aws_virtual_hosted() {
        let a = Addressing::of(&config("my-bucket", None));
        assert_eq!(a.url(&a.object_path("a b.txt", &[])), "https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b.txt");
        assert_eq!(
            a.url(&a.bucket_path(&[("list-type", "2")])),
            "https://my-bucket.s3.eu-west-1.amazonaws.com/?list-type=2"
        );
    }

    #[test]
    fn aws_dotted_bucket_is_path_style() {
        let a = Addressing::of(&config("my.bucket", None));
        assert_eq!(a.url(&a.object_path("k", &[])), "https://s3.eu-west-1.amazonaws.com/my.bucket/k");
        assert_eq!(a.url(&a.bucket_path(&[])), "https://s3.eu-west-1.amazonaws.com/my.bucket");
    }

    #[test]
    fn endpoint_path_style() {
        let a = Addressing::of(&config("stowage-test", Some("http://127.0.0.1:3900")));
        assert_eq!(a.url(&a.object_path("dir/x#1.json", &[])), "http://127.0.0.1:3900/stowage-test/dir/x%231.json");
        assert_eq!(a.url(&a.bucket_path(&[])), "http://127.0.0.1:3900/stowage-test");
        let a = Addressing::of(&config("b", Some("https://minio.example.com/s3/")));
        assert_eq!(a.url(&a.object_path("k", &[])), "https://minio.example.com/s3/b/k");
    }

    /// Anonymous storages get plain URLs.
    #[test]
    fn anonymous_presign_is_plain() {
        let c = Client::new(config("b", Some("http://127.0.0.1:3900")));
        assert_eq!(c.presign("GET", "a b", &[], Duration::from_secs(60)).unwrap(), "http://127.0.0.1:3900/b/a%20b");
    }
}
