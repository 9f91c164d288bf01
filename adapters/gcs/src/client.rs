//! Requests to the Cloud Storage JSON API: addressing, authorization (OAuth2 bearer tokens) and
//! signed URLs; the transport is `stowage_sdk::http`.

use stowage_sdk::Error;
use stowage_sdk::http::{Endpoint, Request, Response, encode_key, encode_value, query_string};
use stowage_sdk::time;

use crate::auth::{self, TokenCache};
use crate::config::{GOOGLE_HOST, GcsConfig};
use crate::sign::{self, UrlRequest};

/// A configured client for one storage.
pub struct Client {
    pub config: GcsConfig,
    /// Where API requests and signed URLs go: `gcs_endpoint`, or `https://storage.googleapis.com`.
    pub api: Endpoint,
    tokens: TokenCache,
}

impl Client {
    /// A client for `config`: the API endpoint is `gcs_endpoint`, or `https://storage.googleapis.com`;
    /// no token yet (the first authorized request asks for one). No I/O.
    pub fn new(config: GcsConfig) -> Client {
        let api = config.endpoint.clone().unwrap_or_else(|| Endpoint {
            https: true,
            authority: GOOGLE_HOST.into(),
            base_path: String::new(),
        });
        Client { config, api, tokens: TokenCache::default() }
    }

    /// The bucket name, as configured (validated, not encoded).
    pub fn bucket(&self) -> &str {
        &self.config.bucket
    }

