//! The plugin runtime: loads storage adapters (wasm32-wasip2 components) and runs their calls
//! in a sandbox.
//!
//! 1. [`engine`] builds the wasmtime engine (epoch interruption) and loads components through an
//!    on-disk cache of compiled code keyed by content hash and engine.
//! 2. [`registry`] loads every `*.wasm` of the adapters directory, reads each manifest and keys the
//!    adapter by the storage type it declares; [`watch`] loads files dropped there later.
//! 3. [`grants`] turns a manifest's requests and a storage's settings into what the sandbox allows;
//!    [`egress`] enforces its HTTP part on every outbound connection.
//! 4. [`session`] is one storage's [`Session`]: a live instance in a [`sandbox`] store with those
//!    grants, a deadline per call and a memory cap ([`limits`]); a trapped instance is rebuilt on
//!    the next call. [`sessions`] opens them on stored storages under the operator's [`Policy`]
//!    and pools idle ones.
//! 5. [`bindings`] holds one module per supported WIT version and [`component`] a component of
//!    any of them; [`cache`] is the per-storage cache that versions since 0.2.0 import.

pub mod bindings;
pub mod cache;
pub mod component;
pub mod egress;
pub mod engine;
pub mod grants;
pub mod limits;
pub mod registry;
pub mod sandbox;
pub mod session;
pub mod sessions;
pub mod watch;

pub use grants::Grant;
pub use limits::Limits;
pub use registry::{Adapter, Registry};
pub use session::Session;
pub use sessions::{ConnectError, Policy, Sessions};
