//! S3 failures → WIT error kinds.
//!
//! The kind decides what the host does: it retries only `transient` and `throttled`. Messages are
//! built from the S3 error `Code` and a fixed description quoted from the AWS error-code list
//! (<https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>); the server's own
//! `Message` is never shown, so neither an internal server's response body (Label Studio's
//! CVE-2025-25297) nor anything a request carried (signature, token) ends up in a message.

use stowage_sdk::http::{code_like, failure_detail};
use stowage_sdk::{Error, ErrorKind};

use crate::config::valid_region;
use crate::xml::{ErrorBody, parse_error};

/// Kind and documented meaning of an S3 error code; `None` for codes not listed here (the HTTP
/// status decides then).
pub fn code_kind(code: &str) -> Option<(ErrorKind, &'static str)> {
    use ErrorKind::*;
    Some(match code {
        // 403 AccessDenied: "Access Denied".
        "AccessDenied" => (Denied, "Access Denied"),
        // 403: "There is a problem with your AWS account that prevents the action from completing successfully."
        "AccountProblem" => {
            (Denied, "There is a problem with the AWS account that prevents the action from completing successfully")
        }
        // 403: "All access to this Amazon S3 resource has been disabled."
        "AllAccessDisabled" => (Denied, "All access to this Amazon S3 resource has been disabled"),
        // 403: "The AWS access key ID that you provided does not exist in our records."
        "InvalidAccessKeyId" => (Denied, "The AWS access key ID does not exist in the server's records"),
        // 403: "The request signature that the server calculated does not match the signature that
        // you provided. Check your AWS secret access key and signing method."
        "SignatureDoesNotMatch" => (Denied, "The request signature does not match; check the secret access key"),
        // 400: "The provided token has expired."
        "ExpiredToken" => (Denied, "The provided session token has expired"),
        // 400: "The provided token is malformed or otherwise not valid."
        "InvalidToken" => (Denied, "The provided session token is malformed or otherwise not valid"),
        // 400: "The provided token must be refreshed."
        "TokenRefreshRequired" => (Denied, "The provided session token must be refreshed"),
        // 403: "The difference between the request time and the server's time is too large."
        "RequestTimeTooSkewed" => {
            (Denied, "The difference between the request time and the server's time is too large")
        }
        // 403: "The operation is not valid for the current state of the object." (archived objects)
        "InvalidObjectState" => (Denied, "The operation is not valid for the current state of the object (archived?)"),
        // 404: "The specified key does not exist."
        "NoSuchKey" => (NotFound, "The specified key does not exist"),
        // 404: "The specified bucket does not exist."
        "NoSuchBucket" => (NotFound, "The specified bucket does not exist"),
        // 400: "The authorization header that you provided is not valid." (a wrong `region_name`)
        "AuthorizationHeaderMalformed" => {
            (InvalidConfig, "The authorization header is not valid (is region_name right?)")
        }
        // 301: "The bucket that you are attempting to access must be addressed using the specified endpoint."
        "PermanentRedirect" => {
            (InvalidConfig, "The bucket must be addressed using another endpoint (is region_name right?)")
        }
        // 400: "The specified bucket is not valid."
        "InvalidBucketName" => (InvalidConfig, "The specified bucket is not valid"),
        // 400: "Invalid Argument"
        "InvalidArgument" => (InvalidConfig, "Invalid Argument"),
        // 400: "The request is not valid." (e.g. an SSE-KMS request over plain HTTP)
        "InvalidRequest" => (InvalidConfig, "The request is not valid"),
        // 400: "Your key is too long."
        "KeyTooLongError" => (InvalidConfig, "The key is too long"),
        // 400: "Your proposed upload exceeds the maximum allowed object size."
        "EntityTooLarge" => (InvalidConfig, "The upload exceeds the maximum allowed object size"),
        // 400: "The XML that you provided was not well formed or did not validate against our published schema."
        "MalformedXML" => (InvalidConfig, "The XML request body was not well formed"),
        // 400: "The Content-MD5 or checksum value that you specified is not valid."
        "InvalidDigest" => (InvalidConfig, "The Content-MD5 value is not valid"),
        // 411: "You must provide the Content-Length HTTP header."
        "MissingContentLength" => (InvalidConfig, "The Content-Length header is missing"),
        // 416: "The requested range cannot be satisfied."
        "InvalidRange" => (InvalidConfig, "The requested range cannot be satisfied"),
        // 400: "The Content-MD5 or checksum value that you specified did not match what the server received."
        "BadDigest" => (Transient, "The body's checksum did not match what the server received"),
        // 500: "An internal error occurred. Try again."
        "InternalError" => (Transient, "An internal error occurred"),
        // 400: "Your socket connection to the server was not read from or written to within the timeout period."
        "RequestTimeout" => (Transient, "The connection was not read from or written to within the timeout period"),
        // 409: "A conflicting conditional operation is currently in progress against this resource. Try again."
        "OperationAborted" => (Transient, "A conflicting operation is in progress against this resource"),
        // 307: "You are being redirected to the bucket while the Domain Name System (DNS) server is being updated."
        "TemporaryRedirect" | "Redirect" => (Transient, "Temporary redirect while DNS is being updated"),
        // 503: "Please reduce your request rate."
        "SlowDown" => (Throttled, "Please reduce your request rate"),
        // 503: "Service is unable to handle request." / "Reduce your request rate."
        "ServiceUnavailable" => (Throttled, "Service is unable to handle request"),
        // 429 from S3-compatible servers (not an AWS S3 code).
        "TooManyRequests" | "Throttling" | "RequestLimitExceeded" => (Throttled, "Too many requests"),
        // 501: "A header that you provided implies functionality that is not implemented."
        "NotImplemented" => (Unsupported, "The server does not implement this functionality"),
        // 405: "The specified method is not allowed against this resource."
        "MethodNotAllowed" => (Unsupported, "The specified method is not allowed against this resource"),
        _ => return None,
    })
}

