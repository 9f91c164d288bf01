//! The store of one adapter instance: WASI with only what the grant allows, HTTP egress checked
//! by [`super::egress`], the host cache (WIT 0.2.0 and later), the memory cap and the per-call deadline
//! (epoch interruption); and how a call that broke a limit is reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::Limits;
use super::bindings::{since_v0_2_0, since_v0_3_0};
use super::cache::HostCache;
use super::egress::Egress;
use super::grants::Grant;
use crate::error::{ErrorKind, StorageError};

/// Store data of one adapter instance: its WASI context (only what the grant allows), HTTP
/// egress policy, resource table, memory limiter and the running call's deadline.
pub struct Sandbox {
    wasi: WasiCtx,
    /// The per-storage cache (`host-cache`, WIT 0.2.0 and later) and this storage's namespace in it.
    cache: Arc<HostCache>,
    namespace: [u8; 32],
    http: WasiHttpCtx,
    egress: Egress,
    table: ResourceTable,
    limits: StoreLimits,
    pub(crate) deadline: Instant,
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for Sandbox {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.egress }
    }
}

/// Keys longer than this are ignored by the host cache.
const MAX_CACHE_KEY_BYTES: usize = 256;

impl since_v0_2_0::stowage::storage::host_cache::Host for Sandbox {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        self.cache.get(&self.namespace, &key)
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_seconds: u32) {
        if key.len() <= MAX_CACHE_KEY_BYTES {
            self.cache.set(&self.namespace, &key, value, Duration::from_secs(ttl_seconds.into()));
        }
    }
}

/// The same cache under 0.3.0's name for the import.
impl since_v0_3_0::stowage::storage::host_cache::Host for Sandbox {
    fn get(&mut self, key: String) -> Option<Vec<u8>> {
        since_v0_2_0::stowage::storage::host_cache::Host::get(self, key)
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_seconds: u32) {
        since_v0_2_0::stowage::storage::host_cache::Host::set(self, key, value, ttl_seconds)
    }
}

/// A store for one instance with `grant`'s permissions under `limits`; `cache` is the host cache
/// and the storage's namespace in it.
pub(crate) fn new_store(
    engine: &Engine,
    grant: &Grant,
    limits: &Limits,
    cache: (Arc<HostCache>, [u8; 32]),
) -> Result<Store<Sandbox>, StorageError> {
    let mut wasi = WasiCtxBuilder::new();
    // No environment, arguments, stdio, network or name lookup: only what the grant adds.
    wasi.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
    if let Some((host, port)) = &grant.tcp {
        wasi.allow_tcp(true).allow_ip_name_lookup(true).socket_addr_check(super::egress::tcp_check(
            host.clone(),
            *port,
            grant.allow_private_addresses,
        ));
    }
    // Local files are small and cheap to read: serving them on the calling thread avoids a
    // blocking-pool hop per filesystem call (wasm-notes §5: 150 µs -> 13 µs per get).
    wasi.allow_blocking_current_thread(true);
    if let Some((dir, writable)) = &grant.directory {
        let perms = if *writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
        wasi.preopened_dir(dir, "/storage", perms)
            .map_err(|_| StorageError::new(ErrorKind::NotFound, "open", "the storage directory cannot be opened"))?;
    }
    let data = Sandbox {
        wasi: wasi.build(),
        cache: cache.0,
        namespace: cache.1,
        http: WasiHttpCtx::new(),
        egress: Egress {
            rules: grant.http_hosts.clone(),
            allow_private_addresses: grant.allow_private_addresses,
            timeout: limits.call_timeout,
        },
        table: ResourceTable::new(),
        limits: StoreLimitsBuilder::new().memory_size(limits.memory_bytes).trap_on_grow_failure(true).build(),
        deadline: Instant::now(),
    };
    let mut store = Store::new(engine, data);
    store.limiter(|s| &mut s.limits);
    // Checked every epoch tick: yield to the executor so a spinning guest does not hold a worker
    // thread, and trap once the call's deadline has passed.
    store.epoch_deadline_callback(|ctx| {
        if Instant::now() >= ctx.data().deadline {
            Err(wasmtime::Error::msg(DEADLINE))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store.set_epoch_deadline(1);
    Ok(store)
}

const DEADLINE: &str = "stowage: call deadline exceeded";

/// Turns a wasmtime error (trap) of a call into a user-facing error. Traps are the adapter's
/// fault; the message says which limit was hit without guest internals.
pub(crate) fn trap(op: &'static str, e: wasmtime::Error, limits: &Limits) -> StorageError {
    trap_with_fault(op, e, limits).0
}

/// [`trap`], and whether the failure is the adapter's own fault (a crash, or spinning past the
/// deadline), which counts toward quarantine. Hitting the memory cap is not: it may be the data
/// (a large object read whole), and users must not be able to quarantine an adapter for everyone
/// by uploading big files.
pub(crate) fn trap_with_fault(op: &'static str, e: wasmtime::Error, limits: &Limits) -> (StorageError, bool) {
    let text = format!("{e:?}");
    let (message, fault) = if text.contains(DEADLINE) {
        (format!("the adapter did not answer within {} ms", limits.call_timeout.as_millis()), true)
    } else if text.contains("forcing trap when growing memory") {
        (format!("the adapter exceeded its memory limit of {} MiB", limits.memory_bytes >> 20), false)
    } else {
        tracing::warn!(op, "adapter trapped: {text}");
        ("the adapter crashed (wasm trap)".to_string(), true)
    };
    (StorageError::new(ErrorKind::AdapterFailed, op, message), fault)
}

/// The failure of a call that waited past its deadline outside the guest (on the network, or in
/// a host call): the instance is dropped, but a slow server is not the adapter's fault.
pub(crate) fn elapsed(op: &'static str, limits: &Limits) -> StorageError {
    trap(op, wasmtime::Error::msg(DEADLINE), limits)
}

/// The call failure for an answer larger than [`Limits::max_response_bytes`].
pub(crate) fn oversized(op: &'static str, bytes: usize, limits: &Limits) -> StorageError {
    StorageError::new(
        ErrorKind::AdapterFailed,
        op,
        format!(
            "the adapter answered {} MiB, more than the {} MiB limit",
            bytes.div_ceil(1 << 20),
            limits.max_response_bytes >> 20
        ),
    )
}
