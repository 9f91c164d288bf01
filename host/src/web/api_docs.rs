//! `GET /docs/api`: the REST API's OpenAPI document (`GET /api/schema`) as a page, one table per
//! resource, rendered from the same document the API serves.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::Operation;

use super::{Nav, PageResult, Viewer, html};
use crate::App;

pub fn routes(doc: Arc<OpenApi>) -> Router<Arc<App>> {
    Router::new().route("/docs/api", get(move |viewer: Viewer| async move { page(&doc, &viewer) }))
}

struct Row {
    method: &'static str,
    path: String,
    summary: String,
    /// Media type of the request body, or empty.
    body: String,
}

struct Section {
    tag: String,
    rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "api_docs.html")]
struct ApiDocsPage {
    nav: Nav,
    version: String,
    sections: Vec<Section>,
}

fn page(doc: &OpenApi, viewer: &Viewer) -> PageResult<Response> {
    let mut sections: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let tag = op.tags.as_ref().and_then(|t| t.first()).cloned().unwrap_or_default();
            sections.entry(tag).or_default().push(row(method, path, op));
        }
    }
    let sections = sections.into_iter().map(|(tag, rows)| Section { tag, rows }).collect();
    Ok(html(&ApiDocsPage { nav: viewer.nav(), version: doc.info.version.clone(), sections })?.into_response())
}

fn row(method: &'static str, path: &str, op: &Operation) -> Row {
    let body = op.request_body.as_ref().and_then(|b| b.content.keys().next().cloned()).unwrap_or_default();
    Row { method, path: path.to_string(), summary: op.summary.clone().unwrap_or_default(), body }
}
