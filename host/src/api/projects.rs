//! Projects: `/api/projects`, and task import `POST /api/projects/{id}/import`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult, Body, Path};
use super::openapi::{self, Routes, get, patch, post};
use super::{AppState, Caller};
use crate::App;
use crate::domain::Project;
use crate::tasks::{Authors, ground_truth_by_default, label_config, task_from_value};

/// The projects routes.
pub fn routes() -> Routes {
    Routes::new("Projects")
        .route("/api/projects", [get("List projects", list), post("Create a project", create)])
        .route(
            "/api/projects/{id}",
            [
                get("Read a project", read),
                patch("Change a project", update),
                openapi::delete("Delete a project with its tasks and storages", delete),
            ],
        )
        .route("/api/projects/{id}/import", [post("Import tasks (a JSON list or one task)", import)])
}

/// The label config of a project created without one (Label Studio's default is empty `<View></View>`).
const DEFAULT_LABEL_CONFIG: &str = "<View></View>";

fn project_json(app: &App, p: &Project) -> ApiResult<Value> {
    let (tasks, annotations, predictions) = app.store.project_counts(p.id)?;
    let created_by = match p.created_by {
        Some(id) => app.store.user(id)?.map(|u| crate::tasks::document::user_brief(&u)),
        None => None,
    };
    Ok(json!({
        "id": p.id,
        "title": p.title,
        "description": p.description,
        "label_config": p.label_config,
        "parsed_label_config": {},
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "created_by": created_by,
        "task_number": tasks,
        "total_annotations_number": annotations,
        "total_predictions_number": predictions,
        "num_tasks_with_annotations": null,
        "is_published": false,
        "is_draft": false,
        "maximum_annotations": 1,
        "show_instruction": false,
        "show_skip_button": true,
        "enable_empty_annotation": true,
        "expert_instruction": "",
        "color": "#FFFFFF",
        "sampling": "Sequential sampling",
    }))
}

pub(super) fn project_or_404(app: &App, id: i64) -> ApiResult<Project> {
    app.store.project(id)?.ok_or_else(ApiError::not_found)
}

#[derive(Deserialize)]
struct ProjectBody {
    title: Option<String>,
    description: Option<String>,
    label_config: Option<String>,
}

/// A labeling config must be well-formed XML: 400 under `label_config` with the parser's message.
fn check_label_config(config: &str) -> ApiResult<()> {
    label_config::check(config)
        .map_err(|m| ApiError::field("label_config", format!("The labeling config is not valid XML: {m}")))
}

async fn create(
    State(app): AppState,
    Caller(user): Caller,
    Body(b): Body<ProjectBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let p = new_project(&app, user.id, b.title.unwrap_or_default(), b.description.as_deref(), b.label_config)?;
    Ok((StatusCode::CREATED, Json(project_json(&app, &p)?)))
}

/// Creates a project as Label Studio's serializer does (the API and the web page's form): a
/// title is empty or at least 3 characters, an empty label config is `<View></View>`, and a
/// config that is not well-formed XML is refused.
///
/// # Errors
/// 400 under `title` or `label_config`; the database failed.
pub(crate) fn new_project(
    app: &App,
    created_by: i64,
    title: String,
    description: Option<&str>,
    label_config: Option<String>,
) -> ApiResult<Project> {
    if !title.is_empty() && title.chars().count() < 3 {
        return Err(ApiError::field("title", "Ensure this field has at least 3 characters."));
    }
    let label_config = label_config.filter(|c| !c.trim().is_empty()).unwrap_or_else(|| DEFAULT_LABEL_CONFIG.into());
    check_label_config(&label_config)?;
    Ok(app.store.create_project(&title, description.unwrap_or(""), &label_config, created_by)?)
}

async fn list(State(app): AppState, _: Caller) -> ApiResult<Json<Value>> {
    let projects = app.store.projects()?;
    let results = projects.iter().map(|p| project_json(&app, p)).collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(json!({"count": results.len(), "next": null, "previous": null, "results": results})))
}

async fn read(State(app): AppState, _: Caller, Path(id): Path<i64>) -> ApiResult<Json<Value>> {
    Ok(Json(project_json(&app, &project_or_404(&app, id)?)?))
}

async fn update(
    State(app): AppState,
    _: Caller,
    Path(id): Path<i64>,
    Body(b): Body<ProjectBody>,
) -> ApiResult<Json<Value>> {
    project_or_404(&app, id)?;
    if let Some(config) = &b.label_config {
        check_label_config(config)?;
    }
    app.store.update_project(id, b.title.as_deref(), b.description.as_deref(), b.label_config.as_deref())?;
    Ok(Json(project_json(&app, &project_or_404(&app, id)?)?))
}

async fn delete(State(app): AppState, _: Caller, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    if app.store.delete_project(id)? { Ok(StatusCode::NO_CONTENT) } else { Err(ApiError::not_found()) }
}

/// `POST /api/projects/{id}/import` with a JSON list of tasks (or one task object). Each item is
/// a task in Label Studio's import format; the whole request is one transaction.
async fn import(
    State(app): AppState,
    Caller(user): Caller,
    Path(id): Path<i64>,
    Body(body): Body<Value>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    project_or_404(&app, id)?;
    let items = match body {
        Value::Array(items) => items,
        obj @ Value::Object(_) => vec![obj],
        _ => return Err(ApiError::BadRequest("Expected a list of tasks or a task object".into())),
    };
    let started = std::time::Instant::now();
    let mut tasks = Vec::with_capacity(items.len());
    let authors = Authors::new(app.store.user_emails()?);
    for (i, mut item) in items.into_iter().enumerate() {
        ground_truth_by_default(&mut item);
        tasks.push(task_from_value(item, &authors).map_err(|e| ApiError::BadRequest(format!("Task {i}: {e}")))?);
    }
    let annotations: usize = tasks.iter().map(|t| t.annotations.len()).sum();
    let predictions: usize = tasks.iter().map(|t| t.predictions.len()).sum();
    let ids = app.store.create_tasks(id, &tasks, user.id)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "task_count": ids.len(),
            "annotation_count": annotations,
            "prediction_count": predictions,
            "duration": started.elapsed().as_secs_f64(),
            "file_upload_ids": [],
            "could_be_tasks_list": false,
            "found_formats": [],
            "data_columns": [],
            "task_ids": ids,
        })),
    ))
}
