#![doc = include_str!("../docs.md")]
//!
//! Modules: [`config`] (settings, connection strings), [`client`] (addressing, authorisation,
//! transport, presigned URLs), [`sign`] (SharedKey and service SAS), [`error`] (Azure codes → error
//! kinds), [`xml`] (List Blobs and error bodies).

pub mod client;
pub mod config;
pub mod error;
pub mod sign;
pub mod xml;

use std::time::Duration;

use stowage_sdk::http::Response;
use stowage_sdk::{
    AdapterInfo, Backend, ByteRange, Capabilities, Config, Direction, Entry, Error, GrantRequest, HttpGrant, Method,
    Object, Page, Setting, SettingKind,
};

use crate::client::Client;
use crate::config::AzureConfig;
use crate::error::{AzureFailure, Kind};
use crate::xml::{BlobItem, ListResult};

/// Storage type name, as in `/api/storages/azure/`.
pub const TYPE_NAME: &str = "azure";

/// URI scheme of blob-mode tasks: `azure-blob://{container}/{key}` (Label Studio's `url_scheme`).
pub const SCHEME: &str = "azure-blob";

/// List Blobs returns at most 5000 blobs per page.
const MAX_RESULTS: u32 = 5000;

/// An `azure` storage.
pub struct Azure {
    client: Client,
}

fn setting(name: &str, secret: bool, required: bool, env: Option<&str>, help: &str) -> Setting {
    Setting {
        name: name.into(),
        kind: SettingKind::Text,
        secret,
        required,
        default_value: None,
        export_default_value: None,
        env_fallback: env.map(str::to_string),
        help: help.into(),
    }
}

impl Azure {
    fn container(&self) -> &str {
        &self.client.config.container
    }

    fn failure(response: &Response) -> AzureFailure {
        let retry_after = response.header("retry-after").and_then(|v| v.trim().parse().ok());
        AzureFailure::new(response.status, response.header("x-ms-error-code"), &response.body, retry_after)
    }

    /// One List Blobs call (`include=metadata`, to see directory placeholders). `prefix` is sent as
    /// given; with `delimiter`, blobs in sub-folders come back as `BlobPrefix` entries (ignored).
    fn list_blobs(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        max_results: u32,
        delimiter: bool,
    ) -> Result<Result<ListResult, AzureFailure>, Error> {
        let max_results = max_results.clamp(1, MAX_RESULTS).to_string();
        let mut query: Vec<(&str, &str)> =
            vec![("restype", "container"), ("comp", "list"), ("include", "metadata"), ("maxresults", &max_results)];
        if !prefix.is_empty() {
            query.push(("prefix", prefix));
        }
        if delimiter {
            query.push(("delimiter", "/"));
        }
        if let Some(cursor) = cursor {
            query.push(("marker", cursor));
        }
        let response = self.client.send("GET", self.client.container_path(), &query, vec![], vec![])?;
        if !response.is_success() {
            return Ok(Err(Self::failure(&response)));
        }
        xml::parse_list(&response.body)
            .map(Ok)
            .map_err(|e| Error::Transient(format!("azure-blob://{}: {}", self.container(), e.0)))
    }

    /// Label Studio's messages for a failed connection check (`azure_blob/models.py::validate_connection`).
    fn check_failure(&self, failure: AzureFailure) -> Error {
        let container = self.container();
        match failure.kind {
            Kind::Denied => Error::Denied(format!(
                "Cannot connect to Azure container {container} with the specified credentials: {}",
                failure.describe()
            )),
            Kind::NotFound if failure.is_container_not_found() || failure.code.is_none() => {
                Error::NotFound(format!("Container not found: {container}"))
            }
            _ => failure.into_error(&format!("azure-blob://{container}")),
        }
    }
}

/// `total` from `Content-Range: bytes a-b/total` (or `bytes */total`).
fn content_range_total(value: &str) -> Option<u64> {
    value.rsplit_once('/').and_then(|(_, total)| total.trim().parse().ok())
}

fn entry_of(key: &str, response: &Response) -> Entry {
    Entry {
        key: key.to_string(),
        size: response.header("content-length").and_then(|v| v.trim().parse().ok()).unwrap_or(0),
        etag: response.header("etag").map(xml::unquote_etag),
        last_modified: response.header("last-modified").and_then(xml::http_date_millis),
    }
}

