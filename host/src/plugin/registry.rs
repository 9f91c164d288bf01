//! Loaded adapters, keyed by the storage type each declares (`localfiles`, `s3`, ...).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use wasmtime::Engine;
use wasmtime::component::Linker;

use super::bindings::since_v0_1_0 as v0_1_0;
use super::engine;
use super::instance::{Limits, Sandbox};
use crate::domain::AdapterInfo;

/// One loaded adapter: its manifest and a pre-instantiated component.
pub struct Adapter {
    pub info: AdapterInfo,
    /// SHA-256 of the `.wasm` file, hex.
    pub hash: String,
    /// File name it was loaded from.
    pub file: String,
    pub(crate) pre: v0_1_0::AdapterPre<Sandbox>,
}

/// All adapters, by storage type name.
pub struct Registry {
    pub engine: Engine,
    pub limits: Limits,
    adapters: BTreeMap<String, Arc<Adapter>>,
}

impl Registry {
    /// Loads every `*.wasm` in `dir`, in file-name order, caching compiled code under `cache_dir`.
    /// A file that fails to load is logged and skipped; a second adapter for a type already
    /// loaded is refused.
    pub async fn load_dir(dir: &Path, cache_dir: &Path, limits: Limits) -> anyhow::Result<Registry> {
        let engine = engine::build()?;
        let mut linker = Linker::<Sandbox>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        let mut registry = Registry { engine, limits, adapters: BTreeMap::new() };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the adapters directory {}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        files.sort();
        for path in files {
            let file = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            match registry.load_file(&linker, &path, cache_dir).await {
                Ok(adapter) => {
                    tracing::info!(file, r#type = adapter.info.type_name, hash = &adapter.hash[..12], "adapter loaded");
                    registry.adapters.insert(adapter.info.type_name.clone(), Arc::new(adapter));
                }
                Err(e) => tracing::error!(file, "adapter refused: {e:#}"),
            }
        }
        if registry.adapters.is_empty() {
            tracing::warn!("no storage adapter loaded from {}: build them with adapters/build.sh", dir.display());
        }
        Ok(registry)
    }

    async fn load_file(&self, linker: &Linker<Sandbox>, path: &Path, cache_dir: &Path) -> anyhow::Result<Adapter> {
        let bytes = std::fs::read(path)?;
        let started = Instant::now();
        let loaded = engine::load(&self.engine, &bytes, cache_dir)?;
        tracing::info!(
            file = %path.display(),
            cached = loaded.cached,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "{}",
            if loaded.cached { "adapter code loaded from cache" } else { "adapter compiled" }
        );
        let pre = linker
            .instantiate_pre(&loaded.component)
            .map_err(|e| anyhow::Error::from(e).context("the adapter imports something the host does not provide"))?;
        let pre = v0_1_0::AdapterPre::new(pre).map_err(|e| {
            anyhow::Error::from(e).context(format!(
                "not a stowage:storage@{} adapter (missing or mismatched exports)",
                v0_1_0::MAX_VERSION
            ))
        })?;
        let info = super::instance::describe(&self.engine, &pre, &self.limits).await?;
        if info.type_name.is_empty()
            || !info.type_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bail!("invalid storage type name {:?}", info.type_name);
        }
        if self.adapters.contains_key(&info.type_name) {
            bail!("storage type {:?} is already provided by another adapter", info.type_name);
        }
        let file = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        Ok(Adapter { info, hash: loaded.hash, file, pre })
    }

    /// The adapter serving storage type `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Adapter>> {
        self.adapters.get(name).cloned()
    }

    /// All adapters, by type name.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Adapter>> {
        self.adapters.values()
    }
}
