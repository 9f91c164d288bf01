#![doc = include_str!("../docs.md")]
//!
//! Modules: [`config`] (settings), [`client`] (addressing, transport), [`sign`] (SigV4),
//! [`error`] (S3 codes → error kinds), [`xml`] (S3 XML bodies).

pub mod client;
pub mod config;
pub mod error;
pub mod sign;
pub mod xml;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest, Md5};
use stowage_sdk::http::{content_range_total, range_header};
use stowage_sdk::object_store::{
    self as store, ListApi, ListRequest, blob_uri, bucket_uri, entry_from_headers, ranged_body,
};
use stowage_sdk::{
    AdapterInfo, Backend, ByteRange, Capabilities, Config, Direction, Entry, Error, ErrorKind, GrantRequest, HttpGrant,
    Method, Object, Page, Setting,
};

use crate::client::{Client, Target, failure};
use crate::config::S3Config;
use crate::error::{S3Failure, code_kind};

/// Storage type name, as in `/api/storages/s3/` and `s3://bucket/key` URIs.
pub const SCHEME: &str = "s3";

/// S3 returns at most 1000 keys per ListObjectsV2 page and deletes at most 1000 keys per DeleteObjects.
const MAX_KEYS: u32 = 1000;

/// ListObjectsV2 (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html>), keys
/// URL-encoded in the answer (`encoding-type=url`) so that any byte survives the XML.
const LIST: ListApi = ListApi {
    fixed: &[("list-type", "2"), ("encoding-type", "url")],
    page_size: "max-keys",
    max_page_size: MAX_KEYS,
    cursor: "continuation-token",
};

/// Longest validity of a SigV4 presigned URL (7 days); AWS refuses longer ones.
const MAX_PRESIGN_SECONDS: u32 = 604_800;

/// An `s3` storage.
pub struct S3 {
    client: Client,
}

impl S3 {
    fn bucket(&self) -> &str {
        &self.client.config.bucket
    }

    /// `s3://bucket/key`, used to name the object in messages.
    fn what(&self, key: &str) -> String {
        blob_uri(SCHEME, self.bucket(), key)
    }

    /// One ListObjectsV2 call.
    fn list_objects(&self, list: &ListRequest) -> Result<Result<xml::ListBucketResult, S3Failure>, Error> {
        let response = self.client.send("GET", Target::Bucket, &list.query(), vec![], vec![])?;
        if !response.is_success() {
            return Ok(Err(failure(&response)));
        }
        xml::parse_list(&response.body)
            .map(Ok)
            .map_err(|e| Error::Transient(format!("{}: {}", bucket_uri(SCHEME, self.bucket()), e.0)))
    }

    fn head_bucket(&self) -> Result<Result<(), S3Failure>, Error> {
        let response = self.client.send("HEAD", Target::Bucket, &[], vec![], vec![])?;
        Ok(if response.is_success() { Ok(()) } else { Err(failure(&response)) })
    }

    /// Label Studio's messages for a failed connection check (`s3/models.py::validate_connection`),
    /// and one naming `region_name` when the server says the bucket is in another region (the
    /// message starts with the setting's name, so the host reports it under that field).
    fn check_failure(&self, failure: S3Failure, bucket_request: bool) -> Error {
        let bucket = self.bucket();
        if let (Some(given), Some(actual)) = (&self.client.config.region, &failure.region)
            && given != actual
        {
            return Error::InvalidConfig(format!(
                "region_name \"{given}\" does not match the region of bucket {bucket}, \"{actual}\"; set region_name to \"{actual}\" or leave it empty to have it found"
            ));
        }
        match failure.kind {
            ErrorKind::Denied => Error::Denied(format!("Cannot connect to S3 {bucket} with specified AWS credentials")),
            ErrorKind::NotFound if failure.is_no_such_bucket() || (bucket_request && failure.code.is_none()) => {
                Error::NotFound(format!("Cannot find bucket {bucket} in S3"))
            }
            _ => failure.into_error(&bucket_uri(SCHEME, bucket)),
        }
    }

    fn delete_one(&self, key: &str) -> Result<(), Error> {
        let response = self.client.send("DELETE", Target::Object(key), &[], vec![], vec![])?;
        if response.is_success() || response.status == 404 {
            return Ok(());
        }
        Err(failure(&response).into_error(&self.what(key)))
    }

