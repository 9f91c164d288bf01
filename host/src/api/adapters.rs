//! `GET /api/adapters`: the loaded storage adapters, each with its manifest (storage type,
//! settings, capabilities, the grants it asks for), file, content hash and WIT version; and
//! `POST /api/adapters` to add or replace one at runtime. Not part of Label Studio's API.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::openapi::{Routes, get, post};
use super::{AppState, Caller};
use crate::plugin::Adapter;

/// The adapters routes.
pub fn routes() -> Routes {
    Routes::new("Adapters").route(
        "/api/adapters",
        [
            get("List the loaded storage adapters", list),
            post("Add or replace an adapter (a .wasm component; administrators)", upload)
                .body(Some("application/wasm"))
                .map(|r| r.layer(DefaultBodyLimit::max(MAX_ADAPTER_BYTES))),
        ],
    )
}

/// Largest accepted `.wasm` upload (today's adapters are 0.1–0.7 MB).
pub const MAX_ADAPTER_BYTES: usize = 64 << 20;

/// `status` is `quarantined` while at least one storage configuration of the adapter is held
/// (`quarantined_storages` of them), else `active`: quarantine holds storages, not the adapter.
pub(crate) fn describe(a: &Adapter, quarantine_after: u32) -> Value {
    let (failures_recent, failures_total, held) = a.health.failures(quarantine_after);
    json!({
        "type": a.info.type_name,
        "file": a.file,
        "sha256": a.hash,
        "wit_version": a.version.as_str(),
        "manifest": a.info,
        "status": if held > 0 { "quarantined" } else { "active" },
        "quarantined_storages": held,
        // Within the quarantine window (5 minutes).
        "failures_recent": failures_recent,
        "failures_total": failures_total,
    })
}

/// `POST /api/adapters` (administrators; others get 403) with a `.wasm` component as the body:
/// validates, compiles, caches and registers it without a restart (replacing the adapter of the
/// same storage type); 201 with its description, or 400 naming the problem while the loaded
/// adapters stay as they were.
async fn upload(State(app): AppState, Caller(user): Caller, body: Bytes) -> ApiResult<(StatusCode, Json<Value>)> {
    // Code that runs for every storage of its type: administrators only.
    if !user.is_superuser {
        return Err(ApiError::Forbidden("You do not have permission to perform this action.".into()));
    }
    let adapter =
        app.registry.install(&body).await.map_err(|e| ApiError::BadRequest(format!("Adapter refused: {e:#}")))?;
    Ok((StatusCode::CREATED, Json(describe(&adapter, app.settings.quarantine_after))))
}

async fn list(State(app): AppState, _: Caller) -> Json<Value> {
    let adapters: Vec<Value> =
        app.registry.all().into_iter().map(|a| describe(&a, app.settings.quarantine_after)).collect();
    Json(Value::Array(adapters))
}
