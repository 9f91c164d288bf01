//! GCS failures → WIT error kinds.
//!
//! The JSON API answers errors with `{"error": {"code": N, "message": "...", "errors":
//! [{"reason": "...", ...}]}}`; the HTTP status decides the kind and the `reason` names the cause
//! (<https://cloud.google.com/storage/docs/json_api/v1/status-codes>). The host retries only
//! `transient` and `throttled`. Messages quote a fixed description of the reason taken from that
//! page; the server's own `message` is never shown, so neither a custom endpoint's response body
//! (Label Studio's CVE-2025-25297) nor anything a request carried ends up in a message.

use serde::Deserialize;
use stowage_sdk::http::{code_like, failure_detail};
use stowage_sdk::{Error, ErrorKind};

/// The documented meaning of a `reason` (status-codes page above); `None` for reasons not listed
/// here (the reason is then shown bare, if it looks like one).
pub fn reason_doc(reason: &str) -> Option<&'static str> {
    Some(match reason {
        // 400: "The request cannot be completed based on your current Cloud Storage settings."
        "badRequest" => "The request cannot be completed based on the current Cloud Storage settings",
        // 400: "The value for one of fields in the request body was invalid."
        "invalid" | "invalidArgument" => "A value in the request was invalid",
        // 400: "The value for one of the query parameters in the request was invalid."
        "invalidParameter" => "A query parameter in the request was invalid",
        // 400: "A required query parameter / 401: ... credentials were not provided."
        "required" => "A required value (or the credentials) is missing",
        // 400: "Bucket is requester pays bucket but no user project provided."
        "userProjectMissing" => "The bucket is a requester-pays bucket and no billing project was given",
        // 401: "The request does not include valid authentication credentials."
        "authError" | "unauthorized" => "The request does not include valid authentication credentials",
        // 403: "The requester is not authorized to access the resource."
        "forbidden" => "The credentials do not grant access to this resource",
        // 403: "The requester does not have the required IAM permissions."
        "insufficientPermissions" => "The credentials lack the required IAM permissions",
        // 403: "The account associated with the project that owns the bucket or object has been disabled."
        "accountDisabled" => "The account that owns the bucket has been disabled",
        // 403: "The user project specified in the request does not match ... / access is denied."
        "UserProjectAccessDenied" => "Access to the billing project was denied",
        // 403: "This object is under an active hold / retention policy."
        "objectUnderActiveHold" | "retentionPolicyNotMet" => "The object is under a hold or retention policy",
        // 404: "The requested resource was not found."
        "notFound" => "The requested resource was not found",
        // 405: "The HTTP verb is not supported by the URL endpoint used in the request."
        "methodNotAllowed" => "The method is not supported by this endpoint",
        // 409: "The request conflicts with another request in progress."
        "conflict" => "The request conflicts with another request in progress",
        // 412: "At least one of the pre-conditions you specified did not hold."
        "conditionNotMet" => "A precondition of the request did not hold",
        // 413: "The upload is larger than the maximum allowed."
        "uploadTooLarge" => "The upload is larger than the maximum allowed",
        // 416: "The requested Range cannot be satisfied."
        "requestedRangeNotSatisfiable" => "The requested range cannot be satisfied",
        // 429: "The Cloud Storage JSON API supports up to 5,000 requests per second per bucket ..."
        "rateLimitExceeded" | "userRateLimitExceeded" | "tooManyRequests" => "The request rate limit was exceeded",
        // 500/503: "We encountered an internal error. Please try again." / "The service is unavailable."
        "backendError" | "internalError" => "Cloud Storage had an internal error",
        // 502: "Bad Gateway" / 504: "Gateway Timeout".
        "badGateway" | "gatewayTimeout" => "A gateway between stowage and Cloud Storage failed",
        _ => return None,
    })
}