    /// DeleteObjects for up to 1000 XML-safe keys. `Ok(false)` when the server does not
    /// implement it (some S3-compatible servers), so the caller falls back to single deletes.
    fn delete_many(&self, keys: &[&str]) -> Result<bool, Error> {
        let body = xml::delete_request(keys).into_bytes();
        let headers = vec![
            ("content-type".to_string(), "application/xml".to_string()),
            ("content-md5".to_string(), BASE64.encode(Md5::digest(&body))),
        ];
        let response = self.client.send("POST", Target::Bucket, &[("delete", "")], headers, body)?;
        if !response.is_success() {
            let failure = failure(&response);
            if failure.kind == ErrorKind::Unsupported {
                return Ok(false);
            }
            return Err(failure.into_error(&bucket_uri(SCHEME, self.bucket())));
        }
        let result = xml::parse_delete_result(&response.body)
            .map_err(|e| Error::Transient(format!("{}: {}", bucket_uri(SCHEME, self.bucket()), e.0)))?;
        match result.errors.into_iter().find(|e| e.code != "NoSuchKey") {
            None => Ok(true),
            Some(e) => {
                // Per-key failures of a 200 response; the code still decides the kind.
                let kind = code_kind(&e.code).map_or(ErrorKind::Transient, |(kind, _)| kind);
                let failure = S3Failure::new(200, b"", None, None);
                let failure = S3Failure { code: Some(e.code).filter(|c| code_kind(c).is_some()), kind, ..failure };
                Err(failure.into_error(&self.what(&e.key)))
            }
        }
    }
}

/// The `Content-Type` S3 should answer a presigned GET with, guessed from the key's extension as
/// Label Studio does (`mimetypes.guess_type`, else `application/octet-stream`).
pub fn guess_content_type(key: &str) -> String {
    mime_guess::from_path(key).first_raw().unwrap_or("application/octet-stream").to_string()
}

