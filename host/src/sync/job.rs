//! One sync job of a storage and its Label Studio status:
//! `initialized -> queued -> in_progress -> completed | completed_with_errors | failed`
//! (`io_storages/base_models.py::StorageInfo`). Tasks created before a failure stay.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use crate::App;
use crate::domain::{Direction, Storage, now};
use crate::store::SyncProgress;

/// What a finished sync reports.
#[derive(Debug, Default)]
pub struct Report {
    /// Tasks created (import) or annotations written (export) by this run.
    pub count: i64,
    /// One line per object that could not be imported or written: `key: reason`.
    pub failures: Vec<String>,
    /// Extra `meta` fields (`tasks_existed`, `total_annotations`, ...).
    pub meta: serde_json::Map<String, Value>,
}

/// Why a sync stopped early; the message is shown in `traceback`.
#[derive(Debug)]
pub struct Failed(pub String);

/// Dropping this removes the storage from the running set, even if the job panics.
struct Running<'a>(&'a App, i64);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.syncing.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.1);
    }
}

fn merge(meta: &mut Value, extra: serde_json::Map<String, Value>) {
    if let Some(m) = meta.as_object_mut() {
        m.extend(extra);
    }
}

/// `str(datetime)` form Label Studio uses in `meta`: `2026-11-24 23:06:27.392361+00:00`.
fn meta_time() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
}

/// Runs a sync of `storage` to completion and records its status. If a sync of this storage is
/// already running, returns at once (Label Studio refuses to re-queue a running storage).
/// The job runs on its own task, so a client that disconnects does not cancel it.
pub async fn run_sync(app: Arc<App>, storage: Storage) -> Result<(), crate::store::StoreError> {
    if !app.syncing.lock().unwrap_or_else(|p| p.into_inner()).insert(storage.id) {
        return Ok(());
    }
    let handle = tokio::spawn(async move {
        let _running = Running(&app, storage.id);
        sync_once(&app, storage).await
    });
    handle.await.unwrap_or_else(|e| {
        tracing::error!("sync job panicked: {e}");
        Ok(())
    })
}

async fn sync_once(app: &App, storage: Storage) -> Result<(), crate::store::StoreError> {
    let attempts = storage.meta.get("attempts").and_then(Value::as_i64).unwrap_or(0) + 1;
    let mut progress = SyncProgress {
        status: "queued".into(),
        // Cleared at each run: Label Studio keeps a stale traceback after a later success, which
        // reads as a current error.
        traceback: None,
        meta: json!({"attempts": attempts, "time_queued": meta_time()}),
        last_sync: None,
        last_sync_count: None,
        last_sync_job: None,
    };
    app.store.save_sync_progress(storage.id, &progress)?;
    let started = Instant::now();
    progress.status = "in_progress".into();
    merge(
        &mut progress.meta,
        json!({"time_in_progress": meta_time(), "time_last_ping": meta_time()}).as_object().unwrap().clone(),
    );
    app.store.save_sync_progress(storage.id, &progress)?;
    let run_id = app.store.start_sync_run(storage.id)?;

    let outcome = match storage.direction {
        Direction::Import => super::import::run(app, &storage, run_id).await,
        Direction::Export => super::export::run(app, &storage).await,
    };
    let duration = started.elapsed().as_secs_f64();
    match outcome {
        Ok(report) => {
            progress.status = if report.failures.is_empty() { "completed" } else { "completed_with_errors" }.into();
            if !report.failures.is_empty() {
                progress.traceback = Some(report.failures.join("\n"));
            }
            progress.last_sync = Some(now());
            progress.last_sync_count = Some(report.count);
            merge(
                &mut progress.meta,
                json!({"time_completed": meta_time(), "duration": duration}).as_object().unwrap().clone(),
            );
            merge(&mut progress.meta, report.meta);
        }
        Err(Failed(message)) => {
            progress.status = "failed".into();
            progress.traceback = Some(message);
            merge(
                &mut progress.meta,
                json!({"time_failure": meta_time(), "duration": duration}).as_object().unwrap().clone(),
            );
        }
    }
    app.store.finish_sync_run(run_id, &progress.status)?;
    app.store.save_sync_progress(storage.id, &progress)?;
    tracing::info!(
        storage = storage.id,
        status = progress.status,
        count = progress.last_sync_count,
        duration,
        "sync finished"
    );
    Ok(())
}
