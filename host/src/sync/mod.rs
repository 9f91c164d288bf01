//! Sync runs: import (storage objects to tasks) and export (annotations to storage objects),
//! in the background, with Label Studio's status state machine.
//!
//! - `job`: requests queue a run in the database; a bounded worker pool (`--sync-workers`) runs
//!   them; interrupted runs resume from their persisted cursor;
//! - `import`: the listing loop, page by page, over the pure page stages of `stages`;
//! - `export`: incremental writes of annotations;
//! - `report`: a run's progress and outcome, which both loops hand back to `job`;
//! - `connect`: adapter sessions of a stored storage; `retry`: only temporary failures are retried;
//! - `error`: [`SyncError`], why a run stopped.

pub mod connect;
mod error;
pub mod export;
pub mod import;
pub mod job;
pub mod report;
pub mod retry;
pub mod stages;

pub use connect::{ConnectError, SessionPool, connect};
pub use error::SyncError;
pub use job::{DEFAULT_WORKERS, Queue, request, spawn_workers};
