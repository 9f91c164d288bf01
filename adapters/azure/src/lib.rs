#![doc = include_str!("../docs.md")]
//!
//! Modules: [`config`] (settings, connection strings), [`client`] (addressing, authorisation,
//! transport, presigned URLs), [`sign`] (SharedKey and service SAS), [`error`] (Azure codes → error
//! kinds), [`xml`] (List Blobs and error bodies). Label Studio's prefix and listing rules,
//! endpoints and dates are the SDK's (`stowage_sdk::object_store`, `http`, `time`).

pub mod client;
pub mod config;
pub mod error;
pub mod sign;
pub mod xml;

use std::time::Duration;

use stowage_sdk::http::{Response, range_header, unquote_etag};
use stowage_sdk::object_store::{self as store, ListApi, ListRequest, blob_uri, bucket_uri, entry_from_headers};
use stowage_sdk::time::http_date_millis;
use stowage_sdk::{
    AdapterInfo, Backend, ByteRange, Capabilities, Config, Direction, Entry, Error, ErrorKind, GrantRequest, HttpGrant,
    Method, Object, Page, Setting,
};

use crate::client::Client;
use crate::config::AzureConfig;
use crate::error::AzureFailure;
use crate::xml::ListResult;

/// Storage type name, as in `/api/storages/azure/`.
pub const TYPE_NAME: &str = "azure";

/// URI scheme of blob-mode tasks: `azure-blob://{container}/{key}` (Label Studio's `url_scheme`).
pub const SCHEME: &str = "azure-blob";

/// List Blobs (<https://learn.microsoft.com/en-us/rest/api/storageservices/list-blobs>), with
/// `include=metadata` to see directory placeholders: at most 5000 blobs per page; the cursor is
/// `NextMarker`, sent back as `marker`.
const LIST: ListApi = ListApi {
    fixed: &[("restype", "container"), ("comp", "list"), ("include", "metadata")],
    page_size: "maxresults",
    max_page_size: 5000,
    cursor: "marker",
};

/// An `azure` storage.
pub struct Azure {
    client: Client,
}

impl Azure {
    fn container(&self) -> &str {
        &self.client.config.container
    }

    fn failure(response: &Response) -> AzureFailure {
        AzureFailure::new(response.status, response.header("x-ms-error-code"), &response.body, response.retry_after())
    }

    /// One List Blobs call. With a delimiter, blobs in sub-folders come back as `BlobPrefix`
    /// entries (ignored).
    fn list_blobs(&self, list: &ListRequest) -> Result<Result<ListResult, AzureFailure>, Error> {
        let response = self.client.send("GET", self.client.container_path(), &list.query(), vec![], vec![])?;
        if !response.is_success() {
            return Ok(Err(Self::failure(&response)));
        }
        xml::parse_list(&response.body)
            .map(Ok)
            .map_err(|e| Error::Transient(format!("{}: {}", bucket_uri(SCHEME, self.container()), e.0)))
    }

    /// Label Studio's messages for a failed connection check (`azure_blob/models.py::validate_connection`).
    fn check_failure(&self, failure: AzureFailure) -> Error {
        let container = self.container();
        match failure.kind {
            ErrorKind::Denied => Error::Denied(format!(
                "Cannot connect to Azure container {container} with the specified credentials: {}",
                failure.describe()
            )),
            ErrorKind::NotFound if failure.is_container_not_found() || failure.code.is_none() => {
                Error::NotFound(format!("Container not found: {container}"))
            }
            _ => failure.into_error(&bucket_uri(SCHEME, container)),
        }
    }
}

/// The page of a List Blobs result: directory placeholders (`hdi_isfolder=true` metadata, the
/// blobs hierarchical-namespace accounts and Azure Storage Explorer make for folders) dropped
/// here, folder markers (names ending in `/`) by Label Studio's rule ([`store::page`]).
pub fn page_of(listing: ListResult) -> Page {
    let entries = listing.blobs.into_iter().filter(|b| !b.is_folder).map(|b| Entry {
        etag: b.etag.as_deref().map(unquote_etag),
        last_modified: b.last_modified.as_deref().and_then(http_date_millis),
        size: b.size,
        key: b.name,
    });
    store::page(entries, listing.next_marker)
}