    /// Whether API requests carry an OAuth2 token: with credentials, against Google, or against a
    /// `gcs_endpoint` that also serves the key's `token_uri` (same host and port). Other endpoints
    /// (emulators such as fake-gcs-server, which check nothing) get anonymous requests, as the
    /// Google client libraries do for `STORAGE_EMULATOR_HOST`; the sandbox would refuse the token
    /// request anyway, since only the endpoint's host is granted then.
    pub fn uses_oauth(&self) -> bool {
        match (&self.config.credentials, &self.config.endpoint) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(sa), Some(endpoint)) => sa.token_uri.authority == endpoint.authority,
        }
    }

    /// `{base}/storage/v1/b/{bucket}` and `query`.
    pub fn bucket_path(&self, query: &[(&str, &str)]) -> String {
        format!("{}/storage/v1/b/{}{}", self.api.base_path, encode_value(self.bucket()), query_string(query))
    }

    /// `{base}/storage/v1/b/{bucket}/o` (objects.list) and `query`.
    pub fn objects_path(&self, query: &[(&str, &str)]) -> String {
        format!("{}/storage/v1/b/{}/o{}", self.api.base_path, encode_value(self.bucket()), query_string(query))
    }

    /// `{base}/storage/v1/b/{bucket}/o/{object}` and `query`; the object name is one path
    /// segment, so `/` is encoded too (<https://cloud.google.com/storage/docs/request-endpoints#encoding>).
    pub fn object_path(&self, key: &str, query: &[(&str, &str)]) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}{}",
            self.api.base_path,
            encode_value(self.bucket()),
            encode_value(key),
            query_string(query)
        )
    }

    /// A simple (single-request) upload of `key`: `{base}/upload/storage/v1/b/{bucket}/o?uploadType=media&name=`.
    pub fn upload_path(&self, key: &str) -> String {
        format!(
            "{}/upload/storage/v1/b/{}/o{}",
            self.api.base_path,
            encode_value(self.bucket()),
            query_string(&[("uploadType", "media"), ("name", key)])
        )
    }

    /// The bearer token, from the cache or the token endpoint.
    fn bearer(&self) -> Result<Option<String>, Error> {
        let Some(account) = self.config.credentials.as_ref().filter(|_| self.uses_oauth()) else { return Ok(None) };
        let now = time::now_secs();
        self.tokens
            .get(now, || {
                let response = stowage_sdk::http::send(&auth::token_request(account, now)?)?;
                auth::parse_token_response(account, &response, now)
            })
            .map(Some)
    }

    /// Authorizes (when OAuth applies) and sends `request`. Any HTTP status is a response; only a
    /// transport or token failure is an error.
    pub fn send(&self, mut request: Request) -> Result<Response, Error> {
        request.set_content_length();
        if let Some(token) = self.bearer()? {
            request.headers.push(("authorization".into(), format!("Bearer {token}")));
        }
        let response = stowage_sdk::http::send(&request)?;
        if response.status == 401 {
            // Revoked or expired early: the next call asks for a new token.
            self.tokens.clear();
        }
        Ok(response)
    }

    /// Path of `key` in a path-style object URL: `{base}/{bucket}/{key}`, `/` kept.
    pub fn url_path(&self, key: &str) -> String {
        format!("{}/{}/{}", self.api.base_path, encode_value(self.bucket()), encode_key(key))
    }

    /// A V4 signed URL for `method` on `key`, valid `ttl_seconds` (capped at 7 days); a plain
    /// object URL without credentials (public objects).
    ///
    /// # Errors
    /// `invalid-config` if the key cannot sign.
    pub fn presign(&self, method: &str, key: &str, ttl_seconds: u32) -> Result<String, Error> {
        let path = self.url_path(key);
        let Some(account) = &self.config.credentials else {
            return Ok(format!("{}{path}", self.api.origin()));
        };
        let request = UrlRequest {
            method,
            https: self.api.https,
            authority: &self.api.authority,
            path: &path,
            query: &[],
            headers: &[],
        };
        sign::signed_url(&request, &account.client_email, &account.signer, time::now_secs(), ttl_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{TEST_KEY_JSON, config};

    fn client(settings: &[(&str, &str)], with_key: bool) -> Client {
        let secrets: &[(&str, &str)] =
            if with_key { &[("google_application_credentials", TEST_KEY_JSON)] } else { &[] };
        Client::new(GcsConfig::from_config(&config(settings, secrets)).unwrap())
    }

    #[test]
    fn paths() {
        let c = client(&[("bucket", "bkt")], false);
        assert_eq!(
            c.object_path("a/b c+d.json", &[("alt", "media")]),
            "/storage/v1/b/bkt/o/a%2Fb%20c%2Bd.json?alt=media"
        );
        assert_eq!(
            c.objects_path(&[("prefix", "a/"), ("delimiter", "/")]),
            "/storage/v1/b/bkt/o?prefix=a%2F&delimiter=%2F"
        );
        assert_eq!(c.bucket_path(&[]), "/storage/v1/b/bkt");
        assert_eq!(c.upload_path("a/x#1.json"), "/upload/storage/v1/b/bkt/o?uploadType=media&name=a%2Fx%231.json");
        assert_eq!(
            c.api.request("GET", c.bucket_path(&[]), vec![], vec![]).url(),
            "https://storage.googleapis.com/storage/v1/b/bkt"
        );
        let c = client(&[("bucket", "bkt"), ("gcs_endpoint", "http://127.0.0.1:4443/base/")], false);
        assert_eq!(
            c.api.request("GET", c.bucket_path(&[]), vec![], vec![]).url(),
            "http://127.0.0.1:4443/base/storage/v1/b/bkt"
        );
    }

    /// OAuth against Google, or an endpoint serving the token URI; anonymous for emulators.
    #[test]
    fn oauth_applies_to_google_only() {
        assert!(client(&[("bucket", "bkt")], true).uses_oauth());
        assert!(!client(&[("bucket", "bkt")], false).uses_oauth());
        assert!(!client(&[("bucket", "bkt"), ("gcs_endpoint", "http://127.0.0.1:4443")], true).uses_oauth());
        assert!(client(&[("bucket", "bkt"), ("gcs_endpoint", "https://oauth2.googleapis.com")], true).uses_oauth());
    }

    /// Without credentials a presigned URL is the plain object URL; with them, path-style V4.
    #[test]
    fn presigned_urls() {
        let c = client(&[("bucket", "bkt"), ("gcs_endpoint", "http://127.0.0.1:4443")], false);
        assert_eq!(c.presign("GET", "dir/a b.jpg", 60).unwrap(), "http://127.0.0.1:4443/bkt/dir/a%20b.jpg");
        let c = client(&[("bucket", "bkt")], false);
        assert_eq!(c.presign("GET", "k", 60).unwrap(), "https://storage.googleapis.com/bkt/k");
        let c = client(&[("bucket", "bkt"), ("gcs_endpoint", "http://127.0.0.1:4443")], true);
        let url = c.presign("PUT", "dir/a b.jpg", 90).unwrap();
        assert!(url.starts_with("http://127.0.0.1:4443/bkt/dir/a%20b.jpg?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=test-iam-credentials%40dummy-project-id.iam.gserviceaccount.com%2F"), "{url}");
        assert!(url.contains("&X-Goog-Expires=90&X-Goog-SignedHeaders=host&X-Goog-Signature="), "{url}");
        assert!(c.presign("GET", "k", 10_000_000).unwrap().contains("&X-Goog-Expires=604800&"));
    }
}
