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

/// Where to go after signing in: a path of this site only. Anything a browser could read as
/// another site (`//evil`, `/\\evil`, a full URL, or control characters and whitespace, which
/// browsers drop: `/<TAB>/evil` is `//evil` to them) falls back to the projects, and so does the
/// sign-out address (a stale tab's sign-out must not sign out again).
fn local_path(next: Option<&str>) -> String {
    let fallback = "/projects".to_string();
    let Some(p) = next else { return fallback };
    let plain = p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if !plain || !p.starts_with('/') || p.starts_with("//") || p.starts_with("/user/logout") {
        return fallback;
    }
    p.to_string()
}

/// The form, with the CSRF token of [`FORM_COOKIE`] in it: the browser's if it has one (so
/// several sign-in tabs all work), else a new one.
fn form_page(
    headers: &HeaderMap,
    status: StatusCode,
    next: String,
    email: String,
    error: Option<&'static str>,
) -> PageResult<Response> {
    let csrf = auth::cookie(headers, FORM_COOKIE).filter(|c| c.len() == 64).unwrap_or_else(auth::random_token);
    let page = html(&SignInPage { csrf: csrf.clone(), next, email, error })?;
    Ok((status, [(header::SET_COOKIE, auth::set_cookie(FORM_COOKIE, &csrf, 3600))], page).into_response())
}

async fn form(viewer: Option<Viewer>, headers: HeaderMap, Query(q): Query<Next>) -> PageResult<Response> {
    let next = local_path(q.next.as_deref());
    if viewer.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    form_page(&headers, StatusCode::OK, next, String::new(), None)
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
        let found = app.store.user_by_email(email)?;
        let password = c.password.clone();
        // Argon2 takes tens of milliseconds of CPU: off the async workers. An unknown email, or
        // a user without a password, is checked against a fixed hash, so it fails exactly as a
        // wrong password does, in the same time.
        let verified = tokio::task::spawn_blocking(move || match found {
            Some((user, Some(hash))) => auth::password_matches(&password, &hash).then_some(user),
            _ => {
                auth::password_matches(&password, auth::unusable_password_hash());
                None
            }
        })
        .await
        .map_err(|e| PageError::Internal(format!("password check: {e}")))?;
        verified.ok_or("Wrong email or password.")
    } else {
        Err("Enter an API token, or an email and password.")
    };
    let user = match user {
        Ok(u) => u,
        Err(message) => return form_page(&headers, StatusCode::UNAUTHORIZED, next, c.email, Some(message)),
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
        let outside = [
            None,
            Some(""),
            Some("https://evil.example/"),
            Some("//evil.example/"),
            Some("/\\evil"),
            // Browsers drop tabs and newlines: this is `//evil.example` to them.
            Some("/\t/evil.example"),
            Some("/\n/evil"),
            Some("/ /evil"),
            Some("x"),
            Some("/user/logout"),
        ];
        for outside in outside {
            assert_eq!(local_path(outside), "/projects", "{outside:?}");
        }
    }
}
