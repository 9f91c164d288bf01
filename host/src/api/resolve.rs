//! The URI resolver: `GET /tasks/{id}/resolve/?fileuri=<base64url>` and
//! `GET /projects/{id}/resolve/?fileuri=...` (plus the legacy `/presign/` aliases), Label Studio's
//! `io_storages/proxy_api.py`. The storage serving the URI either presigns it (303 to the storage)
//! or, with `presign=false`, the service streams the bytes itself, so the browser never sees
//! storage credentials.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use serde::Deserialize;
use serde_json::json;
use tower_http::set_header::SetResponseHeaderLayer;

use super::error::{ApiError, ApiResult, Path, Query};
use super::openapi::{Routes, get};
use super::projects::project_or_404;
use super::tasks::task_or_404;
use super::{AppState, Caller};
use crate::App;
use crate::domain::MAX_PRESIGN_TTL_MINUTES;
use crate::error::{ErrorKind, StorageError};
use crate::plugin::Session;
use crate::tasks::resolver::Resolver;
use crate::tasks::uri::decode_fileuri;

/// Largest byte range served per proxied request (Label Studio's `RESOLVER_PROXY_MAX_RANGE_SIZE`,
/// 8 MiB).
pub const MAX_RANGE: u64 = 8 << 20;

/// Bytes read from the storage per adapter call while streaming a proxied answer: what one
/// proxied read holds in memory is one chunk being sent and one read ahead.
pub const STREAM_CHUNK: u64 = 256 << 10;

/// Seconds a client refused for too many proxied reads is told to wait (`Retry-After`).
const PROXY_RETRY_AFTER_S: &str = "1";

/// The URI resolver routes.
pub fn routes() -> Routes {
    let task = "A storage URI of the task's data (`?fileuri=`): a presigned URL (303) or the bytes";
    let project = "A storage URI of the project's storages (`?fileuri=`): a presigned URL (303) or the bytes";
    Routes::new("Resolve")
        .route("/tasks/{id}/resolve", [get(task, task_resolve).map(stored_bytes)])
        .route("/tasks/{id}/presign", [get(task, task_resolve).map(stored_bytes)])
        .route("/projects/{id}/resolve", [get(project, project_resolve).map(stored_bytes)])
        .route("/projects/{id}/presign", [get(project, project_resolve).map(stored_bytes)])
}

/// Marks the responses of a route serving bytes read from a storage as untrusted:
/// `Content-Security-Policy: sandbox`, so a stored HTML or SVG file opened in the browser runs no
/// script as this site (where it could ride a signed-in session and its CSRF token), and
/// `X-Content-Type-Options: nosniff`, so nothing is taken for HTML that is not declared so.
/// Images, audio and video embedded by a page are not affected.
pub(super) fn stored_bytes(r: MethodRouter<Arc<App>>) -> MethodRouter<Arc<App>> {
    let sandbox =
        SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    let nosniff =
        SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r.layer::<_, Infallible>(sandbox).layer::<_, Infallible>(nosniff)
}

#[derive(Deserialize)]
struct FileQuery {
    fileuri: Option<String>,
}

async fn task_resolve(
    State(app): AppState,
    _: Caller,
    Path(id): Path<i64>,
    Query(q): Query<FileQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let task = task_or_404(&app, id)?;
    resolve(app, task.project_id, q, headers).await
}

async fn project_resolve(
    State(app): AppState,
    _: Caller,
    Path(id): Path<i64>,
    Query(q): Query<FileQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    project_or_404(&app, id)?;
    resolve(app, id, q, headers).await
}

/// Label Studio's answer when the storage fails mid-proxy.
fn storage_failed(e: &StorageError) -> ApiError {
    let status = if e.kind == ErrorKind::NotFound { StatusCode::NOT_FOUND } else { StatusCode::FAILED_DEPENDENCY };
    ApiError::Raw(status, json!({"error": "Storage stream failed while proxying data", "detail": e.to_string()}))
}

async fn resolve(app: Arc<App>, project_id: i64, q: FileQuery, headers: HeaderMap) -> ApiResult<Response> {
    let uri =
        q.fileuri.as_deref().and_then(decode_fileuri).ok_or_else(|| ApiError::BadRequest("Invalid fileuri".into()))?;
    let mut resolver = Resolver::for_project(&app, project_id)?;
    let (storage, session, key) = resolver.locate(&uri).await.ok_or_else(ApiError::not_found)?;
    let Some(caps) = app.registry.get(&storage.type_name).map(|a| a.info.capabilities).filter(|c| c.read) else {
        return Err(ApiError::not_found());
    };
    // An adapter that cannot presign is always proxied.
    let opts = storage.options();
    let presign = caps.presign && opts.presign;
    if presign {
        // `presign_ttl` is in minutes, as in Label Studio.
        let ttl = opts.presign_ttl_minutes.clamp(1, MAX_PRESIGN_TTL_MINUTES) * 60;
        let url = match session.presign_get(&key, ttl as u32).await {
            Ok(url) => Some(url),
            // This storage cannot presign (e.g. an Azure storage holding only a SAS token, which
            // must not reach browsers): serve the bytes instead.
            Err(e) if e.kind == ErrorKind::Unsupported => None,
            Err(e) => return Err(storage_failed(&e)),
        };
        if let Some(url) = url {
            let location = HeaderValue::from_str(&url)
                .map_err(|_| ApiError::Internal("adapter returned an invalid URL".into()))?;
            return Ok((
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, location),
                    (header::CACHE_CONTROL, HeaderValue::from_str(&format!("no-store, max-age={ttl}")).unwrap()),
                ],
            )
                .into_response());
        }
    }
    let storage = storage.clone();
    proxy(app.clone(), &storage, session, &key, &headers).await
}

