#![doc = include_str!("../docs.md")]
//!
//! Modules: [`config`] (settings, service-account keys), [`client`] (addressing, authorization,
//! signed URLs), [`auth`] (OAuth2 JWT-bearer tokens), [`sign`] (V4 signing, RS256), [`error`]
//! (JSON API errors → error kinds), [`json`] (JSON API bodies). Label Studio's prefix and listing
//! rules, endpoints and dates are the SDK's (`stowage_sdk::object_store`, `http`, `time`).

pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod json;
pub mod sign;

use stowage_sdk::http::{Response, content_range_total, range_header, unquote_etag};
use stowage_sdk::object_store::{self as store, ListApi, ListRequest, blob_uri, bucket_uri, ranged_body};
use stowage_sdk::time::{http_date_millis, rfc3339_millis};
use stowage_sdk::{
    AdapterInfo, Backend, ByteRange, Capabilities, Config, Direction, Entry, Error, ErrorKind, GrantRequest, HttpGrant,
    Method, Object, Page, Setting,
};

use crate::client::Client;
use crate::config::GcsConfig;
use crate::error::GcsFailure;
use crate::json::{ObjectList, ObjectResource};

/// Storage type name, as in `/api/storages/gcs/`.
pub const TYPE_NAME: &str = "gcs";

/// URI scheme of blob-mode tasks: `gs://bucket/key` (Label Studio's `url_scheme`).
pub const SCHEME: &str = "gs";

/// `objects.list` (<https://cloud.google.com/storage/docs/json_api/v1/objects/list>): at most
/// 1000 items per page (`maxResults`).
const LIST: ListApi = ListApi { fixed: &[], page_size: "maxResults", max_page_size: 1000, cursor: "pageToken" };

/// A `gcs` storage.
pub struct Gcs {
    client: Client,
}

fn entry_of(object: ObjectResource) -> Entry {
    Entry {
        size: object.size(),
        etag: object.etag.as_deref().map(unquote_etag),
        last_modified: object.updated.as_deref().and_then(rfc3339_millis),
        key: object.name,
    }
}

impl Gcs {
    fn bucket(&self) -> &str {
        self.client.bucket()
    }

    /// `gs://bucket/key`, used to name the object in messages.
    fn what(&self, key: &str) -> String {
        blob_uri(SCHEME, self.bucket(), key)
    }

    fn failure(response: &Response) -> GcsFailure {
        GcsFailure::new(response.status, &response.body, response.retry_after())
    }

    /// One `objects.list` call.
    fn list_objects(&self, list: &ListRequest) -> Result<Result<ObjectList, GcsFailure>, Error> {
        let path = self.client.objects_path(&list.query());
        let response = self.client.send(self.client.api.request("GET", path, vec![], vec![]))?;
        if !response.is_success() {
            return Ok(Err(Self::failure(&response)));
        }
        serde_json::from_slice(&response.body).map(Ok).map_err(|_| {
            Error::Transient(format!("{}: the object listing is not readable", bucket_uri(SCHEME, self.bucket())))
        })
    }

    /// `buckets.get`.
    fn get_bucket(&self) -> Result<Result<(), GcsFailure>, Error> {
        let response =
            self.client.send(self.client.api.request("GET", self.client.bucket_path(&[]), vec![], vec![]))?;
        Ok(if response.is_success() { Ok(()) } else { Err(Self::failure(&response)) })
    }

    /// `objects.get` (metadata).
    fn get_metadata(&self, key: &str) -> Result<ObjectResource, Error> {
        let path = self.client.object_path(key, &[]);
        let response = self.client.send(self.client.api.request("GET", path, vec![], vec![]))?;
        if !response.is_success() {
            return Err(self.object_error(&response, key));
        }
        serde_json::from_slice(&response.body)
            .map_err(|_| Error::Transient(format!("{}: the object metadata is not readable", self.what(key))))
    }

