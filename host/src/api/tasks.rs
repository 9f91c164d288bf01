//! Tasks: `GET /api/tasks/?project=ID` (Label Studio's paginated shape), `POST /api/tasks`,
//! `GET`/`DELETE /api/tasks/{id}`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult, Body, Path, Query};
use super::openapi::{self, Routes, get, post};
use super::projects::project_or_404;
use super::{AppState, Caller};
use crate::App;
use crate::domain::{GrantRequest, Project, Task};
use crate::tasks::resolver::Resolver;
use crate::tasks::{Authors, document, task_from_value, uri};

/// The tasks routes.
pub fn routes() -> Routes {
    Routes::new("Tasks")
        .route("/api/tasks", [get("A project's tasks, paged (`?project=`)", list), post("Create a task", create)])
        .route("/api/tasks/{id}", [get("Read a task", read), openapi::delete("Delete a task", delete)])
}

/// Default and largest `page_size`.
const DEFAULT_PAGE_SIZE: i64 = 100;
const MAX_PAGE_SIZE: i64 = 10_000;

#[derive(Deserialize)]
struct ListQuery {
    project: Option<i64>,
    /// Text, so that a page that is not a number is Label Studio's 404 `Invalid page.`.
    page: Option<String>,
    page_size: Option<i64>,
    /// `all` adds annotations and predictions to each task.
    fields: Option<String>,
    /// `false` leaves storage URIs in task data as stored (Label Studio's `resolve_uri`).
    resolve_uri: Option<bool>,
}

#[derive(Deserialize)]
struct TaskQuery {
    resolve_uri: Option<bool>,
}

/// Rewrites the storage URIs a storage of the project serves to resolver links, in the `data` of
/// each task JSON (`tasks/models.py::Task.resolve_uri`).
pub(crate) async fn resolve_uris(app: &App, project_id: i64, tasks: &mut [Value]) -> ApiResult<()> {
    let mut resolver = Resolver::for_project(app, project_id)?;
    let Some(matcher) = resolver.matcher() else { return Ok(()) };
    let mut served = std::collections::HashSet::new();
    let found: std::collections::BTreeSet<String> =
        tasks.iter().flat_map(|t| uri::find(&t["data"], &matcher)).collect();
    for u in found {
        if resolver.locate(&u).await.is_some() {
            served.insert(u);
        }
    }
    for t in tasks {
        let id = t["id"].as_i64().unwrap_or_default();
        uri::rewrite(&mut t["data"], &matcher, &|u: &str| served.contains(u).then(|| uri::resolver_url(id, u)));
    }
    Ok(())
}

/// Shows `storage_filename` as Label Studio does: it keys local files by their absolute path, so
/// for a storage whose adapter is granted a directory setting (local files' `path`) the key is
/// shown under that directory; other storages show the object key itself.
fn absolute_filenames(app: &App, rows: &[Task], docs: &mut [Value]) -> ApiResult<()> {
    let mut directories: HashMap<i64, Option<String>> = HashMap::new();
    for (t, doc) in rows.iter().zip(docs) {
        let (Some(storage), Some(key)) = (t.storage_id, &t.storage_filename) else { continue };
        let directory = match directories.get(&storage) {
            Some(d) => d.clone(),
            None => {
                let d = directory_of(app, storage)?;
                directories.insert(storage, d.clone());
                d
            }
        };
        if let Some(d) = directory {
            doc["storage_filename"] = json!(format!("{}/{key}", d.trim_end_matches('/')));
        }
    }
    Ok(())
}

/// The directory a storage's adapter is granted (the value of its directory setting), if any.
fn directory_of(app: &App, storage_id: i64) -> ApiResult<Option<String>> {
    let Some(s) = app.store.storage(storage_id)? else { return Ok(None) };
    let Some(adapter) = app.registry.get(&s.type_name) else { return Ok(None) };
    Ok(adapter.info.grants.iter().find_map(|g| match g {
        GrantRequest::Directory(setting) => s.fields.get(setting)?.as_str().map(str::to_string),
        _ => None,
    }))
}

/// A task with its annotations and predictions.
fn full_task(app: &App, t: &Task, project: Option<&Project>) -> ApiResult<Value> {
    let mut v = document::task(t, project);
    let annotations: Vec<Value> = app.store.annotations(t.id)?.iter().map(document::annotation).collect();
    let predictions: Vec<Value> = app
        .store
        .predictions(t.id)?
        .into_iter()
        .map(|p| {
            json!({"id": p.id, "result": p.result, "score": p.score, "model_version": p.model_version,
                   "task": p.task_id, "project": p.project_id, "created_at": p.created_at})
        })
        .collect();
    v["annotations"] = Value::Array(annotations);
    v["predictions"] = Value::Array(predictions);
    Ok(v)
}