/// The object of a successful Get Blob answer sent with `range` (if any), by the SDK's
/// [`store::ranged_body`]: a 206 is the range, a 200 (a server that ignored `x-ms-range`) is the
/// whole blob, cut to the range here. The total size comes from `Content-Range` or the whole body;
/// when a 206 gives none, from `size_of` (Get Blob Properties), never from the range's length.
pub fn object_of(
    key: &str,
    response: Response,
    range: Option<&ByteRange>,
    size_of: impl FnOnce() -> Result<u64, Error>,
) -> Result<Object, Error> {
    let entry = entry_from_headers(key, &response);
    let content_type = response.header("content-type").map(str::to_string);
    let (body, total_size) = store::ranged_body(response, range);
    let total_size = match total_size {
        Some(total) => total,
        None => size_of()?,
    };
    Ok(Object { body, total_size, etag: entry.etag, content_type, last_modified: entry.last_modified })
}

impl Backend for Azure {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            type_name: TYPE_NAME.into(),
            title: "Microsoft Azure".into(),
            capabilities: Capabilities::READ | Capabilities::WRITE | Capabilities::DELETE | Capabilities::PRESIGN,
            settings: vec![
                Setting::text("container", "Container name").required(),
                Setting::text(
                    "prefix",
                    "Folder inside the container (optional); an import storage lists only blobs under it",
                ),
                Setting::text("account_name", "Storage account name (write-only, as in Label Studio)")
                    .secret()
                    .env_fallback("AZURE_BLOB_ACCOUNT_NAME"),
                Setting::text(
                    "account_key",
                    "Storage account key (base64); empty to use a SAS token or anonymous access",
                )
                .secret()
                .env_fallback("AZURE_BLOB_ACCOUNT_KEY"),
                Setting::text(
                    "sas_token",
                    "Shared access signature (with or without the leading ?) used instead of an account key; \
                     needs rl to import, cwl (and d to delete) to export; objects are then served through stowage, \
                     never by presigned URLs (they would carry this token)",
                )
                .secret(),
                Setting::text(
                    "connection_string",
                    "Azure Storage connection string (AccountName, AccountKey or SharedAccessSignature, BlobEndpoint, \
                     EndpointSuffix); the settings above win over its parts. A BlobEndpoint outside \
                     *.blob.core.windows.net must also be given as azure_endpoint",
                )
                .secret(),
                Setting::text(
                    "azure_endpoint",
                    "Blob service endpoint, e.g. http://127.0.0.1:10000/devstoreaccount1 for Azurite (path-style) or \
                     https://acct.blob.core.chinacloudapi.cn; empty for https://{account_name}.blob.core.windows.net. \
                     When set, the only host and port this storage may reach (*.blob.core.windows.net is then \
                     not reachable); when empty, only *.blob.core.windows.net",
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
        let probe = ListRequest::probe(LIST, prefix.as_deref());
        let listing = self.list_blobs(&probe)?.map_err(|f| self.check_failure(f))?;
        if let Some(prefix) = prefix
            && matches!(direction, Direction::Import)
            && listing.blobs.is_empty()
            && listing.next_marker.is_none()
        {
            return Err(Error::InvalidConfig(format!("{} not found.", self.client.what(&prefix))));
        }
        Ok(())
    }

    /// List Blobs with Label Studio's rules ([`stowage_sdk::object_store`]): a non-empty prefix is
    /// a folder (`prefix/`), only direct children unless `recursive` (`delimiter=/`), folder
    /// markers and directory placeholders skipped ([`page_of`]). The cursor is Azure's `NextMarker`.
    fn list(&self, prefix: &str, cursor: Option<String>, page_size: u32, recursive: bool) -> Result<Page, Error> {
        let list = ListRequest::new(LIST, prefix, cursor, page_size, recursive);
        let listing = self.list_blobs(&list)?.map_err(|f| f.into_error(&self.client.what(&list.prefix)))?;
        Ok(page_of(listing))
    }

    /// Get Blob Properties (HEAD).
    fn stat(&self, key: &str) -> Result<Entry, Error> {
        let response = self.client.send("HEAD", self.client.blob_path(key), &[], vec![], vec![])?;
        if !response.is_success() {
            return Err(Self::failure(&response).into_error(&self.client.what(key)));
        }
        Ok(entry_from_headers(key, &response))
    }

    /// Get Blob, with `x-ms-range: bytes=a-b` (or `bytes=a-`) for a range ([`object_of`]: a server
    /// that ignores the header gets its whole answer cut to the range). A range starting past the
    /// end reads as empty, as a local file read would.
    fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Object, Error> {
        let headers = range.iter().map(|r| ("x-ms-range".to_string(), range_header(r))).collect();
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
        object_of(key, response, range.as_ref(), || self.stat(key).map(|entry| entry.size))
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
    /// [`Client::presign`] for storages without an account key (`unsupported` with only a SAS
    /// token, the plain blob URL when anonymous).
    fn presign(&self, method: Method, key: &str, ttl_seconds: u32) -> Result<String, Error> {
        self.client.presign(method, key, Duration::from_secs(u64::from(ttl_seconds)))
    }

    fn blob_uri(&self, key: &str) -> String {
        blob_uri(SCHEME, self.container(), key)
    }

    /// `{prefix}/{annotation_id}`, or the bare id without a prefix (Label Studio's
    /// `AzureBlobExportStorage.save_annotation`).
    fn export_key(&self, annotation_id: u64) -> String {
        store::export_key(self.client.config.prefix.as_deref(), annotation_id)
    }

    fn key_of_uri(&self, uri: &str) -> Option<String> {
        store::key_of_uri(SCHEME, self.container(), uri)
    }
}

#[cfg(target_arch = "wasm32")]
stowage_sdk::export_adapter!(Azure);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::BlobItem;

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
        let listing = ListResult {
            blobs: vec![blob("a/b.jpg", false), blob("a/dir/", false), blob("a/dir", true)],
            next_marker: Some("m".into()),
        };
        let page = page_of(listing);
        assert_eq!(page.entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["a/b.jpg"]);
        assert_eq!(page.next_cursor.as_deref(), Some("m"));
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Response { status, headers, body: body.to_vec() }
    }

