//! Projects: `GET /projects` (each with its task and annotation counts), `POST /projects` (the
//! create form), `GET /projects/{id}` (to its tasks) and `GET /projects/{id}/settings`.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use super::{Nav, PageError, PageResult, Viewer, html};
use crate::App;
use crate::api::error::ApiError;
use crate::domain::Project;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/projects", get(list).post(create))
        .route(
            "/projects/{id}",
            get(|Path(id): Path<i64>| async move { Redirect::to(&format!("/projects/{id}/data")) }),
        )
        .route("/projects/{id}/settings", get(settings))
}

/// A project as the list shows it.
struct Row {
    id: i64,
    title: String,
    tasks: i64,
    annotations: i64,
}

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsPage {
    nav: Nav,
    projects: Vec<Row>,
    /// The create form as sent back with its errors, or empty.
    title: String,
    description: String,
    label_config: String,
    title_error: Option<String>,
    label_config_error: Option<String>,
}

/// The title a project is shown by: Label Studio names an untitled one by its id.
pub(super) fn title_of(p: &Project) -> String {
    if p.title.is_empty() { format!("Project #{}", p.id) } else { p.title.clone() }
}

fn page(app: &App, viewer: &Viewer) -> PageResult<ProjectsPage> {
    let mut projects = Vec::new();
    for p in app.store.projects()? {
        let (tasks, annotations, _) = app.store.project_counts(p.id)?;
        projects.push(Row { id: p.id, title: title_of(&p), tasks, annotations });
    }
    Ok(ProjectsPage {
        nav: viewer.nav(),
        projects,
        title: String::new(),
        description: String::new(),
        label_config: String::new(),
        title_error: None,
        label_config_error: None,
    })
}

async fn list(State(app): State<Arc<App>>, viewer: Viewer) -> PageResult<Response> {
    Ok(html(&page(&app, &viewer)?)?.into_response())
}

#[derive(Deserialize)]
struct NewProject {
    csrf_token: Option<String>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    label_config: String,
}

/// Creates the project through the API's own rules and opens its Cloud Storage page, or shows
/// the form again with the rule that failed next to its field.
async fn create(State(app): State<Arc<App>>, viewer: Viewer, Form(f): Form<NewProject>) -> PageResult<Response> {
    viewer.check_csrf(f.csrf_token.as_deref())?;
    let made = crate::api::projects::new_project(
        &app,
        viewer.user.id,
        f.title.trim().to_string(),
        Some(&f.description),
        Some(f.label_config.clone()),
    );
    match made {
        Ok(p) => Ok(Redirect::to(&format!("/projects/{}/settings/storage", p.id)).into_response()),
        Err(ApiError::Validation(mut errors)) => {
            let mut again = page(&app, &viewer)?;
            again.title_error = errors.remove("title").map(|m| m.join(" "));
            again.label_config_error = errors.remove("label_config").map(|m| m.join(" "));
            (again.title, again.description, again.label_config) = (f.title, f.description, f.label_config);
            let body = html(&again)?;
            Ok((axum::http::StatusCode::BAD_REQUEST, body).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    nav: Nav,
    project: Project,
    title: String,
}

async fn settings(State(app): State<Arc<App>>, viewer: Viewer, Path(id): Path<i64>) -> PageResult<Response> {
    let project = app.store.project(id)?.ok_or(PageError::NotFound)?;
    Ok(html(&SettingsPage { nav: viewer.nav(), title: title_of(&project), project })?.into_response())
}
