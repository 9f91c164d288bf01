//! Watching the adapters directory: a `.wasm` file created, replaced or moved into it is loaded
//! without a restart, as if uploaded (`POST /api/adapters`). A file that fails to load is logged
//! and the loaded adapters stay as they were.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};

/// How long a file must stay unchanged (size and modification time) before it is loaded, so a
/// file still being copied is not read half-written. Writers should still prefer write-then-rename.
pub const SETTLE: Duration = Duration::from_millis(200);

/// Whether `path` names an adapter file: `*.wasm`, not hidden (uploads write `.<type>.wasm.tmp`
/// first, editors their own dotfiles).
fn is_adapter_file(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    !name.starts_with('.') && path.extension().is_some_and(|x| x == "wasm")
}

/// Size and modification time, to see a file settle.
fn fingerprint(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Watches `dir` and calls `load(path)` (on the tokio runtime this is called from) once a
/// changed adapter file has settled. Keep the returned watcher alive for as long as watching
/// should go on.
///
/// # Errors
/// The directory cannot be watched (missing, or the inotify limit reached).
pub fn watch<F, Fut>(dir: &Path, load: F) -> notify::Result<notify::RecommendedWatcher>
where
    F: Fn(PathBuf) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Handle::current();
    let load = Arc::new(load);
    // Paths waiting to settle: an event storm for one file (every write of a copy) starts one wait.
    let pending: Arc<Mutex<HashSet<PathBuf>>> = Arc::default();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_) | EventKind::Remove(_)) {
            return;
        }
        for path in event.paths.into_iter().filter(|p| is_adapter_file(p)) {
            if !pending.lock().unwrap_or_else(|p| p.into_inner()).insert(path.clone()) {
                continue;
            }
            let (pending, load) = (pending.clone(), load.clone());
            runtime.spawn(async move {
                let mut last = fingerprint(&path);
                loop {
                    tokio::time::sleep(SETTLE).await;
                    let now = fingerprint(&path);
                    if now == last {
                        break;
                    }
                    last = now;
                }
                // Out of `pending` before loading: an event during the load starts a new wait,
                // so the last write is never missed (a same-content reload is a no-op).
                pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&path);
                if last.is_some() {
                    load(path).await;
                }
            });
        }
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapter_files() {
        assert!(is_adapter_file(Path::new("/a/s3.wasm")));
        assert!(!is_adapter_file(Path::new("/a/.s3.wasm.tmp")));
        assert!(!is_adapter_file(Path::new("/a/.hidden.wasm")));
        assert!(!is_adapter_file(Path::new("/a/notes.txt")));
    }
}
