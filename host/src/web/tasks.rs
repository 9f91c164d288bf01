//! A project's tasks: `GET /projects/{id}/data?page=N`, a table of id, source storage and a
//! preview of the data. Storage URIs are rewritten to resolver links as the API's task list
//! rewrites them, so images, audio and video stored in a bucket or folder show inline.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;

use super::projects::title_of;
use super::{Nav, PageError, PageResult, Viewer, html};
use crate::App;
use crate::tasks::document;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/projects/{id}/data", get(list))
}

/// Tasks per page.
const PAGE_SIZE: i64 = 50;
/// Characters of a value shown in a text preview.
const PREVIEW_CHARS: usize = 160;

/// How one value of a task's data is shown.
enum Preview {
    Image(String),
    Audio(String),
    Video(String),
    Text(String),
}

struct Field {
    key: String,
    preview: Preview,
}

struct Row {
    id: i64,
    storage: String,
    fields: Vec<Field>,
}

#[derive(Template)]
#[template(path = "tasks.html")]
struct TasksPage {
    nav: Nav,
    project_id: i64,
    title: String,
    total: i64,
    rows: Vec<Row>,
    page: i64,
    pages: i64,
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<i64>,
}

/// The kind of media a URI names, by the file extension of its path, or of its query for local
/// files (`/data/local-files/?d=pets/cat.png`).
fn media_of(uri: &str) -> Option<fn(String) -> Preview> {
    let uri = uri.split('#').next().unwrap_or(uri);
    let path = uri.split('?').next().unwrap_or(uri);
    [path, uri].into_iter().find_map(media_of_name)
}

fn media_of_name(name: &str) -> Option<fn(String) -> Preview> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())?;
    match ext.as_str() {
        "jpg" | "jpeg" | "png" | "gif" | "webp" | "bmp" | "svg" | "avif" | "tif" | "tiff" => Some(Preview::Image),
        "mp3" | "wav" | "ogg" | "flac" | "m4a" | "aac" | "opus" => Some(Preview::Audio),
        "mp4" | "webm" | "mov" | "mkv" | "ogv" | "m4v" => Some(Preview::Video),
        _ => None,
    }
}

/// The preview of one data value: media when the stored value named a media file and the page
/// may fetch it (a resolver link, or a plain URL), else the value as short text.
fn preview(stored: &Value, shown: &Value) -> Preview {
    if let (Some(stored), Some(shown)) = (stored.as_str(), shown.as_str())
        && let Some(kind) = media_of(stored)
        && (shown.starts_with('/') || shown.starts_with("http://") || shown.starts_with("https://"))
    {
        return kind(shown.to_string());
    }
    let text = match shown {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut short: String = text.chars().take(PREVIEW_CHARS).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    Preview::Text(short)
}

async fn list(
    State(app): State<Arc<App>>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> PageResult<Response> {
    let project = app.store.project(id)?.ok_or(PageError::NotFound)?;
    let (total, _, _) = app.store.project_counts(id)?;
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    let tasks = app.store.tasks_page(id, (page - 1) * PAGE_SIZE, PAGE_SIZE)?;
    let stored: Vec<Value> = tasks.iter().map(|t| document::task(t, Some(&project))).collect();
    let mut shown = stored.clone();
    crate::api::tasks::resolve_uris(&app, id, &mut shown).await?;
    let mut storage_names: HashMap<i64, String> = HashMap::new();
    let mut rows = Vec::with_capacity(tasks.len());
    for ((t, stored), shown) in tasks.iter().zip(&stored).zip(&shown) {
        let storage = match t.storage_id {
            None => String::new(),
            Some(sid) => match storage_names.get(&sid) {
                Some(n) => n.clone(),
                None => {
                    let name = app.store.storage(sid)?.map(|s| super::storages::name_of(&s)).unwrap_or_default();
                    storage_names.insert(sid, name.clone());
                    name
                }
            },
        };
        let fields = match (&stored["data"], &shown["data"]) {
            (Value::Object(stored), Value::Object(shown)) => stored
                .iter()
                .map(|(k, v)| Field { key: k.clone(), preview: preview(v, shown.get(k).unwrap_or(v)) })
                .collect(),
            (stored, shown) => vec![Field { key: String::new(), preview: preview(stored, shown) }],
        };
        rows.push(Row { id: t.id, storage, fields });
    }
    let page = TasksPage { nav: viewer.nav(), project_id: id, title: title_of(&project), total, rows, page, pages };
    Ok(html(&page)?.into_response())
}

#[cfg(test)]
mod tests {
    use super::{Preview, preview};
    use serde_json::json;

    #[test]
    fn media_show_inline_only_through_a_link_the_page_may_fetch() {
        let link = json!("/tasks/1/resolve/?fileuri=czM6Ly9iL2EuanBn");
        assert!(matches!(preview(&json!("s3://b/a.JPG"), &link), Preview::Image(s) if s == link.as_str().unwrap()));
        assert!(matches!(preview(&json!("gs://b/a.mp3"), &json!("/tasks/1/resolve/?fileuri=x")), Preview::Audio(_)));
        assert!(matches!(preview(&json!("s3://b/a.webm?x=1"), &json!("/t")), Preview::Video(_)));
        let local = json!("/data/local-files/?d=pets/cat.png");
        assert!(matches!(preview(&local, &local), Preview::Image(_)));
        // Not served by any storage: the URI stays as stored and is shown as text.
        assert!(
            matches!(preview(&json!("s3://b/a.jpg"), &json!("s3://b/a.jpg")), Preview::Text(t) if t == "s3://b/a.jpg")
        );
        assert!(matches!(preview(&json!({"a": 1}), &json!({"a": 1})), Preview::Text(t) if t == r#"{"a":1}"#));
        let long = "x".repeat(200);
        assert!(matches!(preview(&json!(long), &json!(long)), Preview::Text(t) if t.chars().count() == 161));
    }
}
