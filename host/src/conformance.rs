//! `stowage conformance ADAPTER.wasm`: runs the adapter conformance suite
//! (`stowage_sdk::conformance`) on one component through the host's own plugin runtime: the same
//! sandbox, grant resolution and settings as the service ([`Sessions::open_adapter`]: manifest
//! defaults fill missing settings), its default limits (deadline and memory from the flags), and
//! no quarantine; no ambient credentials, no `--allowed-hosts`. For adapter authors, in or out of this repository
//! (`sdk/README.md`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use stowage_sdk::conformance::{self, Driver, Failure, Listed};

use crate::config::ConformanceArgs;
use crate::domain::Direction;
use crate::error::{ErrorKind, StorageError};
use crate::plugin::{ConnectError, Limits, Policy, Registry, Session, Sessions};

/// Drives one adapter session for the suite.
///
/// The suite seeds its tree through [`Driver::put`]: through the adapter when it can write, or
/// else as files under `dir`, the folder the storage serves (a read-only adapter's seed).
/// Empty folders are made under `dir` when there is one, else as `path/` marker objects.
pub struct SessionDriver {
    pub session: Session,
    pub dir: Option<PathBuf>,
}

fn failure(e: StorageError) -> Failure {
    if e.kind == ErrorKind::NotFound { Failure::NotFound } else { Failure::Other(e.to_string()) }
}

fn io_failure(e: std::io::Error) -> Failure {
    Failure::Other(e.to_string())
}

impl Driver for SessionDriver {
    async fn put(&mut self, key: &str, body: &[u8]) -> Result<(), Failure> {
        match &self.dir {
            Some(dir) if !self.session.info().capabilities.write => {
                let path = dir.join(key);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io_failure)?;
                }
                std::fs::write(path, body).map_err(io_failure)
            }
            _ => self.session.put(key, body, None).await.map_err(failure),
        }
    }
    async fn empty_folder(&mut self, path: &str) -> Result<(), Failure> {
        match &self.dir {
            Some(dir) => std::fs::create_dir_all(dir.join(path)).map_err(io_failure),
            None => self.put(&format!("{path}/"), b"").await,
        }
    }
    async fn list(
        &mut self,
        prefix: &str,
        cursor: Option<String>,
        page_size: u32,
        recursive: bool,
    ) -> Result<(Vec<Listed>, Option<String>), Failure> {
        let page = self.session.list(prefix, cursor.as_deref(), page_size, recursive).await.map_err(failure)?;
        Ok((page.entries.into_iter().map(|e| Listed { key: e.key, size: e.size }).collect(), page.next_cursor))
    }
    async fn get(&mut self, key: &str, range: Option<(u64, Option<u64>)>) -> Result<Vec<u8>, Failure> {
        self.session.get(key, range).await.map(|o| o.body).map_err(failure)
    }
    async fn stat(&mut self, key: &str) -> Result<Listed, Failure> {
        self.session.stat(key).await.map(|e| Listed { key: e.key, size: e.size }).map_err(failure)
    }
}

/// Runs the suite as `args` say; `Ok(failures)` lists the failed checks (empty: all passed).
///
/// # Errors
/// The adapter cannot be loaded, a `--setting` is malformed or unknown to the manifest, the grant
/// is refused, or a read-only adapter has no `--seed-dir`.
pub async fn run(args: &ConformanceArgs) -> anyhow::Result<Vec<String>> {
    let bytes = std::fs::read(&args.adapter).with_context(|| format!("cannot read {}", args.adapter.display()))?;
    // Private (mode 0700, unpredictable name): compiled code is loaded from the cache unchecked.
    let scratch = tempfile::tempdir()?;
    let cache = args.cache_dir.clone().unwrap_or_else(|| scratch.path().join("cache"));
    let limits = Limits {
        call_timeout: Duration::from_millis(args.call_timeout_ms),
        memory_bytes: (args.adapter_memory_mib as usize) << 20,
        // Every failure is reported, none quarantines.
        quarantine_after: 0,
        ..Limits::DEFAULT
    };
    let registry = Registry::new(scratch.path(), &cache, limits)?;
    let file = args.adapter.file_name().unwrap_or_default().to_string_lossy();
    let adapter = registry.load(&bytes, &file).await.context("adapter refused")?;
    let info = &adapter.info;
    // A writable adapter is tested as an export storage (it must write); a read-only one as an
    // import storage seeded through --seed-dir.
    let direction = if info.capabilities.write { Direction::Export } else { Direction::Import };
    if !info.capabilities.write && args.seed_dir.is_none() {
        bail!("{} cannot write: give --seed-dir, the folder its storage serves, to seed the test tree", info.type_name);
    }
    let mut pairs = Vec::new();
    for raw in &args.setting {
        let (name, value) = raw.split_once('=').with_context(|| format!("--setting {raw:?}: expected NAME=VALUE"))?;
        if !info.settings.iter().any(|s| s.name == name) {
            let known: Vec<&str> = info.settings.iter().map(|s| s.name.as_str()).collect();
            bail!("--setting {name}: {} has no such setting (it has: {})", info.type_name, known.join(", "));
        }
        pairs.push((name.to_string(), value.to_string()));
    }
    let value = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let policy = Policy {
        document_root: args.document_root.clone(),
        allow_private_addresses: args.allow_private_addresses,
        ..Policy::default()
    };
    let session =
        Sessions::new(Arc::new(registry), policy).open_adapter(adapter, direction, value).map_err(|e| match e {
            ConnectError::Refused { field, message } => anyhow::anyhow!("--setting {field}: {message}"),
            other => anyhow::anyhow!("{other}"),
        })?;
    let mut driver = SessionDriver { session, dir: args.seed_dir.clone() };
    let result = conformance::run(&mut driver).await;
    Ok(result.err().unwrap_or_default())
}

/// Whether `dir` is empty or missing (the suite needs an empty storage root).
pub fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(true)
}
