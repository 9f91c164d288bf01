//! Loaded adapters, keyed by the storage type each declares (`localfiles`, `s3`, ...).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use wasmtime::Engine;
use wasmtime::component::Linker;

use super::Limits;
use super::bindings::{SUPPORTED, Version, since_v0_1_0, since_v0_2_0, since_v0_3_0};
use super::cache::HostCache;
use super::component::{Pre, describe};
use super::engine;
use super::sandbox::Sandbox;
use crate::domain::AdapterInfo;

/// One loaded adapter: its manifest and a pre-instantiated component.
pub struct Adapter {
    pub info: AdapterInfo,
    /// SHA-256 of the `.wasm` file, hex.
    pub hash: String,
    /// File name it was loaded from.
    pub file: String,
    /// The `stowage:storage` version it was built against.
    pub version: Version,
    pub(crate) pre: Pre,
    /// Failed calls so far, for quarantine ([`super::Limits::quarantine_after`]).
    pub health: Health,
}

/// (name, plain-text value) pairs, as the WIT `open` takes settings and secrets.
pub type Pairs = Vec<(String, String)>;

/// The arguments of the WIT `open`: settings and secrets split by the manifest, in manifest order;
/// `value(spec)` gives a setting's value, or `None` to leave it out.
pub fn split_settings(
    info: &AdapterInfo,
    mut value: impl FnMut(&crate::domain::SettingSpec) -> Option<String>,
) -> (Pairs, Pairs) {
    let (mut settings, mut secrets) = (Vec::new(), Vec::new());
    for spec in &info.settings {
        let Some(v) = value(spec) else { continue };
        if spec.secret { secrets.push((spec.name.clone(), v)) } else { settings.push((spec.name.clone(), v)) }
    }
    (settings, secrets)
}

/// Failed calls of one loaded adapter, for quarantine, counted per storage configuration. A
/// failed call is one the adapter broke: a crash or spinning past the deadline (not the memory
/// cap or an oversized answer). Typed storage errors and waits on a slow network are not the
/// adapter's fault and do not count.
///
/// Quarantine holds one configuration (a storage), never the adapter for everyone: a crash or a
/// deadline may come from a storage's data (a folder of symlink loops, a file that trips a bug),
/// and no user's data may stop other users' storages. A configuration with `after` failures
/// within [`QUARANTINE_WINDOW`] is refused until they age out of it, or until its settings
/// change (a new configuration) or a new adapter version is installed (a clean record).
#[derive(Debug, Default)]
pub struct Health {
    /// When the failures of the last [`QUARANTINE_WINDOW`] happened, by configuration
    /// (`Session`'s namespace: type, settings and secrets hashed).
    recent: Mutex<HashMap<[u8; 32], VecDeque<Instant>>>,
    total: AtomicU64,
}

/// The span over which failed calls are counted toward quarantine.
pub const QUARANTINE_WINDOW: Duration = Duration::from_secs(300);

impl Health {
    /// Counts a failed call of `config`; returns true when it is the one that quarantines that
    /// configuration: `after` failures within [`QUARANTINE_WINDOW`] (0 never quarantines).
    pub fn failed(&self, config: [u8; 32], after: u32) -> bool {
        self.total.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut recent, now);
        let times = recent.entry(config).or_default();
        times.push_back(now);
        after > 0 && times.len() == after as usize
    }

    /// Whether calls of `config` are refused.
    pub fn quarantined(&self, config: &[u8; 32], after: u32) -> bool {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut recent, Instant::now());
        after > 0 && recent.get(config).is_some_and(|t| t.len() >= after as usize)
    }

    /// Failed calls within the window, in total since the adapter was loaded, and how many
    /// configurations are quarantined now.
    pub fn failures(&self, after: u32) -> (usize, u64, usize) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut recent, Instant::now());
        let held = if after == 0 { 0 } else { recent.values().filter(|t| t.len() >= after as usize).count() };
        (recent.values().map(VecDeque::len).sum(), self.total.load(Ordering::Relaxed), held)
    }
}