/// Kind of a response that carries no (known) error code (HEAD responses have no body, and
/// proxies in front of S3 answer with HTML): the SDK's [`status_kind`](stowage_sdk::http::status_kind),
/// except 409, which S3 sends for `OperationAborted` ("A conflicting conditional operation is
/// currently in progress against this resource. Try again.").
pub fn status_kind(status: u16) -> ErrorKind {
    match status {
        409 => ErrorKind::Transient,
        _ => stowage_sdk::http::status_kind(status),
    }
}

/// A failed response, parsed: status, S3 code (if any) and the kind.
#[derive(Debug, PartialEq)]
pub struct S3Failure {
    pub status: u16,
    pub code: Option<String>,
    pub region: Option<String>,
    pub kind: ErrorKind,
    pub retry_after: Option<u32>,
}

impl S3Failure {
    /// Classifies a non-2xx response. `region` is the `x-amz-bucket-region` header, if any;
    /// `retry_after` the `Retry-After` header in seconds.
    pub fn new(status: u16, body: &[u8], region: Option<String>, retry_after: Option<u32>) -> S3Failure {
        let parsed: Option<ErrorBody> = parse_error(body);
        // Codes come from the server: keep them only if they look like codes (`Kms.Disabled`).
        let code = parsed.as_ref().map(|e| e.code.clone()).filter(|c| code_like(c, b"."));
        let region = region.or_else(|| parsed.and_then(|e| e.region));
        let region = region.filter(|r| valid_region(r));
        let kind = code.as_deref().and_then(code_kind).map_or_else(|| status_kind(status), |(kind, _)| kind);
        S3Failure { status, code, region, kind, retry_after }
    }

    /// True for a 404 about the bucket (NoSuchBucket, or a code-less 404 of a bucket request).
    pub fn is_no_such_bucket(&self) -> bool {
        self.code.as_deref() == Some("NoSuchBucket")
    }

    /// The WIT error, with `what` (e.g. `s3://bucket/key`) in front of the message.
    pub fn into_error(self, what: &str) -> Error {
        let doc = self.code.as_deref().and_then(code_kind).map(|(_, doc)| doc);
        let mut message = format!("{what}: {}", failure_detail(self.status, self.code.as_deref(), doc));
        if let Some(region) = &self.region
            && (matches!(self.kind, ErrorKind::InvalidConfig) || (300..400).contains(&self.status))
        {
            message.push_str(&format!("; the bucket is in region {region}"));
        }
        self.kind.error(message, self.retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str, message: &str) -> Vec<u8> {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>{code}</Code><Message>{message}</Message><RequestId>4442587FB7D0A2F9</RequestId><HostId>x</HostId></Error>"#
        )
        .into_bytes()
    }