    /// A 200 answer to a ranged Get Blob (the range ignored) is cut to the range; a 206 answer's
    /// total comes from `Content-Range`, or from Get Blob Properties when it has none, never from
    /// the range's `Content-Length`.
    #[test]
    fn ranged_gets() {
        let range = ByteRange { start: 2, end: Some(4) };
        let no_stat = || -> Result<u64, Error> { panic!("no stat needed") };
        let whole =
            answer(200, &[("content-length", "10"), ("etag", "\"e\""), ("content-type", "text/plain")], b"0123456789");
        let o = object_of("k", whole, Some(&range), no_stat).unwrap();
        assert_eq!((o.body.as_slice(), o.total_size), (b"234".as_slice(), 10));
        assert_eq!((o.etag.as_deref(), o.content_type.as_deref()), (Some("e"), Some("text/plain")));
        let partial = answer(206, &[("content-length", "3"), ("content-range", "bytes 2-4/10")], b"234");
        let o = object_of("k", partial, Some(&range), no_stat).unwrap();
        assert_eq!((o.body.as_slice(), o.total_size), (b"234".as_slice(), 10));
        let bare = answer(206, &[("content-length", "3")], b"234");
        let o = object_of("k", bare, Some(&range), || Ok(10)).unwrap();
        assert_eq!((o.body.as_slice(), o.total_size), (b"234".as_slice(), 10));
        let bare = answer(206, &[("content-length", "3")], b"234");
        let e = object_of("k", bare, Some(&range), || Err(Error::NotFound("gone".into())));
        assert!(matches!(e, Err(Error::NotFound(m)) if m == "gone"));
        let o = object_of("k", answer(200, &[], b"0123"), None, no_stat).unwrap();
        assert_eq!((o.body.as_slice(), o.total_size), (b"0123".as_slice(), 4));
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