impl Backend for S3 {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            type_name: SCHEME.into(),
            title: "AWS S3".into(),
            capabilities: Capabilities::READ | Capabilities::WRITE | Capabilities::DELETE | Capabilities::PRESIGN,
            settings: vec![
                Setting::text("bucket", "Bucket name").required(),
                Setting::text(
                    "prefix",
                    "Folder inside the bucket (optional); an import storage lists only keys under it",
                ),
                Setting::text(
                    "region_name",
                    "AWS region of the bucket, e.g. eu-west-1; empty: the bucket's own region, found on first use",
                ),
                Setting::text(
                    "s3_endpoint",
                    "Endpoint of an S3-compatible server, e.g. https://minio.example.com (path-style); empty for AWS",
                ),
                Setting::text("aws_access_key_id", "Access key ID; empty for anonymous access")
                    .secret()
                    .env_fallback("AWS_ACCESS_KEY_ID"),
                Setting::text("aws_secret_access_key", "Secret access key")
                    .secret()
                    .env_fallback("AWS_SECRET_ACCESS_KEY"),
                Setting::text("aws_session_token", "Session token of temporary credentials (optional)")
                    .secret()
                    .env_fallback("AWS_SESSION_TOKEN"),
                Setting::text(
                    "aws_sse_kms_key_id",
                    "KMS key ID for server-side encryption of exported objects (optional)",
                ),
            ],
            grants: vec![GrantRequest::Http(HttpGrant {
                endpoint_setting: "s3_endpoint".into(),
                default_hosts: vec!["*.amazonaws.com".into()],
            })],
            regex_on_basename: false,
            key_value: false,
            uri_schemes: vec![SCHEME.into()],
        }
    }

    fn open(config: Config) -> Result<Self, Error> {
        Ok(S3 { client: Client::new(S3Config::from_config(&config)?) })
    }

    /// Label Studio's `validate_connection`: with a prefix, ListObjectsV2 (max-keys 1) under
    /// `prefix/`, which must find a key for an import storage; without, HeadBucket.
    fn check(&self, direction: Direction) -> Result<(), Error> {
        match self.client.config.prefix.clone() {
            Some(prefix) => {
                let listing = self.list_objects(&ListRequest::probe(LIST, Some(&prefix)))?;
                let listing = listing.map_err(|f| self.check_failure(f, true))?;
                let empty = listing.contents.is_empty() && listing.key_count.unwrap_or(0) == 0;
                if empty && matches!(direction, Direction::Import) {
                    return Err(Error::InvalidConfig(format!("{} not found.", self.what(&prefix))));
                }
                Ok(())
            }
            None => match self.head_bucket()? {
                Ok(()) => Ok(()),
                // HEAD answers carry no error document: for anything but 403/404, ask a
                // one-key listing for the S3 code (e.g. AuthorizationHeaderMalformed for a
                // wrong region_name).
                Err(f) if f.code.is_none() && !matches!(f.kind, ErrorKind::Denied | ErrorKind::NotFound) => {
                    let listed = self.list_objects(&ListRequest::probe(LIST, None))?;
                    Err(self.check_failure(listed.err().unwrap_or(f), true))
                }
                Err(f) => Err(self.check_failure(f, true)),
            },
        }
    }

    /// ListObjectsV2 with Label Studio's rules ([`stowage_sdk::object_store`]): a non-empty prefix
    /// is a folder (`prefix/`), only direct children unless `recursive`, keys ending in `/`
    /// (folder markers) skipped.
    fn list(&self, prefix: &str, cursor: Option<String>, page_size: u32, recursive: bool) -> Result<Page, Error> {
        let list = ListRequest::new(LIST, prefix, cursor, page_size, recursive);
        let listing = self.list_objects(&list)?.map_err(|f| f.into_error(&self.what(&list.prefix)))?;
        let entries = listing.contents.into_iter().map(|c| Entry {
            etag: c.etag.as_deref().map(stowage_sdk::http::unquote_etag),
            last_modified: c.last_modified.as_deref().and_then(stowage_sdk::time::rfc3339_millis),
            size: c.size,
            key: c.key,
        });
        let next_cursor = if listing.is_truncated { listing.next_continuation_token } else { None };
        Ok(store::page(entries, next_cursor))
    }

    fn stat(&self, key: &str) -> Result<Entry, Error> {
        let response = self.client.send("HEAD", Target::Object(key), &[], vec![], vec![])?;
        if !response.is_success() {
            return Err(failure(&response).into_error(&self.what(key)));
        }
        Ok(entry_from_headers(key, &response))
    }

    fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Object, Error> {
        let headers = range.iter().map(|r| ("range".to_string(), range_header(r))).collect();
        let response = self.client.send("GET", Target::Object(key), &[], headers, vec![])?;
        if response.status == 416
            && let Some(total) = response.header("content-range").and_then(content_range_total)
        {
            return Ok(store::past_the_end(&response, total));
        }
        if !response.is_success() {
            return Err(failure(&response).into_error(&self.what(key)));
        }
        let entry = entry_from_headers(key, &response);
        let content_type = response.header("content-type").map(str::to_string);
        let (body, total_size) = ranged_body(response, range.as_ref());
        // A 206 without the complete length in Content-Range: the size comes from a HEAD.
        let total_size = match total_size {
            Some(total) => total,
            None => self.stat(key)?.size,
        };
        Ok(Object { body, total_size, etag: entry.etag, content_type, last_modified: entry.last_modified })
    }

    fn put(&self, key: &str, body: Vec<u8>, content_type: Option<String>) -> Result<(), Error> {
        let mut headers = Vec::new();
        if let Some(ct) = content_type.filter(|c| !c.is_empty()) {
            headers.push(("content-type".to_string(), ct));
        }
        if let Some(kms) = &self.client.config.sse_kms_key_id {
            headers.push(("x-amz-server-side-encryption".to_string(), "aws:kms".to_string()));
            headers.push(("x-amz-server-side-encryption-aws-kms-key-id".to_string(), kms.clone()));
        }
        let response = self.client.send("PUT", Target::Object(key), &[], headers, body)?;
        if !response.is_success() {
            return Err(failure(&response).into_error(&self.what(key)));
        }
        Ok(())
    }

    /// DeleteObjects in batches of 1000 (quiet mode); keys XML cannot carry, and servers
    /// without DeleteObjects, get one DELETE per key. Missing keys are not an error.
    fn delete(&self, keys: Vec<String>) -> Result<(), Error> {
        let (batchable, single): (Vec<&str>, Vec<&str>) =
            keys.iter().map(String::as_str).partition(|k| xml::xml_safe(k));
        let mut single = single;
        let mut chunks = batchable.chunks(MAX_KEYS as usize);
        for chunk in chunks.by_ref() {
            if !self.delete_many(chunk)? {
                single.extend_from_slice(chunk);
                break;
            }
        }
        for chunk in chunks {
            single.extend_from_slice(chunk);
        }
        for key in single {
            self.delete_one(key)?;
        }
        Ok(())
    }

    /// A SigV4 presigned URL valid `ttl_seconds` (`X-Amz-Expires`; capped at AWS's 7 days).
    /// GET URLs carry `response-content-type` guessed from the key, like Label Studio's.
    fn presign(&self, method: Method, key: &str, ttl_seconds: u32) -> Result<String, Error> {
        let expires = Duration::from_secs(u64::from(ttl_seconds.clamp(1, MAX_PRESIGN_SECONDS)));
        match method {
            Method::Get => {
                let content_type = guess_content_type(key);
                self.client.presign("GET", key, &[("response-content-type", &content_type)], expires)
            }
            Method::Put => self.client.presign("PUT", key, &[], expires),
        }
    }

    fn blob_uri(&self, key: &str) -> String {
        blob_uri(SCHEME, self.bucket(), key)
    }

    /// `{prefix}/{annotation_id}`, or the bare id without a prefix (Label Studio's
    /// `ExportStorageLink.get_key`, joined in `S3ExportStorage.save_annotation`).
    fn export_key(&self, annotation_id: u64) -> String {
        store::export_key(self.client.config.prefix.as_deref(), annotation_id)
    }

    fn key_of_uri(&self, uri: &str) -> Option<String> {
        store::key_of_uri(SCHEME, self.bucket(), uri)
    }
}

