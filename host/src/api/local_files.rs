//! `GET /data/local-files/?d=<path relative to the document root>`: serves a file that lies in the
//! directory of some import storage (with a directory grant) the caller may access, with Range,
//! a weak ETag and 304 (Label Studio's `io_storages/localfiles/views.py::localfiles_data`).
//!
//! Unlike Label Studio: nothing is served without a document root; paths are canonicalised
//! (symlinks resolved) before the containment checks; traversal gets 400, never 500.

use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::error::{ApiError, ApiResult, Query};
use super::openapi::{Routes, get};
use super::{AppState, Caller};
use crate::App;
use crate::domain::{Direction, GrantRequest};

/// The local files routes.
pub fn routes() -> Routes {
    Routes::new("Files").route(
        "/data/local-files",
        [get("A file under the document root (`?d=path`)", serve).map(super::resolve::stored_bytes)],
    )
}

#[derive(Deserialize)]
struct FileQuery {
    d: Option<String>,
}

/// `posixpath.normpath(d).lstrip('/')` without ever climbing above the root: `None` when `..`
/// would leave it.
fn normalize(d: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(d).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

/// Canonical directories of every import storage whose adapter takes a directory grant.
fn storage_dirs(app: &App) -> ApiResult<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for project in app.store.projects()? {
        for s in app.store.storages(Direction::Import, None, project.id)? {
            let Some(adapter) = app.registry.get(&s.type_name) else { continue };
            for field in adapter.info.grants.iter().filter_map(|g| match g {
                GrantRequest::Directory(field) => Some(field),
                _ => None,
            }) {
                if let Some(dir) = s.text(field).and_then(|p| Path::new(p).canonicalize().ok()) {
                    dirs.push(dir);
                }
            }
        }
    }
    Ok(dirs)
}

async fn serve(State(app): AppState, _: Caller, Query(q): Query<FileQuery>, req: Request) -> ApiResult<Response> {
    let Some(root) = app.settings.document_root.as_deref() else {
        return Err(ApiError::Forbidden("Serving local files is disabled: the server has no document root".into()));
    };
    let d = q.d.filter(|d| !d.is_empty()).ok_or_else(|| ApiError::BadRequest("Missing parameter \"d\"".into()))?;
    let rel = normalize(&d).ok_or_else(|| ApiError::BadRequest("The path leaves the document root".into()))?;
    let root = root.canonicalize().map_err(|_| ApiError::not_found())?;
    let file = root.join(&rel).canonicalize().map_err(|_| ApiError::not_found())?;
    if !file.starts_with(&root) || !file.is_file() {
        return Err(ApiError::not_found());
    }
    // `Path::starts_with` compares whole components: `/data/ds` does not cover `/data/ds-private`.
    if !storage_dirs(&app)?.iter().any(|dir| file.starts_with(dir)) {
        return Err(ApiError::not_found());
    }
    let meta = std::fs::metadata(&file).map_err(|_| ApiError::not_found())?;
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    let etag = format!("W/\"{mtime:x}-{:x}\"", meta.len());
    let etag_value = HeaderValue::from_str(&etag).expect("hex digits are a valid header");
    if req.headers().get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }
    let mut response = ServeFile::new(&file)
        .oneshot(req)
        .await
        .map_err(|e| ApiError::Internal(format!("serving a local file: {e}")))?
        .into_response();
    response.headers_mut().insert(header::ETAG, etag_value);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::normalize;
    use std::path::PathBuf;

    #[test]
    fn normalize_never_climbs_above_the_root() {
        assert_eq!(normalize("ds1/../json/x.json"), Some(PathBuf::from("json/x.json")));
        assert_eq!(normalize("/abs/a.jpg"), Some(PathBuf::from("abs/a.jpg")));
        assert_eq!(normalize("../.."), None);
        assert_eq!(normalize("a/../../etc/passwd"), None);
    }
}