/// Whether a listed blob is an object to import: not a folder marker (a name ending in `/`, as S3
/// and Label Studio skip them) and not a directory placeholder (`hdi_isfolder=true` metadata, the
/// blobs hierarchical-namespace accounts and Azure Storage Explorer make for folders).
pub fn is_object(blob: &BlobItem) -> bool {
    !blob.name.ends_with('/') && !blob.is_folder
}

impl Backend for Azure {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            type_name: TYPE_NAME.into(),
            title: "Microsoft Azure".into(),
            capabilities: Capabilities::READ | Capabilities::WRITE | Capabilities::DELETE | Capabilities::PRESIGN,
            settings: vec![
                setting("container", false, true, None, "Container name"),
                setting(
                    "prefix",
                    false,
                    false,
                    None,
                    "Folder inside the container (optional); an import storage lists only blobs under it",
                ),
                setting(
                    "account_name",
                    true,
                    false,
                    Some("AZURE_BLOB_ACCOUNT_NAME"),
                    "Storage account name (write-only, as in Label Studio)",
                ),
                setting(
                    "account_key",
                    true,
                    false,
                    Some("AZURE_BLOB_ACCOUNT_KEY"),
                    "Storage account key (base64); empty to use a SAS token or anonymous access",
                ),
                setting(
                    "sas_token",
                    true,
                    false,
                    None,
                    "Shared access signature (with or without the leading ?) used instead of an account key; \
                     needs rl to import, cwl (and d to delete) to export; presigned URLs then carry this token",
                ),
                setting(
                    "connection_string",
                    true,
                    false,
                    None,
                    "Azure Storage connection string (AccountName, AccountKey or SharedAccessSignature, BlobEndpoint, \
                     EndpointSuffix); the settings above win over its parts. A BlobEndpoint outside \
                     *.blob.core.windows.net must also be given as azure_endpoint",
                ),
                setting(
                    "azure_endpoint",
                    false,
                    false,
                    None,
                    "Blob service endpoint, e.g. http://127.0.0.1:10000/devstoreaccount1 for Azurite (path-style) or \
                     https://acct.blob.core.chinacloudapi.cn; empty for https://{account_name}.blob.core.windows.net. \
                     The only host this storage may reach besides *.blob.core.windows.net",
                ),
            ],
            grants: vec![GrantRequest::Http(HttpGrant {
                endpoint_setting: "azure_endpoint".into(),
                default_hosts: vec!["*.blob.core.windows.net".into()],
            })],
            regex_on_basename: false,
            key_value: false,
            uri_schemes: vec![SCHEME.into()],
        }
    }

    fn open(config: Config) -> Result<Self, Error> {
        Ok(Azure { client: Client::new(AzureConfig::from_config(&config)?) })
    }

    /// Label Studio's `validate_connection`: the container must exist and be readable (one List
    /// Blobs call of one blob, under `prefix/` when a prefix is set); an import storage with a
    /// prefix must find a blob there.
    fn check(&self, direction: Direction) -> Result<(), Error> {
        let prefix = self.client.config.prefix.clone();
        let listed_prefix = prefix.as_ref().map(|p| format!("{p}/")).unwrap_or_default();
        let listing = self.list_blobs(&listed_prefix, None, 1, false)?.map_err(|f| self.check_failure(f))?;
        if let Some(prefix) = prefix
            && matches!(direction, Direction::Import)
            && listing.blobs.is_empty()
            && listing.next_marker.is_none()
        {
            return Err(Error::InvalidConfig(format!("{SCHEME}://{}/{prefix} not found.", self.container())));
        }
        Ok(())
    }

    /// List Blobs with Label Studio's rules: a non-empty prefix is a folder (`prefix/`), only
    /// direct children unless `recursive` (`delimiter=/`), folder markers and directory
    /// placeholders skipped ([`is_object`]). The cursor is Azure's `NextMarker`.
    fn list(&self, prefix: &str, cursor: Option<String>, page_size: u32, recursive: bool) -> Result<Page, Error> {
        let prefix = if prefix.is_empty() { String::new() } else { format!("{}/", prefix.trim_end_matches('/')) };
        let listing = self
            .list_blobs(&prefix, cursor.as_deref(), page_size, !recursive)?
            .map_err(|f| f.into_error(&self.client.what(&prefix)))?;
        let entries = listing
            .blobs
            .into_iter()
            .filter(is_object)
            .map(|b| Entry {
                etag: b.etag.as_deref().map(xml::unquote_etag),
                last_modified: b.last_modified.as_deref().and_then(xml::http_date_millis),
                size: b.size,
                key: b.name,
            })
            .collect();
        Ok(Page { entries, next_cursor: listing.next_marker })
    }

    /// Get Blob Properties (HEAD).
    fn stat(&self, key: &str) -> Result<Entry, Error> {
        let response = self.client.send("HEAD", self.client.blob_path(key), &[], vec![], vec![])?;
        if !response.is_success() {
            return Err(Self::failure(&response).into_error(&self.client.what(key)));
        }
        Ok(entry_of(key, &response))
    }

    /// Get Blob, with `x-ms-range: bytes=a-b` (or `bytes=a-`) for a range. A range starting past
    /// the end reads as empty, as a local file read would.
    fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Object, Error> {
        let mut headers = Vec::new();
        if let Some(r) = &range {
            let end = r.end.map(|e| e.to_string()).unwrap_or_default();
            headers.push(("x-ms-range".to_string(), format!("bytes={}-{end}", r.start)));
        }
        let response = self.client.send("GET", self.client.blob_path(key), &[], headers, vec![])?;
        if response.status == 416 {
            let entry = self.stat(key)?;
            return Ok(Object {
                body: Vec::new(),
                total_size: entry.size,
                etag: entry.etag,
                content_type: None,
                last_modified: entry.last_modified,
            });
        }
        if !response.is_success() {
            return Err(Self::failure(&response).into_error(&self.client.what(key)));
        }
        let entry = entry_of(key, &response);
        let total_size = response.header("content-range").and_then(content_range_total).unwrap_or(entry.size);
        let content_type = response.header("content-type").map(str::to_string);
        Ok(Object {
            body: response.body,
            total_size,
            etag: entry.etag,
            content_type,
            last_modified: entry.last_modified,
        })
    }

    /// Put Blob (`x-ms-blob-type: BlockBlob`, one request; Azure takes up to 5000 MiB that way).
    fn put(&self, key: &str, body: Vec<u8>, content_type: Option<String>) -> Result<(), Error> {
        let mut headers = vec![("x-ms-blob-type".to_string(), "BlockBlob".to_string())];
        if let Some(ct) = content_type.filter(|c| !c.is_empty()) {
            headers.push(("content-type".to_string(), ct));
        }
        let response = self.client.send("PUT", self.client.blob_path(key), &[], headers, body)?;
        if !response.is_success() {
            return Err(Self::failure(&response).into_error(&self.client.what(key)));
        }
        Ok(())
    }

    /// One Delete Blob per key; a missing blob is not an error.
    fn delete(&self, keys: Vec<String>) -> Result<(), Error> {
        for key in keys {
            let response = self.client.send("DELETE", self.client.blob_path(&key), &[], vec![], vec![])?;
            if !response.is_success() && response.status != 404 {
                return Err(Self::failure(&response).into_error(&self.client.what(&key)));
            }
        }
        Ok(())
    }

    /// A service SAS URL valid `ttl_seconds` (`se`), read-only for GET, create+write for PUT; see
    /// [`Client::presign`] for storages without an account key.
    fn presign(&self, method: Method, key: &str, ttl_seconds: u32) -> Result<String, Error> {
        self.client.presign(method, key, Duration::from_secs(u64::from(ttl_seconds)))
    }

    fn blob_uri(&self, key: &str) -> String {
        format!("{SCHEME}://{}/{key}", self.container())
    }

    /// `{prefix}/{annotation_id}`, or the bare id without a prefix (Label Studio's
    /// `AzureBlobExportStorage.save_annotation`).
    fn export_key(&self, annotation_id: u64) -> String {
        match &self.client.config.prefix {
            Some(prefix) => format!("{prefix}/{annotation_id}"),
            None => annotation_id.to_string(),
        }
    }

    fn key_of_uri(&self, uri: &str) -> Option<String> {
        let rest = uri.strip_prefix(SCHEME)?.strip_prefix("://")?;
        let (container, key) = rest.split_once('/')?;
        (container == self.container() && !key.is_empty()).then(|| key.to_string())
    }
}

