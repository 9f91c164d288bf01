//! Sync jobs: import (storage objects to tasks) and export (annotations to storage objects),
//! with Label Studio's status state machine.
//!
//! `job` runs one sync per storage at a time and records its status; `import` and `export` do
//! the work through a [`plugin::Session`](crate::plugin::Session) opened by `connect`; `retry`
//! repeats only temporary failures.

pub mod connect;
pub mod export;
pub mod import;
pub mod job;
pub mod retry;

pub use connect::{ConnectError, SessionPool, connect};
pub use job::run_sync;
