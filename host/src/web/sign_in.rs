//! Signing in and out: `GET`/`POST /user/login` (Label Studio's address), `POST /user/logout`.
//!
//! The sign-in form takes an API token, or the email and password of a user who has a password
//! (`stowage serve --password` sets the first user's). Before a session exists, the form's CSRF
//! token is a random value also set as a cookie, and the post must carry both alike (the
//! double-submit pattern), so another site cannot sign a browser in to its own account.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::{PageError, PageResult, Viewer, html};
use crate::App;
use crate::api::auth;

/// The cookie holding the sign-in form's CSRF token.
const FORM_COOKIE: &str = "stowage_login_csrf";

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/user/login", get(form).post(sign_in)).route("/user/logout", post(sign_out))
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    csrf: String,
    next: String,
    email: String,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

/// Where to go after signing in: a path of this site only (never `//elsewhere` or a full URL,
/// which would make the sign-in page an open redirect).
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\") => p.to_string(),
        _ => "/projects".into(),
    }
}

/// The form, with a fresh CSRF token in it and in [`FORM_COOKIE`].
fn form_page(status: StatusCode, next: String, email: String, error: Option<&'static str>) -> PageResult<Response> {
    let csrf = auth::random_token();
    let page = html(&SignInPage { csrf: csrf.clone(), next, email, error })?;
    Ok((status, [(header::SET_COOKIE, auth::set_cookie(FORM_COOKIE, &csrf, 3600))], page).into_response())
}

async fn form(viewer: Option<Viewer>, Query(q): Query<Next>) -> PageResult<Response> {
    let next = local_path(q.next.as_deref());
    if viewer.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    form_page(StatusCode::OK, next, String::new(), None)
}

#[derive(Deserialize)]
struct Credentials {
    csrf_token: Option<String>,
    next: Option<String>,
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn sign_in(State(app): State<Arc<App>>, headers: HeaderMap, Form(c): Form<Credentials>) -> PageResult<Response> {
    let expected = auth::cookie(&headers, FORM_COOKIE);
    match (&c.csrf_token, &expected) {
        (Some(sent), Some(cookie)) if auth::same(sent.as_bytes(), cookie.as_bytes()) => {}
        _ => return Err(PageError::Csrf),
    }
    let next = local_path(c.next.as_deref());
    let (token, email) = (c.token.trim(), c.email.trim());
    let user = if !token.is_empty() {
        app.store.user_by_token(token)?.ok_or("Wrong API token.")
    } else if !email.is_empty() {
        // A user without a password, or an unknown email, fails exactly as a wrong password.
        match app.store.user_by_email(email)? {
            Some((user, Some(hash))) if auth::password_matches(&c.password, &hash) => Ok(user),
            _ => Err("Wrong email or password."),
        }
    } else {
        Err("Enter an API token, or an email and password.")
    };
    let user = match user {
        Ok(u) => u,
        Err(message) => return form_page(StatusCode::UNAUTHORIZED, next, c.email, Some(message)),
    };
    let session = auth::open_session(&app, user.id)?;
    // Appended: a header array would keep only the last `Set-Cookie`.
    let cookies =
        AppendHeaders([(header::SET_COOKIE, session), (header::SET_COOKIE, auth::set_cookie(FORM_COOKIE, "", 0))]);
    Ok((cookies, Redirect::to(&next)).into_response())
}

#[derive(Deserialize)]
struct SignOut {
    csrf_token: Option<String>,
}

async fn sign_out(
    State(app): State<Arc<App>>,
    viewer: Viewer,
    headers: HeaderMap,
    Form(f): Form<SignOut>,
) -> PageResult<Response> {
    viewer.check_csrf(f.csrf_token.as_deref())?;
    let cleared = auth::close_session(&app, &headers)?;
    Ok(([(header::SET_COOKIE, cleared)], Redirect::to("/user/login")).into_response())
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_paths_of_this_site_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/projects/3/data?page=2")), "/projects/3/data?page=2");
        for outside in
            [None, Some(""), Some("https://evil.example/"), Some("//evil.example/"), Some("/\\evil"), Some("x")]
        {
            assert_eq!(local_path(outside), "/projects", "{outside:?}");
        }
    }
}
