//! Background sync runs: requests queue a run in the database, a bounded pool of workers runs
//! them, and each run's status follows Label Studio's worker mode
//! (`io_storages/base_models.py::StorageInfo`):
//! `initialized -> queued -> in_progress -> completed | completed_with_errors | failed`.
//!
//! The guard "one run per storage" is the database's (a partial unique index on unfinished runs,
//! see `store/sync_runs.rs`), not this process's memory, so it holds for every process sharing the
//! database. Runs left `in_progress` by a killed process are queued again at start and continue
//! from their cursor.

use std::sync::{Arc, Weak};
use std::time::Instant;

use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use super::SyncError;
use super::report::{Tracker, meta_time};
use crate::App;
use crate::domain::{Direction, Storage, SyncState, SyncStatus, now};
use crate::store::{Run, StoreError};

/// Default of `--sync-workers`: runs executed at once by one service.
pub const DEFAULT_WORKERS: usize = 2;

/// Wakes idle workers when a run is queued.
#[derive(Default)]
pub struct Queue {
    wake: Notify,
}

/// Queues a sync of `storage` and returns at once; the storage is then `queued` (or already
/// `in_progress`, when a run was under way: that run is the answer, nothing new is queued).
///
/// # Errors
/// Only database failures.
pub fn request(app: &App, storage: &Storage) -> Result<(), StoreError> {
    let attempts = storage.sync.meta.get("attempts").and_then(Value::as_i64).unwrap_or(0) + 1;
    // A new run starts a new `meta` and clears `traceback`: Label Studio keeps a stale traceback
    // after a later success, which reads as a current error.
    let meta = json!({"attempts": attempts, "time_queued": meta_time()});
    let (_, queued) = app.store.claim_run(storage.id, &storage.fields, &meta)?;
    if queued {
        app.syncs.wake.notify_one();
    }
    Ok(())
}

/// Starts `workers` workers on the current runtime. Each holds the service weakly, so dropping
/// the service ends its runs' supply; an idle worker then waits forever on an empty queue.
pub fn spawn_workers(app: &Arc<App>, workers: usize) {
    for _ in 0..workers.max(1) {
        tokio::spawn(worker(Arc::downgrade(app), app.syncs.clone()));
    }
}

async fn worker(app: Weak<App>, queue: Arc<Queue>) {
    loop {
        let next = {
            let Some(app) = app.upgrade() else { return };
            let next = app.store.take_queued_run();
            next.map(|run| run.map(|run| (app, run)))
        };
        match next {
            Ok(Some((app, run))) => {
                // Another worker may take the next queued run meanwhile.
                queue.wake.notify_one();
                let (run_id, storage_id) = (run.id, run.storage_id);
                if let Err(e) = tokio::spawn(execute(app.clone(), run)).await {
                    tracing::error!(run = run_id, "sync run panicked: {e}");
                    let failed = SyncState {
                        status: SyncStatus::Failed,
                        traceback: Some("internal error during the sync; see the service log".into()),
                        meta: json!({"time_failure": meta_time()}),
                        last_sync: Some(now()),
                        last_sync_count: None,
                        last_sync_job: Some(run_id.to_string()),
                    };
                    if let Err(e) = app.store.finish_run(run_id, storage_id, &failed) {
                        tracing::error!(run = run_id, "recording a panicked sync run: {e}");
                    }
                }
            }
            Ok(None) => queue.wake.notified().await,
            Err(e) => {
                tracing::error!("taking a queued sync run: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

async fn execute(app: Arc<App>, run: Run) {
    let storage = match app.store.storage(run.storage_id) {
        Ok(Some(s)) => s,
        // Deleted meanwhile: its runs went with it.
        Ok(None) => return,
        Err(e) => return tracing::error!(run = run.id, "reading the storage of a sync run: {e}"),
    };
    let mut tracker = Tracker::new(run, &storage);
    let started = Instant::now();
    tracing::info!(storage = storage.id, run = tracker.run_id, resume = tracker.cursor.is_some(), "sync started");
    let outcome = match storage.direction {
        Direction::Import => super::import::run(&app, &storage, &mut tracker).await,
        Direction::Export => super::export::run(&app, &storage, &mut tracker).await,
    };
    let duration = started.elapsed().as_secs_f64();
    let mut meta = match tracker.meta() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    meta.insert("duration".into(), json!(duration));
    let c = &tracker.counters;
    let mut lines = c.failures.clone();
    if c.failures_unreported > 0 {
        lines.push(format!("... and {} more", c.failures_unreported));
    }
    let (status, last_sync_count) = match outcome {
        Ok(outcome) => {
            meta.insert("time_completed".into(), Value::from(meta_time()));
            if let Some(why) = outcome.braked {
                lines.push(why);
            }
            let status = if lines.is_empty() { SyncStatus::Completed } else { SyncStatus::CompletedWithErrors };
            (status, Some(c.tasks_created as i64))
        }
        Err(e) => {
            if let SyncError::Store(inner) = &e {
                tracing::error!(storage = storage.id, "store error during sync: {inner}");
            }
            meta.insert("time_failure".into(), Value::from(meta_time()));
            lines.insert(0, e.to_string());
            (SyncStatus::Failed, None)
        }
    };
    let progress = SyncState {
        status,
        traceback: (!lines.is_empty()).then(|| lines.join("\n")),
        meta: Value::Object(meta),
        last_sync: Some(now()),
        last_sync_count,
        last_sync_job: Some(tracker.run_id.to_string()),
    };
    if let Err(e) = app.store.finish_run(tracker.run_id, storage.id, &progress) {
        tracing::error!(storage = storage.id, "recording the end of a sync: {e}");
    }
    tracing::info!(storage = storage.id, status = status.as_str(), count = last_sync_count, duration, "sync finished");
}
