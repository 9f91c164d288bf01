//! The web page: the storage guide's screens, server-rendered from the same store and registry
//! as the API (askama templates in `templates/`, compiled into the binary with the CSS and the
//! one script in `assets/`).
//!
//! - `/user/login`, `/user/logout`: sign in with an API token or email and password ([`sign_in`]);
//! - `/projects`: projects with their counts, and a form to create one ([`projects`]);
//! - `/projects/{id}/data`: the project's tasks, storage media shown inline ([`tasks`]);
//! - `/projects/{id}/settings/storage`: Cloud Storage, the guide's Settings > Cloud Storage ([`storages`]);
//! - `/adapters`: the loaded adapters and an upload form, for administrators ([`adapters`]);
//! - `/docs/api`: the REST API's OpenAPI document as a page ([`api_docs`]).
//!
//! Pages read; the changes a page makes go through the REST API from the page's script (session
//! cookie plus the `X-CSRFToken` header: [`crate::api::auth`]), except signing in and out and
//! creating a project, which are plain forms carrying the session's CSRF token.

mod adapters;
mod api_docs;
mod projects;
mod sign_in;
mod storages;
mod tasks;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::App;
use crate::api::auth;
use crate::domain::User;

/// The page routes; `doc` is the REST API's OpenAPI document, which `/docs/api` shows.
pub fn routes(doc: Arc<utoipa::openapi::OpenApi>) -> Router<Arc<App>> {
    Router::new()
        .route("/", get(home))
        .route("/static/style.css", get(|| asset("text/css", include_str!("assets/style.css"))))
        .route("/static/app.js", get(|| asset("text/javascript", include_str!("assets/app.js"))))
        .merge(sign_in::routes())
        .merge(projects::routes())
        .merge(tasks::routes())
        .merge(storages::routes())
        .merge(adapters::routes())
        .merge(api_docs::routes(doc))
        // No page may be framed by another site (clickjacking the Delete or Sync buttons).
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        ))
}

/// `GET /`: the projects when signed in, else the sign-in page.
async fn home(viewer: Option<Viewer>) -> Redirect {
    Redirect::to(if viewer.is_some() { "/projects" } else { "/user/login" })
}

/// A stylesheet or script of the page, cached by the browser for an hour.
async fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600")),
    ];
    (headers, body).into_response()
}

/// The signed-in user of a page. A request without an open session is sent to the sign-in page,
/// which comes back here after.
pub struct Viewer {
    pub user: User,
    /// The session's CSRF token: every form of the page carries it, and so does every API write
    /// of its script.
    pub csrf: String,
}

impl FromRequestParts<Arc<App>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let signed_in = <Viewer as axum::extract::OptionalFromRequestParts<_>>::from_request_parts(parts, app).await?;
        signed_in.ok_or_else(|| {
            let next = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            Redirect::to(&format!("/user/login?next={}", urlencode(next))).into_response()
        })
    }
}

impl axum::extract::OptionalFromRequestParts<Arc<App>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Option<Self>, Self::Rejection> {
        match auth::signed_in(app, &parts.headers) {
            Ok(s) => Ok(s.map(|s| Viewer { user: s.user, csrf: s.csrf })),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

impl Viewer {
    /// The navigation bar of a page for this user.
    fn nav(&self) -> Nav {
        Nav { email: self.user.email.clone(), csrf: self.csrf.clone(), admin: self.user.is_superuser }
    }

    /// Refuses a form whose CSRF token is missing or not this session's (a page of another
    /// site posting with the user's cookie).
    fn check_csrf(&self, sent: Option<&str>) -> Result<(), PageError> {
        match sent {
            Some(t) if auth::same(t.as_bytes(), self.csrf.as_bytes()) => Ok(()),
            _ => Err(PageError::Csrf),
        }
    }
}

/// What every page's header shows: who is signed in, the sign-out form, the adapters link for
/// administrators.
pub struct Nav {
    pub email: String,
    pub csrf: String,
    pub admin: bool,
}

/// A page that could not be shown.
#[derive(Debug)]
pub enum PageError {
    NotFound,
    /// A form without this session's CSRF token (Django's "CSRF verification failed").
    Csrf,
    Forbidden,
    /// Logged with its cause; the page says only that something failed.
    Internal(String),
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::Internal(e.to_string())
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        PageError::Internal(format!("template: {e}"))
    }
}

impl From<crate::api::error::ApiError> for PageError {
    fn from(e: crate::api::error::ApiError) -> Self {
        use crate::api::error::ApiError;
        match e {
            ApiError::NotFound(_) => PageError::NotFound,
            ApiError::Forbidden(_) | ApiError::Unauthorized(_) => PageError::Forbidden,
            other => PageError::Internal(format!("{other:?}")),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    heading: &'static str,
    message: &'static str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            PageError::NotFound => (StatusCode::NOT_FOUND, "Not found", "There is nothing at this address."),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "CSRF verification failed",
                "The form did not carry this session's security token. Reload the page and try again.",
            ),
            PageError::Forbidden => {
                (StatusCode::FORBIDDEN, "Not allowed", "You do not have permission to see this page.")
            }
            PageError::Internal(cause) => {
                tracing::error!("page failed: {cause}");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "The server could not show this page.")
            }
        };
        let page = ErrorPage { heading, message }.render().unwrap_or_else(|_| heading.to_string());
        (status, Html(page)).into_response()
    }
}

/// The result of a page handler.
pub type PageResult<T> = Result<T, PageError>;

/// Renders a template as an HTML response.
fn html(t: &impl Template) -> PageResult<Html<String>> {
    Ok(Html(t.render()?))
}

/// Percent-encodes a query parameter value.
fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
