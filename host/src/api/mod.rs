//! The REST API, compatible with Label Studio's (see `shared/reference/ls-storage-api.md`).
//! One file per resource; [`router`] is shared by `main` and the tests.

pub(crate) mod adapters;
mod annotations;
pub mod auth;
pub mod error;
mod local_files;
pub mod openapi;
pub(crate) mod projects;
mod resolve;
pub mod server;
pub(crate) mod storages;
pub(crate) mod tasks;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::{Json, Router};
use serde_json::json;
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::trace::TraceLayer;

use crate::App;
pub use auth::Caller;
use error::LS_VERSION;
use openapi::{Routes, get};

/// Shared state of every handler.
pub type AppState = State<Arc<App>>;

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
    let (api, doc) = documented_routes().finish("/api/schema");
    api.merge(crate::web::routes(doc)).layer(DefaultBodyLimit::max(max_body)).with_state(app)
}

/// The REST API's routes, each documented in `GET /api/schema` ([`openapi`]).
pub fn documented_routes() -> Routes {
    Routes::new("Service")
        .route("/health", [get("Whether the service is up", || async { Json(json!({"status": "UP"})) }).open()])
        .route(
            "/api/version",
            [get("Label Studio release it answers as, and stowage's version", || async {
                Json(json!({"release": LS_VERSION, "stowage": env!("CARGO_PKG_VERSION")}))
            })
            .open()],
        )
        .route(
            "/api/current-user/whoami",
            [get("The authenticated user", |Caller(u): Caller| async move { Json(json!(u)) })],
        )
        .merge(adapters::routes())
        .merge(projects::routes())
        .merge(tasks::routes())
        .merge(annotations::routes())
        .merge(storages::routes())
        .merge(local_files::routes())
        .merge(resolve::routes())
}