    /// The error of a failed object request: about the bucket when it is the bucket that is missing.
    fn object_error(&self, response: &Response, key: &str) -> Error {
        let failure = Self::failure(response);
        let what = if failure.bucket_missing { bucket_uri(SCHEME, self.bucket()) } else { self.what(key) };
        failure.into_error(&what)
    }

    /// Messages of a failed connection check, in Label Studio's words where it has its own.
    fn check_failure(&self, failure: GcsFailure) -> Error {
        let bucket = self.bucket();
        match failure.kind {
            ErrorKind::Denied => Error::Denied(format!(
                "Cannot connect to GCS bucket {bucket} with the specified credentials ({})",
                failure.detail()
            )),
            ErrorKind::NotFound => Error::NotFound(format!("Cannot find bucket {bucket} in GCS")),
            _ => failure.into_error(&bucket_uri(SCHEME, bucket)),
        }
    }
}

impl Backend for Gcs {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            type_name: TYPE_NAME.into(),
            title: "Google Cloud Storage".into(),
            capabilities: Capabilities::READ | Capabilities::WRITE | Capabilities::DELETE | Capabilities::PRESIGN,
            settings: vec![
                Setting::text("bucket", "Bucket name").required(),
                Setting::text(
                    "prefix",
                    "Folder inside the bucket (optional); an import storage lists only objects under it",
                ),
                Setting::text(
                    "google_application_credentials",
                    "Service account key: the content of the JSON key file; empty for anonymous access",
                )
                .secret(),
                Setting::text("google_project_id", "Google Cloud project ID (optional)"),
                Setting::text(
                    "gcs_endpoint",
                    "Endpoint of a GCS emulator or GCS-compatible server, e.g. http://127.0.0.1:4443; empty for Google",
                ),
            ],
            grants: vec![GrantRequest::Http(HttpGrant {
                endpoint_setting: "gcs_endpoint".into(),
                default_hosts: vec![config::GOOGLE_HOST.into(), "oauth2.googleapis.com".into()],
            })],
            regex_on_basename: false,
            key_value: false,
            uri_schemes: vec![SCHEME.into()],
        }
    }

    fn open(config: Config) -> Result<Self, Error> {
        Ok(Gcs { client: Client::new(GcsConfig::from_config(&config)?) })
    }

    /// Label Studio's `GCS.validate_connection`: with a prefix, one object under `prefix/` must
    /// exist for an import storage (`No blobs found in {bucket}/{prefix} or prefix doesn't exist`;
    /// an export storage may be empty); without, `buckets.get`. A key that may list objects but
    /// not read bucket metadata (roles/storage.objectViewer) passes with a one-object listing.
    fn check(&self, direction: Direction) -> Result<(), Error> {
        match self.client.config.prefix.clone() {
            Some(prefix) => {
                let listing = self.list_objects(&ListRequest::probe(LIST, Some(&prefix)))?;
                let listing = listing.map_err(|f| self.check_failure(f))?;
                if listing.items.is_empty() && matches!(direction, Direction::Import) {
                    return Err(Error::InvalidConfig(format!(
                        "No blobs found in {}/{prefix} or prefix doesn't exist",
                        self.bucket()
                    )));
                }
                Ok(())
            }
            None => match self.get_bucket()? {
                Ok(()) => Ok(()),
                Err(f) if f.kind == ErrorKind::Denied => match self.list_objects(&ListRequest::probe(LIST, None))? {
                    Ok(_) => Ok(()),
                    Err(_) => Err(self.check_failure(f)),
                },
                Err(f) => Err(self.check_failure(f)),
            },
        }
    }

    /// `objects.list` with Label Studio's rules (`gcs/utils.py::iter_blobs`, shared in
    /// [`stowage_sdk::object_store`]): a non-empty prefix is a folder (`prefix/`), only direct
    /// children unless `recursive` (delimiter `/`), names ending in `/` (folder placeholders)
    /// skipped. At most `page_size` (≤ 1000) entries a page.
    fn list(&self, prefix: &str, cursor: Option<String>, page_size: u32, recursive: bool) -> Result<Page, Error> {
        let list = ListRequest::new(LIST, prefix, cursor, page_size, recursive);
        let listing = self.list_objects(&list)?.map_err(|f| f.into_error(&self.what(&list.prefix)))?;
        Ok(store::page(listing.items.into_iter().map(entry_of), listing.next_page_token))
    }

    fn stat(&self, key: &str) -> Result<Entry, Error> {
        self.get_metadata(key).map(entry_of)
    }

    /// `objects.get?alt=media` with `Range: bytes=a-b`. A range past the end reads as empty.
    fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Object, Error> {
        let path = self.client.object_path(key, &[("alt", "media")]);
        let headers = range.iter().map(|r| ("range".to_string(), range_header(r))).collect();
        let response = self.client.send(self.client.api.request("GET", path, headers, vec![]))?;
        if response.status == 416 {
            // Nothing to read, as a local file read would give; the size comes from the metadata
            // when Content-Range does not carry it.
            let total = match response.header("content-range").and_then(content_range_total) {
                Some(total) => total,
                None => self.get_metadata(key)?.size(),
            };
            return Ok(store::past_the_end(&response, total));
        }
        if !response.is_success() {
            return Err(self.object_error(&response, key));
        }
        let etag = response.header("etag").map(unquote_etag);
        let last_modified = response.header("last-modified").and_then(http_date_millis);
        let content_type = response.header("content-type").map(str::to_string);
        let (body, total_size) = ranged_body(response, range.as_ref());
        // A 206 without the complete length in Content-Range: the size comes from the metadata.
        let total_size = match total_size {
            Some(total) => total,
            None => self.get_metadata(key)?.size(),
        };
        Ok(Object { body, total_size, etag, content_type, last_modified })
    }

    /// A simple upload (`uploadType=media`), `Content-Type` as given (default
    /// `application/octet-stream`).
    fn put(&self, key: &str, body: Vec<u8>, content_type: Option<String>) -> Result<(), Error> {
        let content_type = content_type.filter(|c| !c.is_empty()).unwrap_or_else(|| "application/octet-stream".into());
        let headers = vec![("content-type".to_string(), content_type)];
        let response =
            self.client.send(self.client.api.request("POST", self.client.upload_path(key), headers, body))?;
        if !response.is_success() {
            return Err(self.object_error(&response, key));
        }
        Ok(())
    }

    /// One `objects.delete` per key; a missing object (404) is not an error.
    fn delete(&self, keys: Vec<String>) -> Result<(), Error> {
        for key in keys {
            let path = self.client.object_path(&key, &[]);
            let response = self.client.send(self.client.api.request("DELETE", path, vec![], vec![]))?;
            if !response.is_success() && response.status != 404 {
                return Err(self.object_error(&response, &key));
            }
        }
        Ok(())
    }

    /// A V4 signed URL valid `ttl_seconds` (`X-Goog-Expires`, capped at Google's 7 days;
    /// the host passes Label Studio's `presign_ttl` minutes × 60): `https://storage.googleapis.com/{bucket}/{key}`
    /// or `{gcs_endpoint}/{bucket}/{key}`. Without credentials, the plain object URL.
    fn presign(&self, method: Method, key: &str, ttl_seconds: u32) -> Result<String, Error> {
        let method = match method {
            Method::Get => "GET",
            Method::Put => "PUT",
        };
        self.client.presign(method, key, ttl_seconds)
    }

    fn blob_uri(&self, key: &str) -> String {
        blob_uri(SCHEME, self.bucket(), key)
    }

    /// `{prefix}/{annotation_id}`, or the bare id without a prefix (Label Studio's
    /// `GCSExportStorage.save_annotation`).
    fn export_key(&self, annotation_id: u64) -> String {
        store::export_key(self.client.config.prefix.as_deref(), annotation_id)
    }

    fn key_of_uri(&self, uri: &str) -> Option<String> {
        store::key_of_uri(SCHEME, self.bucket(), uri)
    }
}

