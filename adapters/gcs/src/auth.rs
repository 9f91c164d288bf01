//! OAuth2 access tokens for a service account, by the JWT-bearer flow
//! (<https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests>):
//! an RS256-signed JWT (`iss` = the account, `scope`, `aud` = `token_uri`, `iat`, `exp` one hour
//! later) is POSTed form-encoded to `token_uri` with
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`; the answer is an `access_token` valid
//! `expires_in` seconds, sent as `Authorization: Bearer ...`.

use std::cell::RefCell;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::Deserialize;
use stowage_sdk::Error;
use stowage_sdk::http::{Request, Response, encode_value};

use crate::config::ServiceAccount;
use crate::sign::rs256;

/// The OAuth2 scope asked for: read and write objects
/// (<https://cloud.google.com/storage/docs/oauth-scopes>).
pub const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// Lifetime asked for in the JWT (`exp - iat`); Google allows at most one hour.
pub const ASSERTION_SECONDS: u64 = 3600;

/// A cached token is replaced this long before it expires, so no request carries a token that
/// expires in flight.
pub const REFRESH_MARGIN_SECONDS: u64 = 300;

/// An access token and when it expires (Unix seconds). `Debug` shows the expiry only.
#[derive(Clone, PartialEq)]
pub struct Token {
    /// The OAuth2 bearer token, sent as `Authorization: Bearer ...`: a credential.
    pub access_token: String,
    /// When the token expires, in seconds since the Unix epoch.
    pub expires_at: u64,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token").field("access_token", &"<redacted>").field("expires_at", &self.expires_at).finish()
    }
}

/// The signed JWT assertion for `account` at Unix time `now`.
///
/// # Errors
/// `invalid-config` if the key cannot sign.
pub fn assertion(account: &ServiceAccount, now: u64) -> Result<String, Error> {
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = &account.private_key_id {
        header["kid"] = kid.clone().into();
    }
    let claims = serde_json::json!({
        "iss": account.client_email,
        "scope": SCOPE,
        "aud": account.token_uri_text,
        "iat": now,
        "exp": now + ASSERTION_SECONDS,
    });
    let signing_input = format!("{}.{}", B64URL.encode(header.to_string()), B64URL.encode(claims.to_string()));
    let signature = rs256(&account.signer, signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", B64URL.encode(signature)))
}

/// The token request (POST to `token_uri`, form-encoded).
///
/// # Errors
/// `invalid-config` if the key cannot sign.
pub fn token_request(account: &ServiceAccount, now: u64) -> Result<Request, Error> {
    let body = format!(
        "grant_type={}&assertion={}",
        encode_value("urn:ietf:params:oauth:grant-type:jwt-bearer"),
        encode_value(&assertion(account, now)?)
    );
    let uri = &account.token_uri;
    let path = if uri.base_path.is_empty() { "/".into() } else { uri.base_path.clone() };
    let headers = vec![("content-type".into(), "application/x-www-form-urlencoded".into())];
    let mut request = uri.request("POST", path, headers, body.into_bytes());
    request.set_content_length();
    Ok(request)
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenError {
    #[serde(default)]
    error: String,
}

/// The token in a token endpoint's answer received at Unix time `now`.
///
/// # Errors
/// RFC 6749 §5.2 errors (`invalid_grant`: a deleted key or a skewed clock, `invalid_client`, ...)
/// and other 4xx are `denied`, naming the account and the error code only; 429 is `throttled`;
/// 5xx and unreadable answers are `transient`.
pub fn parse_token_response(account: &ServiceAccount, response: &Response, now: u64) -> Result<Token, Error> {
    let who = &account.client_email;
    if response.is_success() {
        let answer: TokenAnswer = serde_json::from_slice(&response.body)
            .map_err(|_| Error::Transient(format!("the OAuth2 token answer for {who} is not readable")))?;
        return Ok(Token { access_token: answer.access_token, expires_at: now + answer.expires_in.unwrap_or(3600) });
    }
    let code = serde_json::from_slice::<TokenError>(&response.body)
        .ok()
        .map(|e| e.error)
        .filter(|c| !c.is_empty() && c.len() <= 40 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    let status = response.status;
    let detail = code.map_or_else(|| format!("HTTP {status}"), |c| format!("{c}, HTTP {status}"));
    Err(match status {
        429 => Error::Throttled(response.retry_after()),
        500..=599 => Error::Transient(format!("the OAuth2 token endpoint failed for {who} ({detail})")),
        _ => Error::Denied(format!(
            "Google refused the service account credentials of {who} ({detail}); check google_application_credentials"
        )),
    })
}

/// The access token of one backend instance, reused until [`REFRESH_MARGIN_SECONDS`] before it
/// expires. The host pools instances per storage (and rebuilds one only after a trap), so a token
/// serves every call of that storage for about an hour; a fresh instance simply asks again.
#[derive(Default)]
pub struct TokenCache(RefCell<Option<Token>>);

impl TokenCache {
    /// The cached token if still fresh at `now`, else a new one from `fetch`.
    ///
    /// # Errors
    /// Whatever `fetch` returns.
    pub fn get(&self, now: u64, fetch: impl FnOnce() -> Result<Token, Error>) -> Result<String, Error> {
        if let Some(token) = self.0.borrow().as_ref()
            && token.expires_at > now + REFRESH_MARGIN_SECONDS
        {
            return Ok(token.access_token.clone());
        }
        let token = fetch()?;
        let access = token.access_token.clone();
        *self.0.borrow_mut() = Some(token);
        Ok(access)
    }

    /// Forgets the token (after a 401: revoked or expired early).
    pub fn clear(&self) {
        self.0.borrow_mut().take();
    }
}

#[cfg(test)]
mod tests {
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;

    use super::*;
    use crate::config::tests::TEST_KEY_JSON;

    fn account() -> ServiceAccount {
        ServiceAccount::parse(TEST_KEY_JSON).unwrap()
    }

    /// `Debug` never shows the access token.
    #[test]
    fn debug_hides_the_token() {
        let token = Token { access_token: "ya29.SECRET-TOKEN".into(), expires_at: 1_549_015_200 };
        let shown = format!("{token:?}");
        assert!(!shown.contains("SECRET-TOKEN") && !shown.contains("ya29"), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains("1549015200"), "{shown}");
    }

    /// The assertion is a JWT with Google's claims, verifiable with the account's public key.
    #[test]
    fn assertion_is_a_signed_jwt() {
        let sa = account();
        let jwt = assertion(&sa, 1_549_011_600).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let json = |p: &str| serde_json::from_slice::<serde_json::Value>(&B64URL.decode(p).unwrap()).unwrap();
        assert_eq!(
            json(parts[0]),
            serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "ffffffffffffffffffffffffffffffffffffffff"})
        );
        assert_eq!(
            json(parts[1]),
            serde_json::json!({
                "iss": "test-iam-credentials@dummy-project-id.iam.gserviceaccount.com",
                "scope": SCOPE,
                "aud": "https://oauth2.googleapis.com/token",
                "iat": 1_549_011_600u64,
                "exp": 1_549_011_600u64 + 3600,
            })
        );
        let public = VerifyingKey::<rsa::sha2::Sha256>::new(sa.signer.as_ref().to_public_key());
        let signature = Signature::try_from(B64URL.decode(parts[2]).unwrap().as_slice()).unwrap();
        public.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature).unwrap();
    }

    #[test]
    fn token_request_is_form_encoded() {
        let r = token_request(&account(), 1_549_011_600).unwrap();
        assert_eq!(
            (r.method, r.https, r.authority.as_str(), r.path_and_query.as_str()),
            ("POST", true, "oauth2.googleapis.com", "/token")
        );
        let body = String::from_utf8(r.body).unwrap();
        assert!(
            body.starts_with("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=ey"),
            "{body}"
        );
    }

    fn response(status: u16, body: &str) -> Response {
        Response { status, headers: vec![], body: body.as_bytes().to_vec() }
    }

    #[test]
    fn token_answers() {
        let sa = account();
        let ok = response(200, r#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#);
        assert_eq!(
            parse_token_response(&sa, &ok, 100).unwrap(),
            Token { access_token: "ya29.x".into(), expires_at: 3699 }
        );
        let refused = response(400, r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#);
        let Err(Error::Denied(m)) = parse_token_response(&sa, &refused, 0) else { panic!() };
        assert_eq!(
            m,
            "Google refused the service account credentials of test-iam-credentials@dummy-project-id.iam.gserviceaccount.com (invalid_grant, HTTP 400); check google_application_credentials"
        );
        assert!(matches!(parse_token_response(&sa, &response(503, "busy"), 0), Err(Error::Transient(_))));
        assert!(matches!(parse_token_response(&sa, &response(200, "<html>"), 0), Err(Error::Transient(_))));
    }

    /// A token is reused until shortly before it expires, then fetched again.
    #[test]
    fn tokens_are_cached_until_shortly_before_expiry() {
        let cache = TokenCache::default();
        let fetches = std::cell::Cell::new(0);
        let fetch = |n: &str| {
            fetches.set(fetches.get() + 1);
            Ok(Token { access_token: n.to_string(), expires_at: 1000 + 3600 })
        };
        assert_eq!(cache.get(1000, || fetch("a")).unwrap(), "a");
        assert_eq!(cache.get(1000 + 3000, || fetch("b")).unwrap(), "a");
        assert_eq!(cache.get(1000 + 3301, || fetch("c")).unwrap(), "c");
        assert_eq!(fetches.get(), 2);
        cache.clear();
        assert_eq!(cache.get(1000, || fetch("d")).unwrap(), "d");
        assert!(cache.get(5000, || Err(Error::Transient("down".into()))).is_err());
    }
}