/// Kind of a status (the reason only refines throttling, see [`GcsFailure::new`]): the SDK's
/// [`status_kind`](stowage_sdk::http::status_kind), except where the status-codes page says
/// otherwise: 409 (`conflict`, "another request in progress"), 499 (client closed request) and 503
/// (`backendError`, "The service is unavailable") are retried as `transient`; 410 (a resumable
/// upload session that is gone) is `not-found`.
pub fn status_kind(status: u16) -> ErrorKind {
    match status {
        410 => ErrorKind::NotFound,
        409 | 499 | 503 => ErrorKind::Transient,
        _ => stowage_sdk::http::status_kind(status),
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    reason: String,
}

/// A failed response, parsed: status, reason (if any) and the kind.
#[derive(Debug, PartialEq)]
pub struct GcsFailure {
    /// The HTTP status of the answer.
    pub status: u16,
    /// The first `error.errors[].reason` of the JSON error body (`notFound`, `forbidden`, ...),
    /// kept only if it looks like a reason (never the server's free text); `None` otherwise.
    pub reason: Option<String>,
    /// The error kind: `throttled` for the rate-limit reasons (`rateLimitExceeded`,
    /// `userRateLimitExceeded`, sent with 403 by older APIs), else from the status.
    pub kind: ErrorKind,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u32>,
    /// A 404 about the bucket ("The specified bucket does not exist."), not the object.
    pub bucket_missing: bool,
}

impl GcsFailure {
    /// Classifies a non-2xx response; `retry_after` is the `Retry-After` header in seconds.
    pub fn new(status: u16, body: &[u8], retry_after: Option<u32>) -> GcsFailure {
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        // Reasons come from the server: keep them only if they look like reasons.
        let reason = parsed
            .as_ref()
            .and_then(|b| b.error.errors.first())
            .map(|e| e.reason.clone())
            .filter(|r| code_like(r, b"_"));
        let message = parsed.map(|b| b.error.message).unwrap_or_default();
        let bucket_missing = status == 404 && message.contains("bucket does not exist");
        let kind = match reason.as_deref() {
            // Older APIs answer rate limits with 403.
            Some("rateLimitExceeded" | "userRateLimitExceeded") => ErrorKind::Throttled,
            _ => status_kind(status),
        };
        GcsFailure { status, reason, kind, retry_after, bucket_missing }
    }

    /// What went wrong, without the subject: `{description} ({reason}, HTTP {status})`.
    pub fn detail(&self) -> String {
        if self.bucket_missing {
            return format!("The specified bucket does not exist (HTTP {})", self.status);
        }
        let doc = self.reason.as_deref().and_then(reason_doc);
        failure_detail(self.status, self.reason.as_deref(), doc)
    }

    /// The WIT error, with `what` (e.g. `gs://bucket/key`) in front of the message.
    pub fn into_error(self, what: &str) -> Error {
        self.kind.error(format!("{what}: {}", self.detail()), self.retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: u16, reason: &str, message: &str) -> Vec<u8> {
        serde_json::json!({"error": {"code": code, "message": message,
            "errors": [{"domain": "global", "reason": reason, "message": message}]}})
        .to_string()
        .into_bytes()
    }

    /// Error bodies as the status-codes page shows them map to the expected kinds.
    #[test]
    fn documented_samples() {
        let cases = [
            (404, "notFound", "No such object: b/k", ErrorKind::NotFound),
            (404, "notFound", "The specified bucket does not exist.", ErrorKind::NotFound),
            (401, "required", "Anonymous caller does not have storage.objects.get access", ErrorKind::Denied),
            (401, "authError", "Invalid Credentials", ErrorKind::Denied),
            (
                403,
                "forbidden",
                "sa@p.iam.gserviceaccount.com does not have storage.objects.list access",
                ErrorKind::Denied,
            ),
            (403, "userRateLimitExceeded", "Rate limit", ErrorKind::Throttled),
            (400, "invalid", "Invalid bucket name", ErrorKind::InvalidConfig),
            (400, "required", "Required parameter: project", ErrorKind::InvalidConfig),
            (412, "conditionNotMet", "Precondition Failed", ErrorKind::InvalidConfig),
            (
                429,
                "rateLimitExceeded",
                "The rate of change requests to the object exceeds the rate limit.",
                ErrorKind::Throttled,
            ),
            (500, "backendError", "Backend Error", ErrorKind::Transient),
            (503, "backendError", "Service Unavailable", ErrorKind::Transient),
            (502, "badGateway", "Bad Gateway", ErrorKind::Transient),
            (409, "conflict", "Conflict", ErrorKind::Transient),
            (405, "methodNotAllowed", "Method not allowed", ErrorKind::Unsupported),
        ];
        for (status, reason, message, kind) in cases {
            let f = GcsFailure::new(status, &body(status, reason, message), None);
            assert_eq!((f.reason.as_deref(), f.kind), (Some(reason), kind), "{reason}");
        }
    }

    /// The message quotes the documented meaning, never the server's message; a missing bucket
    /// is told from a missing object.
    #[test]
    fn messages() {
        let f = GcsFailure::new(404, &body(404, "notFound", "No such object: internal detail"), None);
        let Error::NotFound(m) = f.into_error("gs://b/k") else { panic!() };
        assert_eq!(m, "gs://b/k: The requested resource was not found (notFound, HTTP 404)");
        let f = GcsFailure::new(404, &body(404, "notFound", "The specified bucket does not exist."), None);
        assert!(f.bucket_missing);
        let Error::NotFound(m) = f.into_error("gs://b") else { panic!() };
        assert_eq!(m, "gs://b: The specified bucket does not exist (HTTP 404)");
        let f = GcsFailure::new(403, &body(403, "forbidden", "sa@x does not have access"), None);
        let Error::Denied(m) = f.into_error("gs://b/k") else { panic!() };
        assert_eq!(m, "gs://b/k: The credentials do not grant access to this resource (forbidden, HTTP 403)");
        let e = GcsFailure::new(429, &body(429, "rateLimitExceeded", "x"), Some(7)).into_error("gs://b");
        assert!(matches!(e, Error::Throttled(Some(7))));
        let Error::Transient(m) = GcsFailure::new(502, b"<html>internal proxy page</html>", None).into_error("gs://b")
        else {
            panic!()
        };
        assert_eq!(m, "gs://b: HTTP 502");
        // fake-gcs-server's reason is "Not Found", which does not look like a reason.
        let fake = br#"{"error":{"code":404,"message":"Not Found","errors":[{"domain":"global","reason":"Not Found","message":"Not Found"}]}}"#;
        let f = GcsFailure::new(404, fake, None);
        assert_eq!((f.reason.as_deref(), f.kind), (None, ErrorKind::NotFound));
    }

    /// Without a body the status decides; GCS retries 409, 499 and 503 and reads 410 as gone.
    #[test]
    fn bodiless_statuses() {
        use ErrorKind::*;
        let cases = [
            (404, NotFound),
            (410, NotFound),
            (401, Denied),
            (403, Denied),
            (429, Throttled),
            (503, Transient),
            (409, Transient),
            (499, Transient),
            (500, Transient),
            (408, Transient),
            (405, Unsupported),
            (400, InvalidConfig),
        ];
        for (status, kind) in cases {
            assert_eq!(GcsFailure::new(status, b"", None).kind, kind, "{status}");
        }
    }

    /// A reason that does not look like one is dropped, so a hostile server cannot inject text.
    #[test]
    fn odd_reasons_are_dropped() {
        let f = GcsFailure::new(403, &body(403, "look at http://evil", "x"), None);
        assert_eq!((f.reason, f.kind), (None, ErrorKind::Denied));
    }
}
