//! Running adapter calls: one [`Session`] per storage use (a sync, a file read), holding a live
//! instance that serves many calls. Each call has a deadline; the instance has a memory cap.
//! A call that traps (panic, deadline, memory) fails with `AdapterFailed` and the dead instance is
//! replaced on the next call, so one bad object does not end a sync.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceAny;
use wasmtime::{Engine, Store};

use super::Limits;
use super::cache::HostCache;
use super::component::{Bindings, Pre, dispatch};
use super::grants::Grant;
use super::registry::Adapter;
use super::sandbox::{Sandbox, elapsed, new_store, oversized, trap_with_fault};
use crate::domain::{AdapterInfo, Direction, Entry, ObjectData, Page};
use crate::error::{ErrorKind, StorageError};

/// The setting that only narrows a storage to a folder of its bucket (Label Studio's `prefix`).
const PREFIX_SETTING: &str = "prefix";

/// SHA-256 of a storage type and its settings and secrets, `skip` left out. Length-prefixed, so
/// no two configurations hash the same bytes.
fn configuration_hash(
    type_name: &str,
    settings: &[(String, String)],
    secrets: &[(String, String)],
    skip: Option<&str>,
) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(type_name.as_bytes());
    for list in [settings, secrets] {
        let kept: Vec<_> = list.iter().filter(|(k, _)| Some(k.as_str()) != skip).collect();
        h.update((kept.len() as u64).to_le_bytes());
        for (k, v) in kept {
            for part in [k, v] {
                h.update((part.len() as u64).to_le_bytes());
                h.update(part.as_bytes());
            }
        }
    }
    h.finalize().into()
}

struct Live {
    store: Store<Sandbox>,
    bindings: Bindings,
    backend: ResourceAny,
}

/// An open connection to one storage through its adapter.
pub struct Session {
    adapter: Arc<Adapter>,
    engine: Engine,
    limits: Limits,
    cache: Arc<HostCache>,
    /// SHA-256 of the storage type and its whole configuration: its namespace in `cache`.
    namespace: [u8; 32],
    /// The same without the prefix: where objects come from ([`Session::origin`]).
    origin: [u8; 32],
    grant: Grant,
    settings: Vec<(String, String)>,
    secrets: Vec<(String, String)>,
    live: Option<Live>,
}

/// Runs one guest call on the live instance (instantiating it first if needed), with the deadline
/// set; a trap discards the instance. Evaluates to `Result<T, StorageError>`.
macro_rules! call {
    ($self:ident, $op:literal, |$m:ident, $api:ident, $store:ident, $backend:ident| $body:expr) => {{
        let limits = $self.limits;
        $self.live().await?;
        // Out of the session for the duration of the call: if the caller drops this future
        // mid-call (a client went away), the half-run instance is dropped with it instead of
        // going back to the pool.
        let mut live = $self.live.take().expect("instance just made live");
        live.store.data_mut().deadline = Instant::now() + limits.call_timeout;
        let result = {
            let $store = &mut live.store;
            let $backend = live.backend;
            dispatch!(Bindings, &live.bindings, |bindings, $m| {
                let $api = bindings.stowage_storage_backend_api().backend();
                // The epoch deadline stops a running guest; this one also covers a guest waiting
                // on the network (a server that accepts and never answers).
                match tokio::time::timeout(limits.call_timeout, $body).await {
                    Ok(Ok(Ok(v))) => Ok(Ok(Ok(v.into()))),
                    Ok(Ok(Err(e))) => Ok(Ok(Err($m::error($op, e)))),
                    Ok(Err(trapped)) => Ok(Err(trapped)),
                    Err(elapsed) => Err(elapsed),
                }
            })
        };
        match result {
            Ok(Ok(Ok(v))) => {
                $self.live = Some(live);
                Ok(v)
            }
            Ok(Ok(Err(e))) => {
                $self.live = Some(live);
                Err(e)
            }
            Ok(Err(e)) => Err($self.failed(trap_with_fault($op, e, &limits))),
            Err(_elapsed) => Err(elapsed($op, &limits)),
        }
    }};
}

