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
use crate::App;
use crate::domain::{Direction, Storage, SyncCounters, SyncStatus, now};
use crate::store::{Run, StoreError, SyncProgress};

/// Default of `--sync-workers`: runs executed at once by one service.
pub const DEFAULT_WORKERS: usize = 2;

/// Wakes idle workers when a run is queued.
#[derive(Default)]
pub struct Queue {
    wake: Notify,
}

/// `str(datetime)` form Label Studio uses in `meta`: `2026-11-24 23:06:27.392361+00:00`.
fn meta_time() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
}

/// Queues a sync of `storage` and returns at once; the storage is then `queued` (or already
/// `in_progress`, when a run was under way: that run is the answer, nothing new is queued).
///
/// # Errors
/// Only database failures.
pub fn request(app: &App, storage: &Storage) -> Result<(), StoreError> {
    let attempts = storage.meta.get("attempts").and_then(Value::as_i64).unwrap_or(0) + 1;
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
                    let failed = SyncProgress {
                        status: SyncStatus::Failed,
                        traceback: Some("internal error during the sync; see the service log".into()),
                        meta: json!({"time_failure": meta_time()}),
                        last_sync: Some(now()),
                        last_sync_count: None,
                        last_sync_job: None,
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

/// A run's progress as it goes: counters (persisted with each page by the stages) and the
/// storage's `meta` built from them.
pub struct Tracker {
    pub run_id: i64,
    pub storage_id: i64,
    /// The persisted cursor to continue from (`None`: the start).
    pub cursor: Option<String>,
    pub listing_done: bool,
    pub counters: SyncCounters,
    /// `meta` fields set before this process took the run (`attempts`, `time_queued`, ...).
    base: Map<String, Value>,
    /// When this process took the run, and the objects listed until then (for the rate).
    since: Instant,
    listed_before: u64,
}

impl Tracker {
    fn new(run: Run, storage: &Storage) -> Tracker {
        let mut base = storage.meta.as_object().cloned().unwrap_or_default();
        base.insert("time_in_progress".into(), Value::from(meta_time()));
        base.entry("started_at").or_insert_with(|| Value::from(now()));
        Tracker {
            run_id: run.id,
            storage_id: run.storage_id,
            cursor: run.cursor,
            listing_done: run.listing_done,
            listed_before: run.counters.objects_listed,
            counters: run.counters,
            base,
            since: Instant::now(),
        }
    }

    /// The storage's `meta` now: Label Studio's fields, then the run's counters (without the
    /// failure lines, which go to `traceback`), `rate_per_s` (objects listed per second by this
    /// process). `eta_s` is absent: listings do not say how many objects are left.
    pub fn meta(&self) -> Value {
        self.meta_for(&self.counters)
    }

    /// Adds a field to `meta` (e.g. `total_annotations`).
    pub fn note(&mut self, key: &str, value: Value) {
        self.base.insert(key.into(), value);
    }

    /// [`meta`](Self::meta) with counters `c` (about to be committed).
    pub fn meta_for(&self, c: &SyncCounters) -> Value {
        let mut meta = self.base.clone();
        meta.insert("time_last_ping".into(), Value::from(meta_time()));
        if let Value::Object(c) = serde_json::to_value(c).expect("counters serialize") {
            for (k, v) in c {
                if k != "failures" && !v.is_null() {
                    meta.insert(k, v);
                }
            }
        }
        let secs = self.since.elapsed().as_secs_f64();
        if secs > 0.0 {
            let rate = c.objects_listed.saturating_sub(self.listed_before) as f64 / secs;
            meta.insert("rate_per_s".into(), json!((rate * 10.0).round() / 10.0));
        }
        Value::Object(meta)
    }
}

/// How a run ended without failing.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Why the removal phase was skipped (deletion brakes), if it was.
    pub braked: Option<String>,
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
    if c.objects_failed > c.failures.len() as u64 {
        lines.push(format!("... and {} more", c.objects_failed - c.failures.len() as u64));
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
    let progress = SyncProgress {
        status,
        traceback: (!lines.is_empty()).then(|| lines.join("\n")),
        meta: Value::Object(meta),
        last_sync: Some(now()),
        last_sync_count,
        last_sync_job: None,
    };
    if let Err(e) = app.store.finish_run(tracker.run_id, storage.id, &progress) {
        tracing::error!(storage = storage.id, "recording the end of a sync: {e}");
    }
    tracing::info!(storage = storage.id, status = status.as_str(), count = last_sync_count, duration, "sync finished");
}
