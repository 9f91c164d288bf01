//! stowage: a Label-Studio-compatible storage sync service whose storage backends are sandboxed
//! WebAssembly components. See `DESIGN.md` for the data flow; the modules:
//!
//! - [`api`]: the REST API (axum), one file per resource;
//! - [`sync`]: import and export jobs and their Label Studio status;
//! - [`tasks`]: task-file parsing and task-data presentation;
//! - [`plugin`]: the wasmtime runtime, adapter registry, grants and limits;
//! - [`store`]: SQLite, the only place with SQL;
//! - [`conformance`]: `stowage conformance`, the adapter conformance suite on one component;
//! - [`web`]: the web page (server-rendered HTML on the same store and registry as the API);
//! - [`client`]: `stowage sync`, a client of a running service (no part of the service).

pub mod api;
pub mod client;
pub mod config;
pub mod conformance;
pub mod domain;
pub mod error;
pub mod plugin;
pub mod store;
pub mod sync;
pub mod tasks;
pub mod web;

use std::sync::Arc;

/// Everything a request or a job needs. Shared as `Arc<App>`.
pub struct App {
    pub settings: config::Settings,
    pub store: store::Store,
    pub registry: Arc<plugin::Registry>,
    /// Wakes the sync workers when a run is queued (the runs themselves are in the database).
    pub syncs: Arc<sync::Queue>,
    /// Opens adapter sessions on storages under the settings' policy; pools idle ones.
    pub sessions: Arc<plugin::Sessions>,
    /// One permit per proxied object read streaming at once (`--max-proxy-streams`).
    pub proxy_streams: Arc<tokio::sync::Semaphore>,
    /// Loads adapter files dropped into the adapters directory (`--watch-adapters`).
    _watcher: Option<notify::RecommendedWatcher>,
}

impl App {
    /// Opens the database, loads the adapters and starts the sync workers (`stowage serve`
    /// start-up minus binding). Sync runs a previous process left unfinished are queued again and
    /// continue from their cursor. Must run inside a tokio runtime.
    pub async fn start(settings: config::Settings) -> anyhow::Result<Arc<App>> {
        std::fs::create_dir_all(&settings.data_dir)?;
        let store = store::Store::open(&settings.data_dir.join("stowage.sqlite3"))?;
        let interrupted = store.requeue_interrupted_runs()?;
        if interrupted > 0 {
            tracing::info!(interrupted, "sync runs interrupted by the previous shutdown resume");
        }
        let limits = settings.limits();
        let cache_dir = settings.cache_dir.clone().unwrap_or_else(|| settings.data_dir.join("adapter-cache"));
        let registry = Arc::new(
            plugin::Registry::load_dir(&settings.adapters_dir, &cache_dir, limits, &settings.allowed_adapters).await?,
        );
        let sessions = Arc::new(plugin::Sessions::new(registry.clone(), settings.policy()));
        let watcher = if settings.watch_adapters { Some(watch_adapters(&registry)?) } else { None };
        let workers = settings.sync_workers;
        let proxy_streams = Arc::new(tokio::sync::Semaphore::new(settings.max_proxy_streams.max(1)));
        let app = Arc::new(App {
            settings,
            store,
            registry,
            syncs: Arc::new(sync::Queue::default()),
            sessions,
            proxy_streams,
            _watcher: watcher,
        });
        sync::spawn_workers(&app, workers);
        Ok(app)
    }
}

/// Installs adapter files as they appear in the adapters directory (idle sessions of a replaced
/// adapter are never reused: see [`plugin::Sessions`]).
fn watch_adapters(registry: &Arc<plugin::Registry>) -> anyhow::Result<notify::RecommendedWatcher> {
    let registry = registry.clone();
    let dir = registry.dir().to_path_buf();
    let watcher = plugin::watch::watch(&dir, move |path| {
        let registry = registry.clone();
        async move {
            if let Err(e) = registry.install_file(&path).await {
                tracing::error!(file = %path.display(), "adapter refused: {e:#}");
            }
        }
    })
    .map_err(|e| anyhow::anyhow!("cannot watch the adapters directory {}: {e}", dir.display()))?;
    Ok(watcher)
}
