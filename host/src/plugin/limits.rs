//! What the operator allows each adapter call and instance: deadline, memory, answer size,
//! failures before quarantine.

use std::time::Duration;

/// Limits on adapters set by the operator.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock deadline of one call.
    pub call_timeout: Duration,
    /// Linear memory cap of one instance, bytes.
    pub memory_bytes: usize,
    /// Largest answer the host accepts from one call, bytes: an object body, or the keys and
    /// etags of one listing page. A bigger answer fails the call (and counts as a failure).
    pub max_response_bytes: usize,
    /// Failed calls the adapter broke (a crash, or spinning past the deadline) within
    /// [`super::registry::QUARANTINE_WINDOW`] after which an adapter is quarantined: its calls fail
    /// at once until a new version is installed. 0 disables.
    pub quarantine_after: u32,
}

impl Limits {
    /// The defaults of `stowage serve`: 30 s, 256 MiB, 64 MiB, 10 failures.
    pub const DEFAULT: Limits = Limits {
        call_timeout: Duration::from_secs(30),
        memory_bytes: 256 << 20,
        max_response_bytes: 64 << 20,
        quarantine_after: 10,
    };
}
