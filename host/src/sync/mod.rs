//! Sync runs: import (storage objects to tasks) and export (annotations to storage objects),
//! in the background, with Label Studio's status state machine.
//!
//! - `job`: requests queue a run in the database; a bounded worker pool (`--sync-workers`) runs
//!   them; interrupted runs resume from their persisted cursor;
//! - `import`: the listing loop, page by page, over the pure page stages of `stages`;
//! - `export`: incremental writes of annotations;
//! - `report`: a run's progress and outcome, which both loops hand back to `job`;
//! - `retry`: only temporary failures are retried (sessions come from [`crate::plugin::Sessions`]);
//! - `error`: [`SyncError`], why a run stopped.

mod error;
pub mod export;
pub mod import;
pub mod job;
pub mod report;
pub mod retry;
pub mod stages;

pub use error::SyncError;
pub use job::{DEFAULT_WORKERS, Queue, request, spawn_workers};
