//! V4 signed URLs (`GOOG4-RSA-SHA256`) and RS256 signatures with a service-account key.
//!
//! The algorithm is Google's "V4 signing process"
//! (<https://cloud.google.com/storage/docs/access-control/signing-urls-manually>):
//!
//! 1. canonical request = method, path, canonical query (sorted, RFC 3986-encoded), canonical
//!    headers (lower-case names, trimmed values with inner whitespace collapsed, sorted), signed
//!    header names, and the payload (`UNSIGNED-PAYLOAD`, or `x-goog-content-sha256` when given);
//! 2. string to sign = `GOOG4-RSA-SHA256`, the timestamp, the credential scope
//!    `{date}/auto/storage/goog4_request` and the hex SHA-256 of the canonical request;
//! 3. signature = hex of the RSASSA-PKCS1-v1_5 SHA-256 signature of the string to sign.
//!
//! `tests/v4_signatures.rs` checks this module against Google's conformance vectors.

use rsa::pkcs1v15::SigningKey;
use rsa::sha2::{Digest, Sha256};
use rsa::signature::{SignatureEncoding, Signer};
use stowage_sdk::Error;
use stowage_sdk::http::encode_value;
use stowage_sdk::time::basic_stamps;

/// Longest validity of a V4 signed URL: 7 days (604,800 s); Google refuses longer ones.
pub const MAX_EXPIRES_SECONDS: u32 = 604_800;

/// What a signed URL grants: one request, given by its parts.
#[derive(Debug, Clone)]
pub struct UrlRequest<'a> {
    /// `GET`, `PUT`, `POST`, ...
    pub method: &'a str,
    pub https: bool,
    /// `host[:port]` the URL points at; its host part is signed as the `host` header.
    pub authority: &'a str,
    /// The path, already percent-encoded (e.g. `/bucket/a%20b.txt`); signed as is.
    pub path: &'a str,
    /// Extra query parameters (raw; encoded here), signed with the `X-Goog-*` ones.
    pub query: &'a [(&'a str, &'a str)],
    /// Extra headers the URL's user must send (raw); signed with `host`.
    pub headers: &'a [(&'a str, &'a str)],
}

/// The `host` value V4 signing uses for an authority: the host name without its port. Google's
/// conformance vector "Simple GET with non-default hostname" (`http://localhost:8080`) is signed
/// with `host:localhost`, as its libraries do.
pub fn signed_host(authority: &str) -> &str {
    match authority.rsplit_once(':') {
        Some((host, port))
            if port.bytes().all(|b| b.is_ascii_digit()) && (!host.contains(':') || host.ends_with(']')) =>
        {
            host
        }
        _ => authority,
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A header value as V4 signing canonicalizes it: trimmed, runs of spaces and tabs made one space.
fn canonical_header_value(value: &str) -> String {
    value.split([' ', '\t']).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
}

/// RSASSA-PKCS1-v1_5 with SHA-256 of `message` (RS256, GOOG4-RSA-SHA256).
///
/// # Errors
/// `invalid-config` if the key cannot sign (it parsed, so this is not expected).
pub fn rs256(signer: &SigningKey<Sha256>, message: &[u8]) -> Result<Vec<u8>, Error> {
    signer
        .try_sign(message)
        .map(|s| s.to_vec())
        .map_err(|_| Error::InvalidConfig("the service account key cannot sign".into()))
}

/// The canonical request and the query string of a V4 signed URL (without the signature).
fn canonical(request: &UrlRequest<'_>, credential: &str, timestamp: &str, expires: u32) -> (String, String) {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), canonical_header_value(v)))
        .chain(std::iter::once(("host".to_string(), signed_host(request.authority).to_string())))
        .collect();
    headers.sort();
    let signed_headers = headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let expires = expires.to_string();
    let mut query: Vec<(String, String)> = [
        ("X-Goog-Algorithm", "GOOG4-RSA-SHA256"),
        ("X-Goog-Credential", credential),
        ("X-Goog-Date", timestamp),
        ("X-Goog-Expires", expires.as_str()),
        ("X-Goog-SignedHeaders", signed_headers.as_str()),
    ]
    .iter()
    .chain(request.query.iter())
    .map(|(k, v)| (encode_value(k), encode_value(v)))
    .collect();
    query.sort();
    let query = query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let payload =
        headers.iter().find(|(k, _)| k == "x-goog-content-sha256").map_or("UNSIGNED-PAYLOAD", |(_, v)| v.as_str());
    let header_lines: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical_request =
        format!("{}\n{}\n{query}\n{header_lines}\n{signed_headers}\n{payload}", request.method, request.path);
    (canonical_request, query)
}

/// A V4 signed URL for `request`, valid `expires` seconds (capped at [`MAX_EXPIRES_SECONDS`])
/// from Unix time `now`, signed by service account `email` with `signer`.
///
/// # Errors
/// `invalid-config` if the key cannot sign.
pub fn signed_url(
    request: &UrlRequest<'_>,
    email: &str,
    signer: &SigningKey<Sha256>,
    now: u64,
    expires: u32,
) -> Result<String, Error> {
    let (date, timestamp) = basic_stamps(now);
    let scope = format!("{date}/auto/storage/goog4_request");
    let credential = format!("{email}/{scope}");
    let expires = expires.clamp(1, MAX_EXPIRES_SECONDS);
    let (canonical_request, query) = canonical(request, &credential, &timestamp, expires);
    let string_to_sign =
        format!("GOOG4-RSA-SHA256\n{timestamp}\n{scope}\n{}", hex(&Sha256::digest(canonical_request.as_bytes())));
    let signature = hex(&rs256(signer, string_to_sign.as_bytes())?);
    let scheme = if request.https { "https" } else { "http" };
    Ok(format!("{scheme}://{}{}?{query}&X-Goog-Signature={signature}", request.authority, request.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_signed_without_port() {
        assert_eq!(signed_host("localhost:8080"), "localhost");
        assert_eq!(signed_host("storage.googleapis.com"), "storage.googleapis.com");
        assert_eq!(signed_host("[::1]:4443"), "[::1]");
        assert_eq!(signed_host("[::1]"), "[::1]");
    }

    #[test]
    fn header_values_are_collapsed() {
        assert_eq!(canonical_header_value(" xyz ,  abc, def  , xyz   "), "xyz , abc, def , xyz");
        assert_eq!(canonical_header_value("\tabc\t\t\t\tdef\t"), "abc def");
    }

    /// The canonical request of Google's "Simple GET" example, line by line.
    #[test]
    fn canonical_request_of_a_simple_get() {
        let request = UrlRequest {
            method: "GET",
            https: true,
            authority: "storage.googleapis.com",
            path: "/test-bucket/test-object",
            query: &[],
            headers: &[],
        };
        let credential =
            "test-iam-credentials@dummy-project-id.iam.gserviceaccount.com/20190201/auto/storage/goog4_request";
        let (canonical, _) = canonical(&request, credential, "20190201T090000Z", 10);
        assert_eq!(
            canonical,
            "GET\n/test-bucket/test-object\nX-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=test-iam-credentials%40dummy-project-id.iam.gserviceaccount.com%2F20190201%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=20190201T090000Z&X-Goog-Expires=10&X-Goog-SignedHeaders=host\nhost:storage.googleapis.com\n\nhost\nUNSIGNED-PAYLOAD"
        );
        assert_eq!(
            hex(&Sha256::digest(canonical.as_bytes())),
            "00e2fb794ea93d7adb703edaebdd509821fcc7d4f1a79ac5c8d2b394df109320"
        );
    }
}
