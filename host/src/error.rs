//! `StorageError`: what went wrong talking to a storage, in terms a user can act on.
//!
//! Kinds mirror the WIT `error` variant plus the failures the host adds around an adapter call
//! (deadline, memory cap, crash). `Display` never includes secrets or host paths.

use std::fmt;

/// Category of a storage failure; decides retries and HTTP status codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Denied,
    /// Suggested wait in seconds, if the server gave one.
    Throttled(Option<u32>),
    Transient,
    InvalidConfig,
    Unsupported,
    /// The adapter trapped, ran past its deadline or its memory cap. The instance is discarded.
    AdapterFailed,
}

/// A failed storage operation: kind, the operation (`list`, `get`, ...) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError {
    pub kind: ErrorKind,
    pub op: &'static str,
    pub message: String,
}

impl StorageError {
    pub fn new(kind: ErrorKind, op: &'static str, message: impl Into<String>) -> Self {
        StorageError { kind, op, message: message.into() }
    }

    /// Worth retrying with backoff (DESIGN.md: the host retries only these; adapters never do).
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Transient | ErrorKind::Throttled(_))
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.kind {
            ErrorKind::NotFound => "not found",
            ErrorKind::Denied => "access denied",
            ErrorKind::Throttled(_) => "throttled",
            ErrorKind::Transient => "temporary failure",
            ErrorKind::InvalidConfig => "invalid configuration",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::AdapterFailed => "adapter failed",
        };
        write!(f, "{}: {what}: {}", self.op, self.message)
    }
}

impl std::error::Error for StorageError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_operation_kind_and_message() {
        let e = StorageError::new(ErrorKind::NotFound, "get", "a.json: no such file");
        assert_eq!(e.to_string(), "get: not found: a.json: no such file");
        assert!(!e.is_retryable());
        assert!(StorageError::new(ErrorKind::Throttled(Some(3)), "list", "slow down").is_retryable());
    }
}