impl Session {
    /// Prepares a session; the instance is created on the first call. `settings` and `secrets` are
    /// (name, plain-text value) pairs as the WIT `open` takes them.
    pub fn new(
        adapter: Arc<Adapter>,
        engine: Engine,
        limits: Limits,
        cache: Arc<HostCache>,
        grant: Grant,
        settings: Vec<(String, String)>,
        secrets: Vec<(String, String)>,
    ) -> Session {
        let namespace = configuration_hash(&adapter.info.type_name, &settings, &secrets, None);
        let origin = configuration_hash(&adapter.info.type_name, &settings, &secrets, Some(PREFIX_SETTING));
        Session { adapter, engine, limits, cache, namespace, origin, grant, settings, secrets, live: None }
    }

    /// SHA-256 of the storage's type and configuration but its prefix: two storages with equal
    /// origins reach the same objects under the same URIs (`blob-uri`), whatever folder each
    /// is narrowed to, while a URI alone does not say which server or account its object is on
    /// (`azure-blob://container/key`).
    pub fn origin(&self) -> [u8; 32] {
        self.origin
    }

    /// SHA-256 of the adapter this session runs.
    pub fn adapter_hash(&self) -> &str {
        &self.adapter.hash
    }

    /// The adapter's manifest.
    pub fn info(&self) -> &AdapterInfo {
        &self.adapter.info
    }

    /// Records a trapped call: the instance is dead, and when the trap is the adapter's fault its
    /// failure count grows toward quarantine. Returns the error.
    fn failed(&mut self, (error, fault): (StorageError, bool)) -> StorageError {
        self.live = None;
        if fault && self.adapter.health.failed(self.namespace, self.limits.quarantine_after) {
            tracing::error!(
                r#type = self.adapter.info.type_name,
                hash = &self.adapter.hash[..12],
                failures = self.limits.quarantine_after,
                "storage quarantined after repeated failed calls of its adapter; the last: {error}"
            );
        }
        error
    }

    /// Fails a call whose answer is bigger than the limit. Not counted toward quarantine: the
    /// size may be the data's (a large object), not the adapter's fault.
    fn bounded<T>(&self, op: &'static str, value: T, bytes: usize) -> Result<T, StorageError> {
        if bytes > self.limits.max_response_bytes {
            return Err(oversized(op, bytes, &self.limits));
        }
        Ok(value)
    }

    async fn live(&mut self) -> Result<&mut Live, StorageError> {
        if self.adapter.health.quarantined(&self.namespace, self.limits.quarantine_after) {
            return Err(StorageError::new(
                ErrorKind::AdapterFailed,
                "open",
                format!(
                    "this storage is quarantined: the {} adapter failed {} of its calls (crash or deadline) within {} minutes; it is retried when they age out, when its settings change or when a fixed adapter is installed",
                    self.adapter.info.type_name,
                    self.limits.quarantine_after,
                    super::registry::QUARANTINE_WINDOW.as_secs() / 60
                ),
            ));
        }
        if self.live.is_none() {
            let cache = (self.cache.clone(), self.namespace);
            let mut store = new_store(&self.engine, &self.grant, &self.limits, cache)?;
            store.data_mut().deadline = Instant::now() + self.limits.call_timeout;
            let limits = self.limits;
            let (settings, secrets) = (&self.settings, &self.secrets);
            let store_ref = &mut store;
            let opened = dispatch!(Pre, &self.adapter.pre, |pre, m, wrap| {
                tokio::time::timeout(limits.call_timeout, async move {
                    let bindings = pre.instantiate_async(&mut *store_ref).await.map_err(|e| (e, None))?;
                    let opened = bindings
                        .stowage_storage_backend_api()
                        .backend()
                        .call_open(store_ref, settings, secrets)
                        .await
                        .map_err(|e| (e, None))?;
                    let backend =
                        opened.map_err(|e| (wasmtime::Error::msg("open refused"), Some(m::error("open", e))))?;
                    Ok::<_, (wasmtime::Error, Option<StorageError>)>((wrap(bindings), backend))
                })
                .await
            });
            let (bindings, backend) = match opened {
                Ok(Ok(opened)) => opened,
                Ok(Err((_, Some(refused)))) => return Err(refused),
                Ok(Err((trapped, None))) => return Err(self.failed(trap_with_fault("open", trapped, &limits))),
                Err(_) => return Err(elapsed("open", &limits)),
            };
            self.live = Some(Live { store, bindings, backend });
        }
        Ok(self.live.as_mut().expect("instance just created"))
    }