    /// The sample error bodies of the AWS documentation map to the expected kinds.
    #[test]
    fn documented_samples() {
        let cases = [
            (404, "NoSuchKey", "The resource you requested does not exist", ErrorKind::NotFound),
            (404, "NoSuchBucket", "The specified bucket does not exist", ErrorKind::NotFound),
            (403, "AccessDenied", "Access Denied", ErrorKind::Denied),
            (
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
                ErrorKind::Denied,
            ),
            (
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
                ErrorKind::Denied,
            ),
            (400, "ExpiredToken", "The provided token has expired.", ErrorKind::Denied),
            (
                400,
                "AuthorizationHeaderMalformed",
                "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'",
                ErrorKind::InvalidConfig,
            ),
            (
                301,
                "PermanentRedirect",
                "The bucket you are attempting to access must be addressed using the specified endpoint.",
                ErrorKind::InvalidConfig,
            ),
            (500, "InternalError", "We encountered an internal error. Please try again.", ErrorKind::Transient),
            (503, "SlowDown", "Please reduce your request rate.", ErrorKind::Throttled),
            (
                501,
                "NotImplemented",
                "A header you provided implies functionality that is not implemented",
                ErrorKind::Unsupported,
            ),
            (
                400,
                "RequestTimeout",
                "Your socket connection to the server was not read from or written to within the timeout period.",
                ErrorKind::Transient,
            ),
            (418, "SomethingNew", "?", ErrorKind::InvalidConfig),
            (502, "SomethingNew", "?", ErrorKind::Transient),
        ];
        for (status, code, message, kind) in cases {
            let f = S3Failure::new(status, &body(code, message), None, None);
            assert_eq!((f.code.as_deref(), f.kind), (Some(code), kind), "{code}");
        }
    }

    /// HEAD responses have no body: the status decides.
    #[test]
    fn bodiless_statuses() {
        for (status, kind) in [
            (404, ErrorKind::NotFound),
            (403, ErrorKind::Denied),
            (400, ErrorKind::InvalidConfig),
            (301, ErrorKind::InvalidConfig),
            (500, ErrorKind::Transient),
            (503, ErrorKind::Throttled),
            (429, ErrorKind::Throttled),
            (501, ErrorKind::Unsupported),
            (409, ErrorKind::Transient),
        ] {
            assert_eq!(S3Failure::new(status, b"", None, None).kind, kind, "{status}");
        }
    }

    /// The message quotes the documented meaning, never the server's message.
    #[test]
    fn messages() {
        let f = S3Failure::new(404, &body("NoSuchKey", "secret internal detail"), None, None);
        let Error::NotFound(m) = f.into_error("s3://b/k") else { panic!() };
        assert_eq!(m, "s3://b/k: The specified key does not exist (NoSuchKey, HTTP 404)");
        let f = S3Failure::new(301, &body("PermanentRedirect", "x"), Some("eu-west-1".into()), None);
        let Error::InvalidConfig(m) = f.into_error("bucket b") else { panic!() };
        assert!(m.ends_with("; the bucket is in region eu-west-1"), "{m}");
        let e = S3Failure::new(503, &body("SlowDown", "x"), None, Some(3)).into_error("b");
        assert!(matches!(e, Error::Throttled(Some(3))));
        let Error::Transient(m) = S3Failure::new(502, b"<html>internal proxy page</html>", None, None).into_error("b")
        else {
            panic!()
        };
        assert_eq!(m, "b: HTTP 502");
    }

    /// A code that does not look like a code is dropped, so a hostile server cannot inject text.
    #[test]
    fn odd_codes_are_dropped() {
        let f = S3Failure::new(403, &body("Look at http://evil", "x"), None, None);
        assert_eq!((f.code, f.kind), (None, ErrorKind::Denied));
    }
}
