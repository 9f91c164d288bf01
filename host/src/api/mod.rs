//! The REST API, compatible with Label Studio's (see `shared/reference/ls-storage-api.md`).
//! One file per resource; [`router`] is shared by `main` and the tests.

mod adapters;
mod annotations;
pub mod error;
mod local_files;
mod projects;
mod resolve;
pub mod server;
mod storages;
mod tasks;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::trace::TraceLayer;

use crate::App;
use crate::domain::User;
use error::{ApiError, LS_VERSION};

/// Shared state of every handler.
pub type AppState = State<Arc<App>>;

/// The authenticated caller: `Authorization: Token <key>` (Label Studio's DRF token auth).
pub struct Caller(pub User);

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let token = token_of(parts.headers.get(axum::http::header::AUTHORIZATION).map(|v| v.as_bytes()))
            .map_err(|m| ApiError::Unauthorized(m.into()))?;
        app.store.user_by_token(token)?.map(Caller).ok_or_else(|| ApiError::Unauthorized("Invalid token.".into()))
    }
}

/// The key of an `Authorization` header, read as Django REST framework's `TokenAuthentication`
/// reads it (`rest_framework/authentication.py`): the header split at whitespace, the keyword
/// `Token` in any case, then exactly one credential.
///
/// # Errors
/// DRF's 401 wording for each way the header can be wrong.
fn token_of(header: Option<&[u8]>) -> Result<&str, &'static str> {
    const MISSING: &str = "Authentication credentials were not provided.";
    let mut words = header.unwrap_or_default().split(u8::is_ascii_whitespace).filter(|w| !w.is_empty());
    match words.next() {
        Some(keyword) if keyword.eq_ignore_ascii_case(b"token") => {}
        _ => return Err(MISSING),
    }
    let token = words.next().ok_or("Invalid token header. No credentials provided.")?;
    if words.next().is_some() {
        return Err("Invalid token header. Token string should not contain spaces.");
    }
    std::str::from_utf8(token).map_err(|_| "Invalid token header. Token string should not contain invalid characters.")
}

/// The HTTP service: [`router`] behind request tracing, matching paths without their trailing
/// slash, so `/api/storages/s3` and `/api/storages/s3/` are the same, as in Label Studio.
pub fn service(app: Arc<App>) -> NormalizePath<Router> {
    NormalizePathLayer::trim_trailing_slash().layer(router(app).layer(TraceLayer::new_for_http()))
}

/// Serves [`service`] on `listener` under the limits of the app's settings until `shutdown`
/// completes ([`server::serve`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = app.settings.http_limits();
    server::serve(listener, app, limits, shutdown).await
}

/// All routes, matched without trailing slash (see [`service`]).
pub fn router(app: Arc<App>) -> Router {
    let max_body = usize::try_from(app.settings.max_body_mib).unwrap_or(usize::MAX).saturating_mul(1 << 20);
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "UP"})) }))
        .route(
            "/api/version",
            get(|| async { Json(json!({"release": LS_VERSION, "stowage": env!("CARGO_PKG_VERSION")})) }),
        )
        .route("/api/current-user/whoami", get(|Caller(u): Caller| async move { Json(json!(u)) }))
        .merge(adapters::routes())
        .merge(projects::routes())
        .merge(tasks::routes())
        .merge(annotations::routes())
        .merge(storages::routes())
        .merge(local_files::routes())
        .merge(resolve::routes())
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

#[cfg(test)]
mod tests {
    use super::token_of;

    #[test]
    fn the_token_keyword_is_read_in_any_case_as_drf_reads_it() {
        for header in ["Token abc", "token abc", "TOKEN abc", "tOkEn \t abc  "] {
            assert_eq!(token_of(Some(header.as_bytes())), Ok("abc"), "{header:?}");
        }
        for (header, detail) in [
            (None, "Authentication credentials were not provided."),
            (Some(""), "Authentication credentials were not provided."),
            (Some("Bearer abc"), "Authentication credentials were not provided."),
            (Some("Tokenabc"), "Authentication credentials were not provided."),
            (Some("Token"), "Invalid token header. No credentials provided."),
            (Some("Token  "), "Invalid token header. No credentials provided."),
            (Some("Token a b"), "Invalid token header. Token string should not contain spaces."),
        ] {
            assert_eq!(token_of(header.map(str::as_bytes)), Err(detail), "{header:?}");
        }
        assert_eq!(
            token_of(Some(b"Token \xff")),
            Err("Invalid token header. Token string should not contain invalid characters.")
        );
    }
}