#[cfg(target_arch = "wasm32")]
stowage_sdk::export_adapter!(Azure);

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "c2VjcmV0LWtleS0wMTIzNDU2Nzg5";

    fn open(settings: &[(&str, &str)], secrets: &[(&str, &str)]) -> Azure {
        let own = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Azure::open(Config { settings: own(settings), secrets: own(secrets) }).unwrap()
    }

    #[test]
    fn describe_matches_label_studio() {
        let info = Azure::describe();
        assert_eq!((info.type_name.as_str(), info.title.as_str()), ("azure", "Microsoft Azure"));
        let names: Vec<&str> = info.settings.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["container", "prefix", "account_name", "account_key", "sas_token", "connection_string", "azure_endpoint"]
        );
        let secret: Vec<&str> = info.settings.iter().filter(|s| s.secret).map(|s| s.name.as_str()).collect();
        assert_eq!(secret, ["account_name", "account_key", "sas_token", "connection_string"]);
        let env: Vec<(&str, &str)> =
            info.settings.iter().filter_map(|s| s.env_fallback.as_deref().map(|e| (s.name.as_str(), e))).collect();
        assert_eq!(env, [("account_name", "AZURE_BLOB_ACCOUNT_NAME"), ("account_key", "AZURE_BLOB_ACCOUNT_KEY")]);
        assert!(info.settings.iter().all(|s| !s.help.is_empty()));
        assert_eq!(info.uri_schemes, ["azure-blob"]);
        assert!(!info.regex_on_basename && !info.key_value);
    }

    #[test]
    fn blob_uris_round_trip() {
        let az = open(&[("container", "images")], &[("account_name", "acct"), ("account_key", KEY)]);
        assert_eq!(az.blob_uri("dir/a b+c.jpg"), "azure-blob://images/dir/a b+c.jpg");
        assert_eq!(az.key_of_uri("azure-blob://images/dir/a b+c.jpg").as_deref(), Some("dir/a b+c.jpg"));
        assert_eq!(az.key_of_uri("azure-blob://other/k"), None);
        assert_eq!(az.key_of_uri("azure-blob://imagesx/k"), None);
        assert_eq!(az.key_of_uri("s3://images/k"), None);
        assert_eq!(az.key_of_uri("azure-blob://images/"), None);
        assert_eq!(az.key_of_uri("azure-blobx://images/k"), None);
    }

    #[test]
    fn export_keys_go_under_the_prefix() {
        let secrets = [("account_name", "acct"), ("account_key", KEY)];
        assert_eq!(open(&[("container", "c01"), ("prefix", "ann/")], &secrets).export_key(7), "ann/7");
        assert_eq!(open(&[("container", "c01")], &secrets).export_key(7), "7");
    }

    /// Folder markers and directory placeholders are not objects.
    #[test]
    fn objects() {
        let blob = |name: &str, is_folder: bool| BlobItem { name: name.into(), is_folder, ..BlobItem::default() };
        assert!(is_object(&blob("a/b.jpg", false)));
        assert!(!is_object(&blob("a/dir/", false)));
        assert!(!is_object(&blob("a/dir", true)));
    }

    #[test]
    fn content_ranges() {
        assert_eq!(content_range_total("bytes 0-9/100"), Some(100));
        assert_eq!(content_range_total("bytes */42"), Some(42));
        assert_eq!(content_range_total("bytes 0-9/*"), None);
    }

    /// Without wasi:http (native), a refused request names the host and nothing secret.
    #[test]
    fn refused_requests_name_the_host() {
        let az = open(
            &[("container", "c01"), ("azure_endpoint", "http://10.0.0.1:10000/acct")],
            &[("account_name", "acct"), ("account_key", KEY)],
        );
        let Err(Error::Denied(m)) = az.stat("k") else { panic!() };
        assert_eq!(m, "the stowage host refused the connection to 10.0.0.1:10000 (address policy)");
        let Err(Error::Denied(m)) = az.check(Direction::Import) else { panic!() };
        assert!(m.contains("refused the connection") && !m.contains(KEY), "{m}");
    }
}