async fn list(State(app): AppState, _: Caller, Query(q): Query<ListQuery>) -> ApiResult<Json<Value>> {
    let project_id = q.project.ok_or_else(|| ApiError::missing_query("project"))?;
    let project = project_or_404(&app, project_id)?;
    let page = match q.page.as_deref() {
        None => 1,
        Some(p) => p.parse::<i64>().map_err(|_| ApiError::NotFound("Invalid page.".into()))?,
    };
    let page_size = q.page_size.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE);
    let (total, total_annotations, total_predictions) = app.store.project_counts(project_id)?;
    // Label Studio answers a page past the end with 404 "Invalid page."; the SDK pager stops there.
    let offset = (page - 1).checked_mul(page_size).filter(|o| page >= 1 && (page == 1 || *o < total));
    let Some(offset) = offset else {
        return Err(ApiError::NotFound("Invalid page.".into()));
    };
    let rows = app.store.tasks_page(project_id, offset, page_size)?;
    let all = q.fields.as_deref() == Some("all");
    let mut tasks = rows
        .iter()
        .map(|t| if all { full_task(&app, t, Some(&project)) } else { Ok(document::task(t, Some(&project))) })
        .collect::<ApiResult<Vec<_>>>()?;
    absolute_filenames(&app, &rows, &mut tasks)?;
    if q.resolve_uri != Some(false) {
        resolve_uris(&app, project_id, &mut tasks).await?;
    }
    Ok(Json(json!({
        "total_annotations": total_annotations,
        "total_predictions": total_predictions,
        "total": total,
        "tasks": tasks,
    })))
}

pub(super) fn task_or_404(app: &App, id: i64) -> ApiResult<Task> {
    app.store.task(id)?.ok_or_else(ApiError::not_found)
}

async fn read(
    State(app): AppState,
    _: Caller,
    Path(id): Path<i64>,
    Query(q): Query<TaskQuery>,
) -> ApiResult<Json<Value>> {
    let t = task_or_404(&app, id)?;
    let project = app.store.project(t.project_id)?;
    let mut task = [full_task(&app, &t, project.as_ref())?];
    absolute_filenames(&app, std::slice::from_ref(&t), &mut task)?;
    if q.resolve_uri != Some(false) {
        resolve_uris(&app, t.project_id, &mut task).await?;
    }
    let [task] = task;
    Ok(Json(task))
}

/// `POST /api/tasks` (the SDK's `tasks.create(project=, data=)`): one task, `{"project": ID,
/// "data": {...}}` plus optional `meta`, `annotations`, `predictions`; 201 with the task as
/// Label Studio's `TaskSerializer` shows it (no annotations, predictions or `storage_filename`).
/// Its storage URIs resolve through the project's storages like those of imported tasks.
///
/// # Errors
/// As Label Studio answers: 400 `project` or `data` "This field is required.", 400
/// `Task[data] must be dict or list`, 404 for a project that does not exist (`No Project
/// matches the given query.`) or an id that is not a number (`Not found.`).
async fn create(
    State(app): AppState,
    Caller(user): Caller,
    Body(mut body): Body<serde_json::Map<String, Value>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut errors = std::collections::BTreeMap::<String, Vec<String>>::new();
    for field in ["project", "data"] {
        if body.get(field).is_none_or(Value::is_null) {
            errors.insert(field.into(), vec!["This field is required.".into()]);
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let project = match body.remove("project").and_then(|p| p.as_i64()) {
        Some(p) => {
            app.store.project(p)?.ok_or_else(|| ApiError::NotFound("No Project matches the given query.".into()))?
        }
        None => return Err(ApiError::not_found()),
    };
    if !matches!(body.get("data"), Some(Value::Object(_) | Value::Array(_))) {
        return Err(ApiError::field("non_field_errors", "Task[data] must be dict or list"));
    }
    let data = body.remove("data").unwrap_or_default();
    // `data` is kept whatever it holds (a list too), as Label Studio keeps it.
    let mut envelope = body;
    envelope.insert("data".into(), json!({}));
    let mut task = task_from_value(Value::Object(envelope), &Authors::new(app.store.user_emails()?))
        .map_err(|m| ApiError::field("non_field_errors", m))?;
    task.data = data;
    let [id] = app.store.create_tasks(project.id, &[task], user.id)?[..] else {
        return Err(ApiError::Internal("one task inserted, not one id back".into()));
    };
    let mut task = [document::task(&task_or_404(&app, id)?, Some(&project))];
    resolve_uris(&app, project.id, &mut task).await?;
    let [mut task] = task;
    task.as_object_mut().map(|t| t.remove("storage_filename"));
    Ok((StatusCode::CREATED, Json(task)))
}

async fn delete(State(app): AppState, _: Caller, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    if app.store.delete_task(id)? { Ok(StatusCode::NO_CONTENT) } else { Err(ApiError::not_found()) }
}
