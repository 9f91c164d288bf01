//! API errors in Label Studio's body shape (`core/utils/common.py::custom_exception_handler`):
//! `{"id": uuid, "status_code": N, "version": "...", "detail": "...", "exc_info": null}`, plus
//! `validation_errors: {field: [message]}` for validation failures. Internal errors are logged
//! with their id and shown only as "Internal server error".

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Label Studio version whose API stowage follows.
pub const LS_VERSION: &str = "1.23.2";

/// Every error an API handler returns; rendered in Label Studio's body shape.
#[derive(Debug)]
pub enum ApiError {
    /// 400 with a message.
    BadRequest(String),
    /// 400 `Validation error` with messages per field (`non_field_errors` for the whole object).
    Validation(BTreeMap<String, Vec<String>>),
    /// 401 with Django REST framework's reason (`Invalid token.` and the like).
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    /// 413: a request body over the server's limit (`stowage serve --max-body-mib`).
    TooLarge,
    /// A status and body of the caller's choice (Label Studio's few bespoke shapes).
    Raw(StatusCode, Value),
    /// 500; the cause is logged, never shown.
    Internal(String),
}

impl ApiError {
    /// A validation error on one field.
    pub fn field(name: &str, message: impl Into<String>) -> ApiError {
        ApiError::Validation(BTreeMap::from([(name.to_string(), vec![message.into()])]))
    }

    /// 400 for a missing or malformed query parameter: Label Studio reports it as a validation
    /// error of the whole request (`validation_errors.non_field_errors`).
    pub fn query(message: impl Into<String>) -> ApiError {
        ApiError::field("non_field_errors", message)
    }

    /// 400 `query parameter "{name}" is required` (Label Studio's wording).
    pub fn missing_query(name: &str) -> ApiError {
        ApiError::query(format!("query parameter \"{name}\" is required"))
    }

    /// 404 `Not found.`, Django REST framework's wording.
    pub fn not_found() -> ApiError {
        ApiError::NotFound("Not found.".into())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

fn body(status: StatusCode, detail: &str) -> serde_json::Map<String, Value> {
    let Value::Object(m) = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "status_code": status.as_u16(),
        "version": LS_VERSION,
        "detail": detail,
        "exc_info": null,
    }) else {
        unreachable!()
    };
    m
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, b) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, body(StatusCode::BAD_REQUEST, &m)),
            ApiError::Validation(errors) => {
                let mut b = body(StatusCode::BAD_REQUEST, "Validation error");
                b.insert("validation_errors".into(), json!(errors));
                (StatusCode::BAD_REQUEST, b)
            }
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, body(StatusCode::UNAUTHORIZED, &m)),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, body(StatusCode::FORBIDDEN, &m)),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, body(StatusCode::NOT_FOUND, &m)),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                body(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large (limit: stowage serve --max-body-mib)"),
            ),
            ApiError::Raw(status, v) => return (status, Json(v)).into_response(),
            ApiError::Internal(cause) => {
                let b = body(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
                tracing::error!(id = %b["id"], "internal error: {cause}");
                (StatusCode::INTERNAL_SERVER_ERROR, b)
            }
        };
        (status, Json(Value::Object(b))).into_response()
    }
}

/// The result of an API handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// JSON body extractor whose rejections use the Label Studio error shape.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
            _ => ApiError::BadRequest(e.body_text()),
        })?;
        let bytes = if bytes.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { &bytes[..] };
        serde_json::from_slice(bytes).map(Body).map_err(|e| ApiError::BadRequest(format!("JSON parse error - {e}")))
    }
}

/// `Path` whose rejections (`/api/tasks/abc`) use the Label Studio error shape.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// `Query` whose rejections (`?page=x`) use the Label Studio error shape.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        ApiError::NotFound(format!("Not found: {}", e.body_text()))
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    /// `?project=abc`: serde_urlencoded's "project: invalid digit found in string" becomes
    /// `query parameter "project": invalid digit found in string`.
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        let text = e.body_text();
        let text = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text);
        match text.split_once(": ") {
            Some((name, why)) if !name.contains(' ') => ApiError::query(format!("query parameter \"{name}\": {why}")),
            _ => ApiError::query(format!("invalid query string: {text}")),
        }
    }
}