/// A single `Range: bytes=...` against an object of `size` bytes: `Ok(None)` without a header,
/// `Err(())` when unsatisfiable. The end is capped at [`MAX_RANGE`] bytes from the start.
fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    let first = spec.split(',').next().unwrap_or("").trim();
    let (a, b) = first.split_once('-').ok_or(())?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| ())?;
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (s, "") => (s.parse().map_err(|_| ())?, size.saturating_sub(1)),
        (s, e) => (s.parse().map_err(|_| ())?, e.parse::<u64>().map_err(|_| ())?.min(size.saturating_sub(1))),
    };
    if size == 0 || start > end || start >= size {
        return Err(());
    }
    Ok(Some((start, end.min(start + MAX_RANGE - 1))))
}

async fn proxy(
    app: Arc<App>,
    storage: &crate::domain::Storage,
    session: &mut Session,
    key: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    // Held until the answer's last byte is sent or the client goes away.
    let Ok(permit) = app.proxy_streams.clone().try_acquire_owned() else {
        tracing::warn!(storage = storage.id, "proxied read refused: --max-proxy-streams reached");
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, PROXY_RETRY_AFTER_S)],
            axum::Json(json!({"detail": "Too many proxied reads at once; retry shortly."})),
        )
            .into_response());
    };
    let entry = session.stat(key).await.map_err(|e| storage_failed(&e))?;
    let size = entry.size;
    let etag =
        format!("\"{}\"", entry.etag.unwrap_or_else(|| format!("{size:x}-{:x}", entry.last_modified.unwrap_or(0))));
    let etag_value = HeaderValue::from_str(&etag).map_err(|_| ApiError::Internal("invalid etag".into()))?;
    let cache = (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600, must-revalidate"));
    let range = parse_range(headers, size);
    if headers.get(header::RANGE).is_none()
        && headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value), cache]).into_response());
    }
    let (status, start, end) = match range {
        Err(()) => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{size}")).unwrap())],
            )
                .into_response());
        }
        Ok(Some((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end),
        Ok(None) if size == 0 => (StatusCode::OK, 0, 0),
        Ok(None) => (StatusCode::OK, 0, size - 1),
    };
    // The first chunk is read before answering, so a storage error still gets a proper status.
    let first_end = end.min(start + STREAM_CHUNK - 1);
    let first = if size == 0 {
        None
    } else {
        Some(session.get(key, Some((start, Some(first_end)))).await.map_err(|e| storage_failed(&e))?)
    };
    let content_type =
        first.as_ref().and_then(|o| o.content_type.clone()).unwrap_or_else(|| "application/octet-stream".into());
    let length = if size == 0 { 0 } else { end - start + 1 };
    let content_type =
        HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, length)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, etag_value)
        .header(cache.0, cache.1);
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"));
    }
    let first_body = first.map(|o| o.body).unwrap_or_default();
    if first_end >= end || size == 0 {
        return Ok(response.body(Body::from(first_body)).expect("valid response"));
    }
    // The rest streams in chunks, one read ahead of the client (a channel of one). Each chunk is
    // read by a pooled session taken for that call only, so a stream waiting on a slow client
    // holds no adapter instance.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, StorageError>>(1);
    let storage = storage.clone();
    let key = key.to_string();
    tokio::spawn(async move {
        let _permit = permit;
        let mut at = first_end + 1;
        while at <= end {
            let upto = end.min(at + STREAM_CHUNK - 1);
            let chunk = match app.sessions.checkout(&storage) {
                Ok(mut session) => {
                    let chunk = session.get(&key, Some((at, Some(upto)))).await.map(|o| o.body);
                    app.sessions.checkin(&storage, session);
                    chunk
                }
                Err(e) => Err(StorageError::new(ErrorKind::InvalidConfig, "get", e.to_string())),
            };
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                return;
            }
            at = upto + 1;
        }
    });
    let stream = futures_util::stream::unfold((Some(first_body), rx), |(first, mut rx)| async move {
        if let Some(f) = first {
            return Some((Ok::<_, std::io::Error>(f), (None, rx)));
        }
        match rx.recv().await? {
            Ok(bytes) => Some((Ok(bytes), (None, rx))),
            Err(e) => Some((Err(std::io::Error::other(e.to_string())), (None, rx))),
        }
    });
    Ok(response.body(Body::from_stream(stream)).expect("valid response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        parse_range(&h, size)
    }

    #[test]
    fn ranges_are_parsed_and_capped() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=-5", 100), Ok(Some((95, 99))));
        assert_eq!(range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(range("bytes=0-", 100 << 20), Ok(Some((0, MAX_RANGE - 1))));
        assert_eq!(range("bytes=100-", 100), Err(()));
        assert_eq!(range("bytes=abc", 100), Err(()));
        assert_eq!(parse_range(&HeaderMap::new(), 100), Ok(None));
    }
}