#[cfg(target_arch = "wasm32")]
stowage_sdk::export_adapter!(Gcs);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{TEST_KEY_JSON, config};

    fn open(settings: &[(&str, &str)], secrets: &[(&str, &str)]) -> Gcs {
        Gcs::open(config(settings, secrets)).unwrap()
    }

    #[test]
    fn describe_matches_label_studio() {
        let info = Gcs::describe();
        assert_eq!((info.type_name.as_str(), info.title.as_str()), ("gcs", "Google Cloud Storage"));
        let names: Vec<&str> = info.settings.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["bucket", "prefix", "google_application_credentials", "google_project_id", "gcs_endpoint"]);
        let secret: Vec<&str> = info.settings.iter().filter(|s| s.secret).map(|s| s.name.as_str()).collect();
        assert_eq!(secret, ["google_application_credentials"]);
        assert!(info.settings.iter().all(|s| !s.help.is_empty() && s.env_fallback.is_none()));
        assert_eq!(info.uri_schemes, ["gs"]);
        let GrantRequest::Http(grant) = &info.grants[0] else { panic!() };
        assert_eq!(grant.endpoint_setting, "gcs_endpoint");
        assert_eq!(grant.default_hosts, ["storage.googleapis.com", "oauth2.googleapis.com"]);
    }

    #[test]
    fn blob_uris_round_trip() {
        let gcs = open(&[("bucket", "bkt")], &[]);
        assert_eq!(gcs.blob_uri("dir/a b+c.jpg"), "gs://bkt/dir/a b+c.jpg");
        assert_eq!(gcs.key_of_uri("gs://bkt/dir/a b+c.jpg").as_deref(), Some("dir/a b+c.jpg"));
        assert_eq!(gcs.key_of_uri("gs://other/k"), None);
        assert_eq!(gcs.key_of_uri("gs://bktt/k"), None);
        assert_eq!(gcs.key_of_uri("s3://bkt/k"), None);
        assert_eq!(gcs.key_of_uri("gs://bkt/"), None);
    }

    #[test]
    fn export_keys_go_under_the_prefix() {
        assert_eq!(open(&[("bucket", "bkt"), ("prefix", "ann/")], &[]).export_key(7), "ann/7");
        assert_eq!(open(&[("bucket", "bkt")], &[]).export_key(7), "7");
    }

    /// A malformed key fails `open` (so storage creation) with a message that names no key material.
    #[test]
    fn open_refuses_malformed_credentials() {
        let broken = TEST_KEY_JSON.replace("\"client_email\"", "\"client_email\" ");
        assert!(Gcs::open(config(&[("bucket", "bkt")], &[("google_application_credentials", &broken)])).is_ok());
        let broken = &TEST_KEY_JSON[..TEST_KEY_JSON.len() - 3];
        let Err(Error::InvalidConfig(m)) =
            Gcs::open(config(&[("bucket", "bkt")], &[("google_application_credentials", broken)]))
        else {
            panic!()
        };
        assert!(m.starts_with("Google Application Credentials must be valid JSON string."), "{m}");
        assert!(!m.contains("PRIVATE KEY"), "{m}");
    }

    /// Without wasi:http (native), a refused request names the host and nothing secret.
    #[test]
    fn refused_requests_name_the_host() {
        let gcs = open(&[("bucket", "bkt"), ("gcs_endpoint", "http://10.0.0.1:4443")], &[]);
        let Err(Error::Denied(m)) = gcs.stat("k") else { panic!() };
        assert_eq!(m, "the stowage host refused the connection to 10.0.0.1:4443 (address policy)");
        // With a key, against Google, the token request is the first one refused.
        let gcs = open(&[("bucket", "bkt")], &[("google_application_credentials", TEST_KEY_JSON)]);
        let Err(Error::Denied(m)) = gcs.check(Direction::Import) else { panic!() };
        assert_eq!(m, "the stowage host refused the connection to oauth2.googleapis.com (address policy)");
    }
}