#[cfg(target_arch = "wasm32")]
stowage_sdk::export_adapter!(S3);

#[cfg(test)]
mod tests {
    use super::*;

    fn open(settings: &[(&str, &str)], secrets: &[(&str, &str)]) -> S3 {
        let own = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        S3::open(Config { settings: own(settings), secrets: own(secrets) }).unwrap()
    }

    #[test]
    fn describe_matches_label_studio() {
        let info = S3::describe();
        assert_eq!((info.type_name.as_str(), info.title.as_str()), ("s3", "AWS S3"));
        let names: Vec<&str> = info.settings.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bucket",
                "prefix",
                "region_name",
                "s3_endpoint",
                "aws_access_key_id",
                "aws_secret_access_key",
                "aws_session_token",
                "aws_sse_kms_key_id"
            ]
        );
        let secret: Vec<&str> = info.settings.iter().filter(|s| s.secret).map(|s| s.name.as_str()).collect();
        assert_eq!(secret, ["aws_access_key_id", "aws_secret_access_key", "aws_session_token"]);
        assert!(info.settings.iter().all(|s| !s.help.is_empty()));
        assert_eq!(info.uri_schemes, ["s3"]);
        assert!(!info.regex_on_basename);
    }

    #[test]
    fn blob_uris_round_trip() {
        let s3 = open(&[("bucket", "b")], &[]);
        assert_eq!(s3.blob_uri("dir/a b+c.jpg"), "s3://b/dir/a b+c.jpg");
        assert_eq!(s3.key_of_uri("s3://b/dir/a b+c.jpg").as_deref(), Some("dir/a b+c.jpg"));
        assert_eq!(s3.key_of_uri("s3://other/k"), None);
        assert_eq!(s3.key_of_uri("s3://bb/k"), None);
        assert_eq!(s3.key_of_uri("gs://b/k"), None);
        assert_eq!(s3.key_of_uri("s3://b/"), None);
    }

    #[test]
    fn export_keys_go_under_the_prefix() {
        assert_eq!(open(&[("bucket", "b"), ("prefix", "ann/")], &[]).export_key(7), "ann/7");
        assert_eq!(open(&[("bucket", "b")], &[]).export_key(7), "7");
    }

    /// Presigned GETs carry the guessed content type, the exact TTL and the region's scope.
    #[test]
    fn presign_get_and_put() {
        let s3 = open(
            &[("bucket", "b"), ("s3_endpoint", "http://127.0.0.1:3900"), ("region_name", "eu-west-3")],
            &[("aws_access_key_id", "GK0123"), ("aws_secret_access_key", "s3cr3t")],
        );
        let get = s3.presign(Method::Get, "dir/a b.jpg", 90).unwrap();
        assert!(
            get.starts_with("http://127.0.0.1:3900/b/dir/a%20b.jpg?response-content-type=image%2Fjpeg&X-Amz-"),
            "{get}"
        );
        assert!(get.contains("X-Amz-Expires=90&"), "{get}");
        assert!(get.contains("%2Feu-west-3%2Fs3%2Faws4_request"), "{get}");
        assert!(!get.contains("s3cr3t"));
        let put = s3.presign(Method::Put, "x.json", 60).unwrap();
        assert!(put.starts_with("http://127.0.0.1:3900/b/x.json?X-Amz-"), "{put}");
        assert!(s3.presign(Method::Get, "k", 10_000_000).unwrap().contains("X-Amz-Expires=604800&"));
    }

    #[test]
    fn content_types() {
        assert_eq!(guess_content_type("a/b.png"), "image/png");
        assert_eq!(guess_content_type("a/b.json"), "application/json");
        assert_eq!(guess_content_type("a/noext"), "application/octet-stream");
    }

    /// Without wasi:http (native), a refused request names the host and nothing secret.
    #[test]
    fn refused_requests_name_the_host() {
        let s3 = open(
            &[("bucket", "b"), ("s3_endpoint", "http://10.0.0.1:9000")],
            &[("aws_access_key_id", "GK0123"), ("aws_secret_access_key", "s3cr3t")],
        );
        let Err(Error::Denied(m)) = s3.stat("k") else { panic!() };
        assert_eq!(m, "the stowage host refused the connection to 10.0.0.1:9000 (address policy)");
        let Err(Error::Denied(m)) = s3.check(Direction::Import) else { panic!() };
        assert!(m.contains("refused the connection"), "{m}");
    }
}