/// Drops failures older than the window, and configurations left with none.
fn prune(recent: &mut HashMap<[u8; 32], VecDeque<Instant>>, now: Instant) {
    recent.retain(|_, times| {
        while times.front().is_some_and(|t| now.duration_since(*t) > QUARANTINE_WINDOW) {
            times.pop_front();
        }
        !times.is_empty()
    });
}

/// All adapters, by storage type name. Adapters can be added or replaced while the service runs
/// ([`Registry::install`]); a replaced adapter stays alive for the calls that hold it.
pub struct Registry {
    pub engine: Engine,
    pub limits: Limits,
    linker: Linker<Sandbox>,
    /// Values adapters (WIT 0.2.0 and later) keep per storage across instances.
    pub cache: Arc<HostCache>,
    /// Storage types that may be loaded (`--allowed-adapters`); empty allows all.
    allowed_types: Vec<String>,
    /// Held while an installed adapter's file is written and registered.
    installing: tokio::sync::Mutex<()>,
    dir: PathBuf,
    cache_dir: PathBuf,
    adapters: RwLock<BTreeMap<String, Arc<Adapter>>>,
}

impl Registry {
    /// Loads every `*.wasm` in `dir`, in file-name order, caching compiled code under `cache_dir`.
    /// A file that fails to load is logged and skipped; a second adapter for a type already
    /// loaded is refused.
    pub async fn load_dir(
        dir: &Path,
        cache_dir: &Path,
        limits: Limits,
        allowed_types: &[String],
    ) -> anyhow::Result<Registry> {
        let mut registry = Registry::new(dir, cache_dir, limits)?;
        registry.allowed_types = allowed_types.to_vec();
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the adapters directory {}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        files.sort();
        for path in files {
            let file = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let loaded = match std::fs::read(&path) {
                Ok(bytes) => registry.compile(&bytes, &file).await,
                Err(e) => Err(e.into()),
            };
            let mut adapters = registry.adapters.write().unwrap_or_else(|p| p.into_inner());
            match loaded {
                Ok(adapter) if adapters.contains_key(&adapter.info.type_name) => tracing::error!(
                    file,
                    "adapter refused: storage type {:?} is already provided by another adapter",
                    adapter.info.type_name
                ),
                Ok(adapter) => {
                    tracing::info!(file, r#type = adapter.info.type_name, hash = &adapter.hash[..12], "adapter loaded");
                    adapters.insert(adapter.info.type_name.clone(), Arc::new(adapter));
                }
                Err(e) => tracing::error!(file, "adapter refused: {e:#}"),
            }
        }
        if registry.adapters.read().unwrap_or_else(|p| p.into_inner()).is_empty() {
            tracing::warn!("no storage adapter loaded from {}: build them with adapters/build.sh", dir.display());
        }
        Ok(registry)
    }

    /// An empty registry whose [`Registry::install`] saves adapters to `dir`.
    pub fn new(dir: &Path, cache_dir: &Path, limits: Limits) -> anyhow::Result<Registry> {
        let engine = engine::build()?;
        let mut linker = Linker::<Sandbox>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        // Imports of newer WIT versions; a 0.1.0 component does not ask for them.
        since_v0_2_0::stowage::storage::host_cache::add_to_linker::<Sandbox, wasmtime::component::HasSelf<Sandbox>>(
            &mut linker,
            |s| s,
        )?;
        since_v0_3_0::stowage::storage::host_cache::add_to_linker::<Sandbox, wasmtime::component::HasSelf<Sandbox>>(
            &mut linker,
            |s| s,
        )?;
        Ok(Registry {
            engine,
            limits,
            linker,
            cache: Arc::default(),
            allowed_types: Vec::new(),
            installing: tokio::sync::Mutex::new(()),
            dir: dir.to_path_buf(),
            cache_dir: cache_dir.to_path_buf(),
            adapters: RwLock::new(BTreeMap::new()),
        })
    }

    /// Validates, compiles and describes a component without registering it (`stowage conformance`).
    ///
    /// # Errors
    /// Why the component was refused, as for [`Registry::install`].
    pub async fn load(&self, bytes: &[u8], file: &str) -> anyhow::Result<Arc<Adapter>> {
        self.compile(bytes, file).await.map(Arc::new)
    }

    /// Validates, compiles (or loads from the cache) and describes a component.
    async fn compile(&self, bytes: &[u8], file: &str) -> anyhow::Result<Adapter> {
        let started = Instant::now();
        // Compiling takes up to a second of CPU: off the async workers, so requests keep flowing.
        let (engine, owned, cache_dir) = (self.engine.clone(), bytes.to_vec(), self.cache_dir.clone());
        let loaded = tokio::task::spawn_blocking(move || engine::load(&engine, &owned, &cache_dir)).await??;
        tracing::info!(
            file,
            cached = loaded.cached,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "{}",
            if loaded.cached { "adapter code loaded from cache" } else { "adapter compiled" }
        );
        let (version, pre) = self.prepare(&loaded.component)?;
        let info = describe(&self.engine, &pre, &self.limits, &self.cache).await?;
        if info.type_name.is_empty()
            || !info.type_name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bail!("invalid storage type name {:?}", info.type_name);
        }
        if !self.allowed_types.is_empty() && !self.allowed_types.contains(&info.type_name) {
            bail!(
                "storage type {:?} is not among the adapters the operator allows (--allowed-adapters)",
                info.type_name
            );
        }
        Ok(Adapter { info, hash: loaded.hash, file: file.to_string(), version, pre, health: Health::default() })
    }

