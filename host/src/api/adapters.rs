//! `GET /api/adapters`: the loaded storage adapters, each with its manifest (storage type,
//! settings, capabilities, the grants it asks for), file, content hash and WIT version. Not part
//! of Label Studio's API; the start of issue 7's adapter management.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{AppState, Caller};
use crate::App;
use crate::plugin::bindings::since_v0_1_0;

/// The adapters routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/api/adapters", get(list))
}

async fn list(State(app): AppState, _: Caller) -> Json<Value> {
    let adapters: Vec<Value> = app
        .registry
        .all()
        .map(|a| {
            json!({
                "type": a.info.type_name,
                "file": a.file,
                "sha256": a.hash,
                // Every adapter loads through the one bindings module today.
                "wit_version": since_v0_1_0::MAX_VERSION,
                "manifest": a.info,
            })
        })
        .collect();
    Json(Value::Array(adapters))
}
