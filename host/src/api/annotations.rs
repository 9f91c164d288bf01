//! Annotations: `POST`/`GET /api/tasks/{id}/annotations`, `GET`/`PATCH`/`DELETE /api/annotations/{id}`.
//! Every save is written to the project's export storages; a delete removes the exported object
//! where the storage allows it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, ApiResult, Body, Path};
use super::openapi::{self, Routes, get, patch, post};
use super::tasks::task_or_404;
use super::{AppState, Caller};
use crate::App;
use crate::domain::NewAnnotation;
use crate::sync::export;
use crate::tasks::document;

/// The annotations routes.
pub fn routes() -> Routes {
    Routes::new("Annotations")
        .route("/api/tasks/{id}/annotations", [get("List a task's annotations", list), post("Annotate a task", create)])
        .route(
            "/api/annotations/{id}",
            [
                get("Read an annotation", read),
                patch("Change an annotation", update),
                openapi::delete("Delete an annotation", delete),
            ],
        )
}

#[derive(Deserialize)]
struct AnnotationBody {
    result: Option<Value>,
    was_cancelled: Option<bool>,
    ground_truth: Option<bool>,
    lead_time: Option<f64>,
    completed_by: Option<i64>,
}

fn check_result(result: &Option<Value>) -> ApiResult<()> {
    match result {
        None | Some(Value::Array(_)) => Ok(()),
        Some(_) => Err(ApiError::field("result", "Expected a list of items.")),
    }
}

/// A task's annotations, without the cancelled (skipped) ones, as Label Studio lists them
/// (`tasks/api.py::AnnotationsListAPI.get_queryset`); `GET /api/tasks/{id}` shows them all.
async fn list(State(app): AppState, _: Caller, Path(task_id): Path<i64>) -> ApiResult<Json<Value>> {
    task_or_404(&app, task_id)?;
    let annotations = app.store.annotations(task_id)?;
    Ok(Json(annotations.iter().filter(|a| !a.was_cancelled).map(document::annotation).collect()))
}

async fn create(
    State(app): AppState,
    Caller(user): Caller,
    Path(task_id): Path<i64>,
    Body(b): Body<AnnotationBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let task = task_or_404(&app, task_id)?;
    check_result(&b.result)?;
    if let Some(id) = b.completed_by.filter(|id| app.store.user(*id).ok().flatten().is_none()) {
        return Err(ApiError::field("completed_by", format!("Invalid pk \"{id}\" - object does not exist.")));
    }
    let new = NewAnnotation {
        result: b.result.unwrap_or(Value::Array(vec![])),
        // Label Studio defaults `completed_by` to the caller (`tasks/api.py::AnnotationsListAPI.perform_create`).
        completed_by: Some(b.completed_by.unwrap_or(user.id)),
        was_cancelled: b.was_cancelled.unwrap_or(false),
        ground_truth: b.ground_truth.unwrap_or(false),
        lead_time: b.lead_time,
        created_at: None,
        updated_at: None,
    };
    let a = app.store.create_annotation(task_id, task.project_id, &new)?;
    export::annotation_saved(&app, a.project_id, a.id).await;
    Ok((StatusCode::CREATED, Json(document::annotation(&a))))
}

fn annotation_or_404(app: &App, id: i64) -> ApiResult<crate::domain::Annotation> {
    app.store.annotation(id)?.ok_or_else(ApiError::not_found)
}

async fn read(State(app): AppState, _: Caller, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    Ok(Json(document::annotation(&annotation_or_404(&app, id)?)))
}

async fn update(
    State(app): AppState,
    _: Caller,
    Path(id): Path<i64>,
    Body(b): Body<AnnotationBody>,
) -> ApiResult<Json<Value>> {
    annotation_or_404(&app, id)?;
    check_result(&b.result)?;
    app.store.update_annotation(id, b.result.as_ref(), b.was_cancelled, b.ground_truth, b.lead_time)?;
    let a = annotation_or_404(&app, id)?;
    export::annotation_saved(&app, a.project_id, a.id).await;
    Ok(Json(document::annotation(&a)))
}

async fn delete(State(app): AppState, _: Caller, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    annotation_or_404(&app, id)?;
    let links = app.store.export_links(id)?;
    app.store.delete_annotation(id)?;
    export::annotation_deleted(&app, links).await;
    Ok(StatusCode::NO_CONTENT)
}
