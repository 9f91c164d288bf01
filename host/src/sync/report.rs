//! A run's progress while it goes ([`Tracker`]) and how it ended ([`Outcome`]): what the
//! import and export loops report to the job that runs them.

use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::domain::{Storage, SyncCounters, now};
use crate::store::Run;

/// `str(datetime)` form Label Studio uses in `meta`: `2026-11-24 23:06:27.392361+00:00`.
pub fn meta_time() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
}

/// A run's progress as it goes: counters (persisted with each page by the stages) and the
/// storage's `meta` built from them.
pub struct Tracker {
    pub run_id: i64,
    pub storage_id: i64,
    /// The persisted cursor to continue from (`None`: the start).
    pub cursor: Option<String>,
    pub listing_done: bool,
    /// The task file committed in part whose remaining rows are still to import.
    pub open_object: Option<String>,
    pub counters: SyncCounters,
    /// `meta` fields set before this process took the run (`attempts`, `time_queued`, ...).
    base: Map<String, Value>,
    /// When this process took the run, and the objects listed until then (for the rate).
    since: Instant,
    listed_before: u64,
}

impl Tracker {
    pub(super) fn new(run: Run, storage: &Storage) -> Tracker {
        let mut base = storage.sync.meta.as_object().cloned().unwrap_or_default();
        base.insert("time_in_progress".into(), Value::from(meta_time()));
        base.entry("started_at").or_insert_with(|| Value::from(now()));
        Tracker {
            run_id: run.id,
            storage_id: run.storage_id,
            cursor: run.cursor,
            listing_done: run.listing_done,
            open_object: run.open_object,
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
