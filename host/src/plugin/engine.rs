//! The wasmtime engine and the compiled-component cache.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// How often the epoch advances; per-call deadlines are checked at this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// An engine with epoch interruption, and a thread advancing its epoch every [`EPOCH_TICK`].
pub fn build() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let engine = Engine::new(&config)?;
    let ticker = engine.weak();
    std::thread::Builder::new().name("stowage-epoch".into()).spawn(move || {
        while let Some(engine) = ticker.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(EPOCH_TICK);
        }
    })?;
    Ok(engine)
}

/// A loaded component and where it came from.
pub struct Loaded {
    pub component: Component,
    /// SHA-256 of the `.wasm` bytes, hex.
    pub hash: String,
    /// True when the native code came from the cache (no compilation).
    pub cached: bool,
}

/// SHA-256 of a component's bytes, hex: its identity in the cache and in `GET /api/adapters`.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compiles `bytes`, or loads its native code from `cache_dir`, keyed by the content hash and
/// the engine's compatibility hash (so a wasmtime upgrade or a config change recompiles).
pub fn load(engine: &Engine, bytes: &[u8], cache_dir: &Path) -> anyhow::Result<Loaded> {
    let hash = content_hash(bytes);
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let path = cache_dir.join(format!("{hash}-{:016x}.cwasm", h.finish()));
    if path.exists() {
        // SAFETY: the file was written by `precompile_component` of an engine with the same
        // compatibility hash, in a directory only this service writes.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok(Loaded { component, hash, cached: true });
        }
    }
    let native = engine
        .precompile_component(bytes)
        .map_err(|e| anyhow::Error::from(e).context("not a valid WebAssembly component"))?;
    std::fs::create_dir_all(cache_dir)?;
    // A unique temporary name: several services (or tests) may share one cache directory.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("{}-{seq}.tmp", std::process::id()));
    std::fs::write(&tmp, &native)?;
    std::fs::rename(&tmp, &path)?;
    // SAFETY: produced just now by this engine.
    let component = unsafe { Component::deserialize(engine, &native)? };
    Ok(Loaded { component, hash, cached: false })
}