    /// Validates the connection of an import or export storage.
    pub async fn check(&mut self, direction: Direction) -> Result<(), StorageError> {
        call!(self, "check", |m, api, store, backend| api.call_check(store, backend, direction.into()))
    }

    /// One page of keys under `prefix`.
    pub async fn list(
        &mut self,
        prefix: &str,
        cursor: Option<&str>,
        page_size: u32,
        recursive: bool,
    ) -> Result<Page, StorageError> {
        let cursor = cursor.map(str::to_owned);
        let page: Page = call!(self, "list", |m, api, store, backend| api.call_list(
            store,
            backend,
            prefix,
            cursor.as_deref(),
            page_size,
            recursive
        ))?;
        if page.entries.len() > page_size as usize {
            let message = format!("the adapter listed {} keys for a page of {page_size}", page.entries.len());
            return Err(self.failed((StorageError::new(ErrorKind::AdapterFailed, "list", message), true)));
        }
        let entries = page.entries.iter().map(|e| e.key.len() + e.etag.as_ref().map_or(0, String::len) + 32);
        let skipped = page.skipped.iter().map(|s| s.name.len() + s.reason.len() + 8);
        let bytes = entries.sum::<usize>() + skipped.sum::<usize>();
        self.bounded("list", page, bytes)
    }

    /// Metadata of one object; `NotFound` when missing.
    pub async fn stat(&mut self, key: &str) -> Result<Entry, StorageError> {
        call!(self, "stat", |m, api, store, backend| api.call_stat(store, backend, key))
    }

    /// Reads `key`, or the inclusive byte range `start..=end` of it.
    pub async fn get(&mut self, key: &str, range: Option<(u64, Option<u64>)>) -> Result<ObjectData, StorageError> {
        let object: ObjectData = call!(self, "get", |m, api, store, backend| {
            let range = range.map(|(start, end)| m::ByteRange { start, end });
            api.call_get(store, backend, key, range)
        })?;
        let bytes = object.body.len();
        self.bounded("get", object, bytes)
    }

    /// Writes (creates or replaces) an object.
    pub async fn put(&mut self, key: &str, body: &[u8], content_type: Option<&str>) -> Result<(), StorageError> {
        call!(self, "put", |m, api, store, backend| api.call_put(store, backend, key, body, content_type))
    }

    /// Deletes objects; missing ones are not an error.
    pub async fn delete(&mut self, keys: &[String]) -> Result<(), StorageError> {
        call!(self, "delete", |m, api, store, backend| api.call_delete(store, backend, keys))
    }

    /// A presigned GET URL valid for `ttl_seconds`.
    pub async fn presign_get(&mut self, key: &str, ttl_seconds: u32) -> Result<String, StorageError> {
        call!(self, "presign", |m, api, store, backend| api.call_presign(
            store,
            backend,
            m::Method::Get,
            key,
            ttl_seconds
        ))
    }

    /// The key an export storage writes annotation `annotation_id` to.
    pub async fn export_key(&mut self, annotation_id: i64) -> Result<String, StorageError> {
        call!(self, "export-key", |m, api, store, backend| async {
            api.call_export_key(store, backend, annotation_id as u64).await.map(Ok::<_, m::wit::Error>)
        })
    }

    /// The key of `uri` if this storage serves it.
    pub async fn key_of_uri(&mut self, uri: &str) -> Result<Option<String>, StorageError> {
        call!(self, "key-of-uri", |m, api, store, backend| async {
            api.call_key_of_uri(store, backend, uri).await.map(Ok::<_, m::wit::Error>)
        })
    }

    /// The URI a blob-mode task stores for `key`.
    pub async fn blob_uri(&mut self, key: &str) -> Result<String, StorageError> {
        // `blob-uri` cannot fail in WIT; wrap its value so the shared call path applies.
        call!(self, "blob-uri", |m, api, store, backend| async {
            api.call_blob_uri(store, backend, key).await.map(Ok::<_, m::wit::Error>)
        })
    }
}
