//! Azure Blob failures → WIT error kinds.
//!
//! The kind decides what the host does: it retries only `transient` and `throttled`. Messages are
//! built from the Azure error code (the `x-ms-error-code` header, which HEAD answers carry too, or
//! the `<Error><Code>` of the body) and a fixed description quoted from the Azure error-code lists:
//! <https://learn.microsoft.com/en-us/rest/api/storageservices/common-rest-api-error-codes> and
//! <https://learn.microsoft.com/en-us/rest/api/storageservices/blob-service-error-codes>.
//! The server's own `Message` and `AuthenticationErrorDetail` are never shown: the latter quotes
//! the request's signature and string-to-sign.

use stowage_sdk::http::{code_like, failure_detail, status_kind};
use stowage_sdk::{Error, ErrorKind};

use crate::xml::parse_error_code;

/// Kind and documented meaning of an Azure error code; `None` for codes not listed here (the HTTP
/// status decides then, by the SDK's [`status_kind`]: proxies in front of Azure answer with HTML).
pub fn code_kind(code: &str) -> Option<(ErrorKind, &'static str)> {
    use ErrorKind::*;
    Some(match code {
        // Common codes.
        // 401: "Server failed to authenticate the request. Please refer to the information in the www-authenticate header."
        "NoAuthenticationInformation" => (Denied, "The request carries no credentials and the container is not public"),
        "InvalidAuthenticationInfo" => (Denied, "The server failed to authenticate the request"),
        // 403: "Server failed to authenticate the request. Make sure the value of the Authorization
        // header is formed correctly including the signature."
        "AuthenticationFailed" => {
            (Denied, "The server failed to authenticate the request (is the account key or SAS token right?)")
        }
        // 403: "This request isn't authorized to perform this operation."
        "AuthorizationFailure" => (Denied, "This request is not authorized to perform this operation"),
        // 403: "This request isn't authorized to perform this operation using this permission."
        "AuthorizationPermissionMismatch" => {
            (Denied, "This request is not authorized to perform this operation using this permission")
        }
        // 403: "This request isn't authorized to perform this operation using this protocol."
        "AuthorizationProtocolMismatch" => {
            (Denied, "This request is not authorized to perform this operation using this protocol")
        }
        // 403: "This request isn't authorized to perform this operation using this resource type."
        "AuthorizationResourceTypeMismatch" => {
            (Denied, "This request is not authorized to perform this operation using this resource type")
        }
        // 403: "This request isn't authorized to perform this operation using this service."
        "AuthorizationServiceMismatch" => {
            (Denied, "This request is not authorized to perform this operation using this service")
        }
        // 403: "This request isn't authorized to perform this operation using this source IP {SourceIP}."
        "AuthorizationSourceIPMismatch" => {
            (Denied, "This request is not authorized to perform this operation from this source IP")
        }
        // 403: "The account being accessed doesn't have sufficient permissions to execute this operation."
        "InsufficientAccountPermissions" => {
            (Denied, "The account being accessed does not have sufficient permissions to execute this operation")
        }
        // 403: "The specified account is disabled."
        "AccountIsDisabled" => (Denied, "The specified account is disabled"),
        // 404: "The specified resource doesn't exist."
        "ResourceNotFound" => (NotFound, "The specified resource does not exist"),
        // 400: "One of the HTTP headers specified in the request is not supported." etc.
        "InvalidHeaderValue" => (InvalidConfig, "The value of one of the HTTP headers is not in the correct format"),
        "InvalidQueryParameterValue" => (InvalidConfig, "A query parameter's value is not valid"),
        "InvalidResourceName" => (InvalidConfig, "The specified resource name contains invalid characters"),
        "InvalidUri" => (InvalidConfig, "The requested URI does not represent any resource on the server"),
        "OutOfRangeInput" => {
            (InvalidConfig, "One of the request inputs is out of range (is the container name valid?)")
        }
        "MissingRequiredHeader" => (InvalidConfig, "A required HTTP header was not specified"),
        "UnsupportedHeader" => (InvalidConfig, "One of the HTTP headers specified in the request is not supported"),
        // 413: "The size of the request body exceeds the maximum size permitted."
        "RequestBodyTooLarge" => (InvalidConfig, "The size of the request body exceeds the maximum size permitted"),
        // 416: "The range specified is invalid for the current size of the resource."
        "InvalidRange" => (InvalidConfig, "The range specified is invalid for the current size of the resource"),
        // 409: "The specified account is in the process of being created."
        "AccountBeingCreated" => (Transient, "The specified account is in the process of being created"),
        // 400: "The MD5 value specified in the request did not match the MD5 value calculated by the server."
        "Md5Mismatch" => (Transient, "The body's MD5 did not match what the server received"),
        // 500: "The server encountered an internal error. Please retry the request."
        "InternalError" => (Transient, "The server encountered an internal error"),
        // 500: "The operation could not be completed within the permitted time."
        "OperationTimedOut" => (Transient, "The operation could not be completed within the permitted time"),
        // 503: "The server is currently unable to receive requests. Please retry your request." /
        // "Ingress is over the account limit." / "Egress is over the account limit."
        "ServerBusy" => (Throttled, "The server is currently unable to receive requests"),
        // 405: "The resource doesn't support the specified HTTP verb."
        "UnsupportedHttpVerb" => (Unsupported, "The resource does not support the specified HTTP verb"),
        // Blob service codes.
        // 404: "The specified container doesn't exist."
        "ContainerNotFound" => (NotFound, "The specified container does not exist"),
        // 404: "The specified blob doesn't exist."
        "BlobNotFound" => (NotFound, "The specified blob does not exist"),
        // 409: "The specified container is being deleted."
        "ContainerBeingDeleted" => (Transient, "The specified container is being deleted"),
        // 409: "The specified container has been disabled by the administrator."
        "ContainerDisabled" => (Denied, "The specified container has been disabled by the administrator"),
        // 409: "This operation isn't permitted on an archived blob."
        "BlobArchived" => (Denied, "This operation is not permitted on an archived blob"),
        // 409: "This operation isn't permitted because the blob is being rehydrated."
        "BlobBeingRehydrated" => (Transient, "This operation is not permitted because the blob is being rehydrated"),
        // 409: "The blob type is invalid for this operation."
        "InvalidBlobType" => (InvalidConfig, "The blob type is invalid for this operation"),
        // 412: "There's currently a lease on the blob and no lease ID was specified in the request."
        "LeaseIdMissing" => (Denied, "There is a lease on the blob and no lease ID was specified"),
        // 409: "This operation isn't permitted as the blob is immutable due to a policy."
        "BlobImmutableDueToPolicy" => {
            (Denied, "This operation is not permitted as the blob is immutable due to a policy")
        }
        // 409: "The operation is not supported for this version of the service" (FeatureVersionMismatch).
        "FeatureVersionMismatch" => (Unsupported, "The operation is not supported by this service version"),
        // 400 (hierarchical namespace accounts): "This endpoint doesn't support BlobStorageEvents or SoftDelete."
        "EndpointUnsupportedAccountFeatures" => (Unsupported, "This endpoint does not support the account's features"),
        _ => return None,
    })
}

