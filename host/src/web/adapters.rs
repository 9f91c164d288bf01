//! `GET /adapters` (administrators): the loaded storage adapters with their WIT version,
//! capabilities, grants and health, and a form that uploads a `.wasm` file (the page's script
//! posts it to `POST /api/adapters`).

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Nav, PageError, PageResult, Viewer, html};
use crate::App;
use crate::domain::GrantRequest;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/adapters", get(page))
}

struct Row {
    type_name: String,
    title: String,
    file: String,
    wit_version: &'static str,
    capabilities: String,
    grants: Vec<String>,
    /// `active` or `quarantined`.
    status: &'static str,
    quarantined_storages: usize,
    /// Within the quarantine window (5 minutes).
    failures_recent: usize,
    failures_total: u64,
}

#[derive(Template)]
#[template(path = "adapters.html")]
struct AdaptersPage {
    nav: Nav,
    adapters: Vec<Row>,
}

/// A grant as an operator reads it.
fn grant_text(g: &GrantRequest) -> String {
    match g {
        GrantRequest::Directory(setting) => format!("directory named by {setting}"),
        GrantRequest::Http { endpoint_setting, default_hosts } if default_hosts.is_empty() => {
            format!("HTTP to the host of {endpoint_setting}")
        }
        GrantRequest::Http { endpoint_setting, default_hosts } => {
            format!("HTTP to the host of {endpoint_setting}, else {}", default_hosts.join(", "))
        }
        GrantRequest::Tcp { host_setting, port_setting, default_host, default_port } => {
            format!("TCP to {host_setting}:{port_setting} (default {default_host}:{default_port})")
        }
    }
}

async fn page(State(app): State<Arc<App>>, viewer: Viewer) -> PageResult<Response> {
    // Adapters are code that runs for every storage of their type: administrators only, as
    // their upload is.
    if !viewer.user.is_superuser {
        return Err(PageError::Forbidden);
    }
    let adapters = app
        .registry
        .all()
        .iter()
        .map(|a| {
            let (failures_recent, failures_total, held) = a.health.failures(app.settings.quarantine_after);
            let c = a.info.capabilities;
            let capabilities = [("read", c.read), ("write", c.write), ("delete", c.delete), ("presign", c.presign)]
                .iter()
                .filter(|(_, on)| *on)
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(", ");
            Row {
                type_name: a.info.type_name.clone(),
                title: a.info.title.clone(),
                file: a.file.clone(),
                wit_version: a.version.as_str(),
                capabilities,
                grants: a.info.grants.iter().map(grant_text).collect(),
                status: if held > 0 { "quarantined" } else { "active" },
                quarantined_storages: held,
                failures_recent,
                failures_total,
            }
        })
        .collect();
    Ok(html(&AdaptersPage { nav: viewer.nav(), adapters })?.into_response())
}
