//! Who is calling: an API token (`Authorization: Token <key>`, Django REST framework's
//! `TokenAuthentication`) or a browser signed in to the web page (a session cookie, Django's
//! `SessionAuthentication`, which Label Studio's own pages use).
//!
//! A session cookie alone authenticates reads. Writes (POST, PUT, PATCH, DELETE) with a session
//! cookie must also carry the session's CSRF token in `X-CSRFToken` (Django's header), so a page
//! of another site cannot make a signed-in browser change anything; the cookie is `SameSite=Lax`
//! besides. A request with an `Authorization` header is judged by its token alone.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::App;
use crate::domain::User;

/// The cookie holding a web session's key.
pub const SESSION_COOKIE: &str = "stowage_session";
/// The request header carrying the CSRF token of the caller's session (Django's `X-CSRFToken`).
pub const CSRF_HEADER: &str = "x-csrftoken";
/// How long a web session lasts, in seconds: two weeks, Django's `SESSION_COOKIE_AGE`.
pub const SESSION_SECONDS: i64 = 14 * 24 * 3600;

/// The authenticated caller of an API route.
pub struct Caller(pub User);

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = token_of(Some(value.as_bytes())).map_err(|m| ApiError::Unauthorized(m.into()))?;
            return app
                .store
                .user_by_token(token)?
                .map(Caller)
                .ok_or_else(|| ApiError::Unauthorized("Invalid token.".into()));
        }
        let Some(session) = signed_in(app, &parts.headers)? else {
            return Err(ApiError::Unauthorized(MISSING.into()));
        };
        let unsafe_method = ![Method::GET, Method::HEAD, Method::OPTIONS].contains(&parts.method);
        if unsafe_method {
            // Django's wording (`django/middleware/csrf.py`: REASON_CSRF_TOKEN_MISSING / _INCORRECT).
            let sent = parts.headers.get(CSRF_HEADER).ok_or_else(|| forbidden("CSRF token missing."))?;
            if !same(sent.as_bytes(), session.csrf.as_bytes()) {
                return Err(forbidden("CSRF token incorrect."));
            }
        }
        Ok(Caller(session.user))
    }
}

fn forbidden(reason: &str) -> ApiError {
    ApiError::Forbidden(format!("CSRF Failed: {reason}"))
}

const MISSING: &str = "Authentication credentials were not provided.";

/// The key of an `Authorization` header, read as Django REST framework's `TokenAuthentication`
/// reads it (`rest_framework/authentication.py`): the header split at whitespace, the keyword
/// `Token` in any case, then exactly one credential.
///
/// # Errors
/// DRF's 401 wording for each way the header can be wrong.
fn token_of(header: Option<&[u8]>) -> Result<&str, &'static str> {
    let mut words = header.unwrap_or_default().split(u8::is_ascii_whitespace).filter(|w| !w.is_empty());
    match words.next() {
        Some(keyword) if keyword.eq_ignore_ascii_case(b"token") => {}
        _ => return Err(MISSING),
    }
    let token = words.next().ok_or("Invalid token header. No credentials provided.")?;
    if words.next().is_some() {
        return Err("Invalid token header. Token string should not contain spaces.");
    }
    std::str::from_utf8(token).map_err(|_| "Invalid token header. Token string should not contain invalid characters.")
}

/// A browser signed in to the web page.
pub struct Session {
    pub user: User,
    /// The token every form and cookie-authenticated write of this session must carry.
    pub csrf: String,
}

/// The session of the request's [`SESSION_COOKIE`], if it is one that is open and unexpired.
///
/// # Errors
/// The database failed.
pub fn signed_in(app: &App, headers: &HeaderMap) -> Result<Option<Session>, crate::store::StoreError> {
    let Some(key) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    Ok(app.store.web_session(&digest(&key))?.map(|(user, csrf)| Session { user, csrf }))
}

/// Opens a session for `user_id` and returns the `Set-Cookie` value that hands it to the
/// browser: `HttpOnly` (no script reads it), `SameSite=Lax`, for [`SESSION_SECONDS`].
///
/// # Errors
/// The database failed.
pub fn open_session(app: &App, user_id: i64) -> Result<String, crate::store::StoreError> {
    let key = random_token();
    let expires = chrono::Utc::now().timestamp() + SESSION_SECONDS;
    app.store.create_web_session(&digest(&key), user_id, &random_token(), expires)?;
    Ok(set_cookie(SESSION_COOKIE, &key, SESSION_SECONDS))
}

/// Ends the request's session, if any, and returns the `Set-Cookie` value that removes it.
///
/// # Errors
/// The database failed.
pub fn close_session(app: &App, headers: &HeaderMap) -> Result<String, crate::store::StoreError> {
    if let Some(key) = cookie(headers, SESSION_COOKIE) {
        app.store.delete_web_session(&digest(&key))?;
    }
    Ok(set_cookie(SESSION_COOKIE, "", 0))
}

/// A `Set-Cookie` value for a cookie of this service: whole site, `HttpOnly`, `SameSite=Lax`,
/// living `max_age` seconds (0 removes it).
pub fn set_cookie(name: &str, value: &str, max_age: i64) -> String {
    cookie::Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build()
        .to_string()
}

/// The value of the request's cookie `name` (the first, if the browser sent several).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// 32 random bytes as hex: session keys and CSRF tokens.
pub fn random_token() -> String {
    hex::encode(rand::rng().random::<[u8; 32]>())
}

/// Compares secrets in time that does not depend on where they differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// An argon2id hash of `password` with a random salt, as a PHC string (`$argon2id$v=19$...`).
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any password")
        .to_string()
}

/// An argon2id hash of a random password nobody knows (made once per process), to check a
/// password against when the user has none or does not exist, so that costs what a real check
/// costs and the answer's time does not tell which emails have accounts.
pub fn unusable_password_hash() -> &'static str {
    static HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| hash_password(&random_token()));
    &HASH
}

/// Whether `password` matches the PHC string `hash` ([`hash_password`]); a malformed hash matches nothing.
pub fn password_matches(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_keyword_is_read_in_any_case_as_drf_reads_it() {
        for header in ["Token abc", "token abc", "TOKEN abc", "tOkEn \t abc  "] {
            assert_eq!(token_of(Some(header.as_bytes())), Ok("abc"), "{header:?}");
        }
        for (header, detail) in [
            (None, "Authentication credentials were not provided."),
            (Some(""), "Authentication credentials were not provided."),
            (Some("Bearer abc"), "Authentication credentials were not provided."),
            (Some("Tokenabc"), "Authentication credentials were not provided."),
            (Some("Token"), "Invalid token header. No credentials provided."),
            (Some("Token  "), "Invalid token header. No credentials provided."),
            (Some("Token a b"), "Invalid token header. Token string should not contain spaces."),
        ] {
            assert_eq!(token_of(header.map(str::as_bytes)), Err(detail), "{header:?}");
        }
        assert_eq!(
            token_of(Some(b"Token \xff")),
            Err("Invalid token header. Token string should not contain invalid characters.")
        );
    }

    #[test]
    fn a_password_matches_its_hash_only() {
        let hash = hash_password("correct horse");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(password_matches("correct horse", &hash));
        assert!(!password_matches("correct horse ", &hash));
        assert!(!password_matches("correct horse", "not a hash"));
        assert_ne!(hash, hash_password("correct horse"), "salted");
    }

    #[test]
    fn cookies_are_read_by_name_and_set_http_only_and_lax() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; stowage_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        assert_eq!(set_cookie("n", "v", 60), "n=v; HttpOnly; SameSite=Lax; Path=/; Max-Age=60");
    }
}