    /// Finds the WIT version `component` was built against and pre-instantiates it with that
    /// version's bindings.
    ///
    /// # Errors
    /// Names the unsupported version, or what the component exports when it is no adapter, or the
    /// import the host does not provide.
    fn prepare(&self, component: &wasmtime::component::Component) -> anyhow::Result<(Version, Pre)> {
        // The version is in the export's name (`stowage:storage/backend-api@0.1.0`): name an
        // unsupported one before anything else fails less clearly.
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(&self.engine).map(|(name, _)| name.to_string()).collect();
        let api = exports.iter().find_map(|e| e.strip_prefix("stowage:storage/backend-api@"));
        match api {
            Some(v) if !SUPPORTED.contains(&v) => bail!(
                "built for stowage:storage@{v}, which this host does not support (it loads {} and {})",
                SUPPORTED[..SUPPORTED.len() - 1].join(", "),
                SUPPORTED[SUPPORTED.len() - 1]
            ),
            None => bail!(
                "not a stowage:storage adapter: it exports {}, not stowage:storage/backend-api",
                if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
            ),
            Some(_) => {}
        }
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| anyhow::Error::from(e).context("the adapter imports something the host does not provide"))?;
        if let Ok(p) = since_v0_3_0::AdapterPre::new(pre.clone()) {
            return Ok((Version::V0_3_0, Pre::V0_3_0(p)));
        }
        if let Ok(p) = since_v0_2_0::AdapterPre::new(pre.clone()) {
            return Ok((Version::V0_2_0, Pre::V0_2_0(p)));
        }
        let p = since_v0_1_0::AdapterPre::new(pre)
            .map_err(|e| anyhow::Error::from(e).context("its exports do not match its WIT version"))?;
        Ok((Version::V0_1_0, Pre::V0_1_0(p)))
    }

    /// Adds an adapter while the service runs, or replaces the one of the same storage type: the
    /// component is validated and compiled first, so a bad file leaves the loaded adapter in place.
    /// The file is saved as `<type>.wasm` in the adapters directory, so a restart loads it too.
    ///
    /// # Errors
    /// The reason the component was refused (not a component, wrong WIT version, bad manifest), or
    /// an I/O error saving it.
    pub async fn install(&self, bytes: &[u8]) -> anyhow::Result<Arc<Adapter>> {
        let mut adapter = self.compile(bytes, "uploaded").await?;
        let type_name = adapter.info.type_name.clone();
        adapter.file = format!("{type_name}.wasm");
        // One install at a time: the file saved and the adapter registered stay the same one.
        let _installing = self.installing.lock().await;
        let tmp = self.dir.join(format!(".{type_name}.{}.wasm.tmp", uuid::Uuid::new_v4()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, self.dir.join(&adapter.file))?;
        Ok(self.register(adapter))
    }

    /// Loads a file dropped into the adapters directory (the watcher's path): like
    /// [`Registry::install`], but the file stays where it is. `None` when exactly this adapter is
    /// already loaded (e.g. the file an upload just saved).
    ///
    /// # Errors
    /// The file cannot be read, or the component was refused.
    pub async fn install_file(&self, path: &Path) -> anyhow::Result<Option<Arc<Adapter>>> {
        let bytes = std::fs::read(path)?;
        let hash = engine::content_hash(&bytes);
        if self.all().iter().any(|a| a.hash == hash) {
            return Ok(None);
        }
        let file = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let adapter = self.compile(&bytes, &file).await?;
        let _installing = self.installing.lock().await;
        // The file may have changed while compiling (a newer copy, or an upload): register only
        // what is still there; the watcher's next event brings the newer content.
        if std::fs::read(path).map(|now| engine::content_hash(&now) != hash).unwrap_or(true) {
            return Ok(None);
        }
        Ok(Some(self.register(adapter)))
    }

    /// Makes `adapter` serve its storage type, replacing the previous one (whose in-flight calls
    /// keep their `Arc`).
    fn register(&self, adapter: Adapter) -> Arc<Adapter> {
        let adapter = Arc::new(adapter);
        let type_name = adapter.info.type_name.clone();
        let previous =
            self.adapters.write().unwrap_or_else(|p| p.into_inner()).insert(type_name.clone(), adapter.clone());
        if let Some(old) = previous.filter(|old| old.file != adapter.file) {
            // The replaced adapter's own file would otherwise claim the type again at restart.
            let _ = std::fs::remove_file(self.dir.join(&old.file));
        }
        tracing::info!(r#type = type_name, file = adapter.file, hash = &adapter.hash[..12], "adapter installed");
        adapter
    }

    /// The adapters directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A session on `adapter` (one of this registry's) with this registry's engine, limits and
    /// host cache; `settings` and `secrets` as [`split_settings`] gives them.
    pub fn session(
        &self,
        adapter: Arc<Adapter>,
        grant: super::Grant,
        settings: Pairs,
        secrets: Pairs,
    ) -> super::Session {
        super::Session::new(adapter, self.engine.clone(), self.limits, self.cache.clone(), grant, settings, secrets)
    }

    /// The adapter serving storage type `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Adapter>> {
        self.adapters.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// All adapters, by type name.
    pub fn all(&self) -> Vec<Arc<Adapter>> {
        self.adapters.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Failures hold the configuration that had them, never the adapter's other ones.
    #[test]
    fn quarantine_holds_one_configuration() {
        let health = Health::default();
        let (bad, good) = ([1; 32], [2; 32]);
        assert!(!health.failed(bad, 3));
        assert!(!health.failed(bad, 3));
        assert!(!health.quarantined(&bad, 3));
        assert!(health.failed(bad, 3), "the third failure quarantines");
        assert!(!health.failed(bad, 3), "only once");
        assert!(health.quarantined(&bad, 3));
        assert!(!health.quarantined(&good, 3));
        assert!(!health.failed(good, 3));
        assert_eq!(health.failures(3), (5, 5, 1));
        assert!(!health.quarantined(&bad, 0), "0 never quarantines");
        assert_eq!(health.failures(0), (5, 5, 0));
    }
}
