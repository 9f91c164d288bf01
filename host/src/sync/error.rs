//! Why a sync run stopped early. Shown to users in `traceback`; never a secret, a host path or a
//! database message (those are logged).

use crate::error::StorageError;
use crate::plugin::ConnectError;
use crate::store::StoreError;

/// A sync run that could not go on. Objects that fail one by one are not errors of the run:
/// they are counted in `SyncCounters::failures` and the run ends `completed_with_errors`.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The storage cannot be opened (no adapter for its type, a refused grant).
    #[error("{0}")]
    Connect(#[from] ConnectError),
    /// A storage call failed permanently or after its retries (a listing page, a blob URI).
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// A storage option the run cannot use (e.g. an invalid `regex_filter`).
    #[error("{0}")]
    Invalid(String),
    /// The database failed; the details go to the log, not to the user.
    #[error("internal error while saving the sync; see the service log")]
    Store(#[from] StoreError),
    /// A task of the run panicked (a bug); the panic goes to the log.
    #[error("internal error during the sync; see the service log")]
    Internal,
}

impl std::error::Error for ConnectError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn display_is_the_traceback_shown_to_users() {
        let e = SyncError::from(StorageError::new(ErrorKind::Denied, "list", "Access Denied"));
        assert_eq!(e.to_string(), "list: access denied: Access Denied");
        let e = SyncError::from(StoreError::Sqlite(rusqlite::Error::InvalidQuery));
        assert_eq!(e.to_string(), "internal error while saving the sync; see the service log");
        assert_eq!(SyncError::Invalid("regex_filter is bad".into()).to_string(), "regex_filter is bad");
    }
}