/// A failed response, parsed: status, Azure code (if any) and the kind.
#[derive(Debug, PartialEq)]
pub struct AzureFailure {
    /// The HTTP status of the answer.
    pub status: u16,
    /// The Azure error code (`x-ms-error-code`, else `<Error><Code>` of the body:
    /// `BlobNotFound`, `AuthenticationFailed`, ...), kept only if it looks like a code (never the
    /// server's message); `None` otherwise.
    pub code: Option<String>,
    /// The error kind the code (else the status) maps to.
    pub kind: ErrorKind,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<u32>,
}

impl AzureFailure {
    /// Classifies a non-2xx response. `header_code` is the `x-ms-error-code` header, if any;
    /// `retry_after` the `Retry-After` header in seconds.
    pub fn new(status: u16, header_code: Option<&str>, body: &[u8], retry_after: Option<u32>) -> AzureFailure {
        // Codes come from the server: keep them only if they look like codes.
        let code =
            header_code.map(|c| c.trim().to_string()).or_else(|| parse_error_code(body)).filter(|c| code_like(c, b""));
        let kind = code.as_deref().and_then(code_kind).map_or_else(|| status_kind(status), |(kind, _)| kind);
        AzureFailure { status, code, kind, retry_after }
    }

    /// True for a failure about the container itself (ContainerNotFound).
    pub fn is_container_not_found(&self) -> bool {
        self.code.as_deref() == Some("ContainerNotFound")
    }

    /// `{doc} ({code}, HTTP {status})`, or what is known of it.
    pub fn describe(&self) -> String {
        let doc = self.code.as_deref().and_then(code_kind).map(|(_, doc)| doc);
        failure_detail(self.status, self.code.as_deref(), doc)
    }

