//! AWS Signature Version 4 for S3, with `aws-sigv4`: `Authorization` headers for API calls and
//! query-string presigned URLs. Pure functions of (request, credentials, time), so they run and
//! are tested natively.
//!
//! S3 rules (unlike other AWS services): the path is encoded once, not twice, and never
//! normalised (`a/../b` and `a//b` are distinct keys). URLs passed in must already be encoded
//! ([`stowage_sdk::http::encode_key`]).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use percent_encoding::utf8_percent_encode;

use crate::config::Credentials;
use stowage_sdk::http::QUERY_VALUE;

/// Signing failed; the reason comes from aws-sigv4 and holds no secret (only which part of the
/// request could not be canonicalised).
#[derive(Debug)]
pub struct SignError(pub String);

fn identity(credentials: &Credentials) -> Identity {
    AwsCredentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
        credentials.session_token.clone(),
        None,
        "stowage",
    )
    .into()
}

fn s3_settings() -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings
}

/// Headers to add to a request so that it is signed: `x-amz-date`, `x-amz-content-sha256`
/// (the body's SHA-256), `authorization` and, with a session token, `x-amz-security-token`.
/// `headers` are the request's other headers; all of them are signed.
pub fn sign_headers(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    region: &str,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<Vec<(String, String)>, SignError> {
    let identity = identity(credentials);
    let mut settings = s3_settings();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = signing_params(&identity, region, time, settings)?;
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| SignError(e.to_string()))?;
    let (instructions, _signature) = sign(request, &params).map_err(|e| SignError(e.to_string()))?.into_parts();
    let (headers, _params) = instructions.into_parts();
    Ok(headers.into_iter().map(|h| (h.name().to_string(), h.value().to_string())).collect())
}

/// SigV4 parameters for the `s3` service.
fn signing_params<'a>(
    identity: &'a Identity,
    region: &'a str,
    time: SystemTime,
    settings: SigningSettings,
) -> Result<aws_sigv4::http_request::SigningParams<'a>, SignError> {
    Ok(v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| SignError(e.to_string()))?
        .into())
}

/// `url` with the SigV4 query parameters appended (`X-Amz-Algorithm` … `X-Amz-Signature`, and
/// `X-Amz-Security-Token` with a session token), valid for `expires_in` from `time`.
pub fn presign_url(
    method: &str,
    url: &str,
    region: &str,
    credentials: &Credentials,
    time: SystemTime,
    expires_in: Duration,
) -> Result<String, SignError> {
    let identity = identity(credentials);
    let mut settings = s3_settings();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires_in);
    let params = signing_params(&identity, region, time, settings)?;
    let request = SignableRequest::new(method, url, std::iter::empty(), SignableBody::UnsignedPayload)
        .map_err(|e| SignError(e.to_string()))?;
    let (instructions, _signature) = sign(request, &params).map_err(|e| SignError(e.to_string()))?.into_parts();
    let mut out = String::from(url);
    let mut separator = if url.contains('?') { '&' } else { '?' };
    for (name, value) in instructions.params() {
        out.push(separator);
        out.push_str(name);
        out.push('=');
        out.extend(utf8_percent_encode(value, QUERY_VALUE));
        separator = '&';
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_credentials(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_string),
        }
    }

    /// 2013-05-24T00:00:00Z, the time of the AWS SigV4 examples.
    fn example_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    /// The presigned-URL example of the AWS docs ("Authenticating Requests: Using Query
    /// Parameters"), reproduced exactly.
    #[test]
    fn aws_documented_presign_example() {
        let url = presign_url(
            "GET",
            "https://examplebucket.s3.amazonaws.com/test.txt",
            "us-east-1",
            &example_credentials(None),
            example_time(),
            Duration::from_secs(86400),
        )
        .unwrap();
        assert!(url.starts_with("https://examplebucket.s3.amazonaws.com/test.txt?"), "{url}");
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request",
            "X-Amz-Date=20130524T000000Z",
            "X-Amz-Expires=86400",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
        ] {
            assert!(url.contains(part), "{part} missing from {url}");
        }
    }

    /// The GET-object example of the AWS docs (header signing, "Signature Calculations for the
    /// Authorization Header"): Range header, empty payload.
    #[test]
    fn aws_documented_header_example() {
        let headers = sign_headers(
            "GET",
            "https://examplebucket.s3.amazonaws.com/test.txt",
            &[("range".into(), "bytes=0-9".into())],
            b"",
            "us-east-1",
            &example_credentials(None),
            example_time(),
        )
        .unwrap();
        let get = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str());
        assert_eq!(get("x-amz-date"), Some("20130524T000000Z"));
        assert_eq!(
            get("x-amz-content-sha256"),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(
            get("authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
                 SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
                 Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            )
        );
    }

    /// A session token travels as `X-Amz-Security-Token` (presign) or header.
    #[test]
    fn session_token() {
        let creds = example_credentials(Some("FQoGZXIvYXdzEXAMPLE/TOKEN+="));
        let url = presign_url(
            "GET",
            "https://b.s3.amazonaws.com/k",
            "us-east-1",
            &creds,
            example_time(),
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(url.contains("X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLE%2FTOKEN%2B%3D"), "{url}");
        let headers =
            sign_headers("HEAD", "https://b.s3.amazonaws.com/k", &[], b"", "us-east-1", &creds, example_time())
                .unwrap();
        assert!(headers.iter().any(|(k, v)| k == "x-amz-security-token" && v == "FQoGZXIvYXdzEXAMPLE/TOKEN+="));
    }

    /// Already-encoded keys and query values are signed as given: no double encoding.
    #[test]
    fn encoded_keys_are_not_reencoded() {
        let url = "https://b.s3.amazonaws.com/a%20b%2Bc%25d/%C3%A9?response-content-type=image%2Fjpeg";
        let signed =
            presign_url("GET", url, "us-east-1", &example_credentials(None), example_time(), Duration::from_secs(60))
                .unwrap();
        assert!(signed.starts_with(&format!("{url}&X-Amz-")), "{signed}");
    }
}