    /// The WIT error, with `what` (e.g. `azure-blob://container/key`) in front of the message.
    pub fn into_error(self, what: &str) -> Error {
        self.kind.error(format!("{what}: {}", self.describe()), self.retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(code: &str, message: &str) -> Vec<u8> {
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}
RequestId:bd9b7b5f-7d1e-0041-3a2f-1a5b8c000000
Time:2021-08-06T10:00:00.0000000Z</Message></Error>"#
        )
        .into_bytes()
    }

    /// The documented codes map to the expected kinds, from the body or the header.
    #[test]
    fn documented_codes() {
        let cases = [
            (404, "ContainerNotFound", "The specified container does not exist.", ErrorKind::NotFound),
            (404, "BlobNotFound", "The specified blob does not exist.", ErrorKind::NotFound),
            (
                403,
                "AuthenticationFailed",
                "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
                ErrorKind::Denied,
            ),
            (
                403,
                "AuthorizationFailure",
                "This request is not authorized to perform this operation.",
                ErrorKind::Denied,
            ),
            (
                403,
                "AuthorizationPermissionMismatch",
                "This request is not authorized to perform this operation using this permission.",
                ErrorKind::Denied,
            ),
            (
                401,
                "NoAuthenticationInformation",
                "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
                ErrorKind::Denied,
            ),
            (
                503,
                "ServerBusy",
                "The server is currently unable to receive requests. Please retry your request.",
                ErrorKind::Throttled,
            ),
            (
                500,
                "OperationTimedOut",
                "The operation could not be completed within the permitted time.",
                ErrorKind::Transient,
            ),
            (
                500,
                "InternalError",
                "The server encountered an internal error. Please retry the request.",
                ErrorKind::Transient,
            ),
            (
                416,
                "InvalidRange",
                "The range specified is invalid for the current size of the resource.",
                ErrorKind::InvalidConfig,
            ),
            (400, "OutOfRangeInput", "One of the request inputs is out of range.", ErrorKind::InvalidConfig),
            (418, "SomethingNew", "?", ErrorKind::InvalidConfig),
            (502, "SomethingNew", "?", ErrorKind::Transient),
        ];
        for (status, code, message, kind) in cases {
            let f = AzureFailure::new(status, None, &body(code, message), None);
            assert_eq!((f.code.as_deref(), f.kind), (Some(code), kind), "{code}");
            let f = AzureFailure::new(status, Some(code), b"", None);
            assert_eq!((f.code.as_deref(), f.kind), (Some(code), kind), "{code} (header)");
        }
    }

    /// HEAD answers without `x-ms-error-code`: the status decides.
    #[test]
    fn bodiless_statuses() {
        for (status, kind) in [
            (404, ErrorKind::NotFound),
            (403, ErrorKind::Denied),
            (400, ErrorKind::InvalidConfig),
            (500, ErrorKind::Transient),
            (503, ErrorKind::Throttled),
            (429, ErrorKind::Throttled),
            (405, ErrorKind::Unsupported),
            (409, ErrorKind::InvalidConfig),
        ] {
            assert_eq!(AzureFailure::new(status, None, b"", None).kind, kind, "{status}");
        }
    }

    /// The message quotes the documented meaning, never the server's message or auth detail.
    #[test]
    fn messages() {
        let leaky = br#"<Error><Code>AuthenticationFailed</Code><Message>x</Message><AuthenticationErrorDetail>The MAC signature found in the HTTP request 'c2lnbmF0dXJl' is not the same as any computed signature. Server used following string to sign: 'GET...'.</AuthenticationErrorDetail></Error>"#;
        let Error::Denied(m) = AzureFailure::new(403, None, leaky, None).into_error("azure-blob://c/k") else {
            panic!()
        };
        assert_eq!(
            m,
            "azure-blob://c/k: The server failed to authenticate the request (is the account key or SAS token right?) (AuthenticationFailed, HTTP 403)"
        );
        assert!(!m.contains("c2lnbmF0dXJl"));
        let e = AzureFailure::new(503, Some("ServerBusy"), b"", Some(3)).into_error("c");
        assert!(matches!(e, Error::Throttled(Some(3))));
        let Error::Transient(m) =
            AzureFailure::new(502, None, b"<html>internal proxy page</html>", None).into_error("c")
        else {
            panic!()
        };
        assert_eq!(m, "c: HTTP 502");
        assert!(AzureFailure::new(404, Some("ContainerNotFound"), b"", None).is_container_not_found());
    }

    /// A code that does not look like a code is dropped, so a hostile server cannot inject text.
    #[test]
    fn odd_codes_are_dropped() {
        let f = AzureFailure::new(403, Some("Look at http://evil"), b"", None);
        assert_eq!((f.code, f.kind), (None, ErrorKind::Denied));
    }
}
