//! Redis failures → WIT error kinds.
//!
//! The kind decides what the host does: it retries only `transient` and `throttled`. Messages name
//! the server as `host:port/db` and the failure class; a server error line (`ERR ...`) is shown
//! cut short and with the password scrubbed out, and nothing else the server or the connection
//! carried is. The password is never part of a message.

use std::io;

use redis::{ErrorKind, RedisError, ServerErrorKind};
use stowage_sdk::Error;

use crate::config::RedisConfig;

/// Label Studio's message when the connection check fails (`redis/serializers.py`).
pub const CANNOT_CONNECT: &str = "Can't connect to Redis server.";

/// Longest server error text shown in a message.
const MAX_DETAIL: usize = 160;

/// The WIT error kind of a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    NotFound,
    Denied,
    Transient,
    InvalidConfig,
    Unsupported,
}

/// The I/O error behind a redis error, if any.
pub fn io_error(e: &RedisError) -> Option<&io::Error> {
    let source = std::error::Error::source(e)?;
    if let Some(io) = source.downcast_ref::<io::Error>() {
        return Some(io);
    }
    // redis keeps I/O errors as `Arc<dyn Error + Send + Sync>`.
    let shared = source.downcast_ref::<std::sync::Arc<dyn std::error::Error + Send + Sync>>()?;
    (**shared).downcast_ref::<io::Error>()
}

/// True when the sandbox refused the connection (`wasi:sockets` answers `PermissionDenied`:
/// the host's address policy, or a host or port other than the granted one).
pub fn refused_by_sandbox(e: &RedisError) -> bool {
    io_error(e).is_some_and(|io| io.kind() == io::ErrorKind::PermissionDenied)
}

/// The server's error code (`WRONGPASS`, `ERR`, ...), also when the client wrapped the reply
/// (a refused `SELECT` during the handshake carries the server line in its detail).
fn code_and_detail(e: &RedisError) -> (Option<String>, Option<String>) {
    let detail = e.detail().map(str::to_string);
    let code = e.code().map(str::to_string);
    // "Redis server refused to switch database" keeps the server's line, e.g. "NOAUTH ...".
    if let Some(d) = &detail {
        let first = d.split_whitespace().next().unwrap_or("");
        if !first.is_empty() && first.bytes().all(|b| b.is_ascii_uppercase()) && first.len() > 2 {
            return (Some(first.to_string()), detail);
        }
    }
    (code, detail)
}

/// Kind of a redis error.
pub fn kind(e: &RedisError) -> Kind {
    let (code, detail) = code_and_detail(e);
    match code.as_deref() {
        Some("WRONGPASS" | "NOAUTH" | "NOPERM") => return Kind::Denied,
        Some("WRONGTYPE") => return Kind::InvalidConfig,
        Some("LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN" | "CLUSTERDOWN" | "OOM") => return Kind::Transient,
        Some("MOVED" | "ASK" | "CROSSSLOT") => return Kind::Unsupported,
        Some("READONLY") => return Kind::InvalidConfig,
        _ => {}
    }
    if detail.as_deref().is_some_and(|d| d.contains("DB index is out of range") || d.contains("invalid DB index")) {
        return Kind::InvalidConfig;
    }
    match e.kind() {
        ErrorKind::AuthenticationFailed | ErrorKind::Server(ServerErrorKind::NoPerm) => Kind::Denied,
        ErrorKind::Io if refused_by_sandbox(e) => Kind::Denied,
        ErrorKind::InvalidClientConfig => Kind::InvalidConfig,
        ErrorKind::Server(ServerErrorKind::Moved | ServerErrorKind::Ask | ServerErrorKind::CrossSlot) => {
            Kind::Unsupported
        }
        ErrorKind::Server(ServerErrorKind::ReadOnly) => Kind::InvalidConfig,
        // I/O, dropped connections, loading, protocol errors, unknown server errors: the next
        // connection may do better.
        _ => Kind::Transient,
    }
}

/// Server text made safe to show: one line, printable, short, without the password.
fn shown(config: &RedisConfig, text: &str) -> String {
    let mut line: String =
        text.lines().next().unwrap_or("").chars().filter(|c| !c.is_control()).take(MAX_DETAIL).collect();
    if text.chars().count() > MAX_DETAIL {
        line.push('…');
    }
    config.scrub(&line)
}

/// The message of a failure on server `config` (`what` names the key or operation).
pub fn message(config: &RedisConfig, e: &RedisError, what: &str) -> String {
    let server = config.server();
    let prefix = if what.is_empty() { format!("redis {server}") } else { format!("redis {server}: {what}") };
    if refused_by_sandbox(e) {
        return format!(
            "{prefix}: the stowage host refused the connection to {}:{} (address policy)",
            config.host, config.port
        );
    }
    if let Some(io) = io_error(e) {
        // The I/O error's kind only ("connection refused", "timed out"): never the OS text.
        return format!("{prefix}: {}", io.kind());
    }
    match e.kind() {
        ErrorKind::AuthenticationFailed => return format!("{prefix}: authentication failed (wrong password?)"),
        ErrorKind::Parse => return format!("{prefix}: the reply is not valid RESP (is this a Redis server?)"),
        _ => {}
    }
    let (code, detail) = code_and_detail(e);
    match (code, detail) {
        (_, Some(d)) if !d.is_empty() => {
            let d = shown(config, &d);
            match e.code() {
                // The client prepends the code to nothing; keep "ERR <text>" readable.
                Some(c) if !d.starts_with(c) => format!("{prefix}: {c} {d}"),
                _ => format!("{prefix}: {d}"),
            }
        }
        (Some(c), _) => format!("{prefix}: {c}"),
        (None, _) => format!("{prefix}: {}", e.category()),
    }
}

/// The WIT error of a failure.
pub fn into_error(config: &RedisConfig, e: &RedisError, what: &str) -> Error {
    let m = message(config, e, what);
    match kind(e) {
        Kind::NotFound => Error::NotFound(m),
        Kind::Denied => Error::Denied(m),
        Kind::Transient => Error::Transient(m),
        Kind::InvalidConfig => Error::InvalidConfig(m),
        Kind::Unsupported => Error::Unsupported(m),
    }
}

/// True when the connection should be dropped after this error (it may be broken or
/// half-read); a server error reply leaves the connection usable.
pub fn breaks_connection(e: &RedisError) -> bool {
    !matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension | ErrorKind::UnexpectedReturnType)
}

#[cfg(test)]
mod tests {
    use super::*;
    use stowage_sdk::Config;

    fn config(password: &str) -> RedisConfig {
        let settings = vec![("host".to_string(), "127.0.0.1".to_string()), ("port".to_string(), "6390".to_string())];
        let secrets = vec![("password".to_string(), password.to_string())];
        RedisConfig::from_config(&Config { settings, secrets }).unwrap()
    }

    fn server(code: &str, detail: &str) -> RedisError {
        redis::make_extension_error(code.to_string(), Some(detail.to_string()))
    }

    #[test]
    fn io_errors() {
        let c = config("pw");
        let refused =
            RedisError::from(io::Error::new(io::ErrorKind::ConnectionRefused, "Connection refused (os error 111)"));
        assert_eq!(kind(&refused), Kind::Transient);
        assert_eq!(message(&c, &refused, ""), "redis 127.0.0.1:6390/1: connection refused");
        let sandbox =
            RedisError::from(io::Error::new(io::ErrorKind::PermissionDenied, "Permission denied (os error 2)"));
        assert_eq!(kind(&sandbox), Kind::Denied);
        assert_eq!(
            message(&c, &sandbox, "get k"),
            "redis 127.0.0.1:6390/1: get k: the stowage host refused the connection to 127.0.0.1:6390 (address policy)"
        );
        assert!(breaks_connection(&refused));
    }

    #[test]
    fn auth_errors_are_denied() {
        let c = config("s3cr3t-pass");
        let wrong = RedisError::from((ErrorKind::AuthenticationFailed, "Password authentication failed"));
        assert_eq!(kind(&wrong), Kind::Denied);
        assert_eq!(message(&c, &wrong, ""), "redis 127.0.0.1:6390/1: authentication failed (wrong password?)");
        for code in ["WRONGPASS", "NOAUTH"] {
            assert_eq!(kind(&server(code, "Authentication required.")), Kind::Denied, "{code}");
        }
        // A refused SELECT during the handshake wraps the server line in its detail.
        let select = RedisError::from((
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "Redis server refused to switch database",
            "NOAUTH Authentication required.".to_string(),
        ));
        assert_eq!(kind(&select), Kind::Denied);
    }

    #[test]
    fn server_errors() {
        let c = config("pw");
        let range = RedisError::from((
            ErrorKind::Server(ServerErrorKind::ResponseError),
            "Redis server refused to switch database",
            "ERR DB index is out of range".to_string(),
        ));
        assert_eq!(kind(&range), Kind::InvalidConfig);
        assert_eq!(message(&c, &range, ""), "redis 127.0.0.1:6390/1: ERR DB index is out of range");
        assert!(!breaks_connection(&range));
        assert_eq!(kind(&server("LOADING", "Redis is loading the dataset in memory")), Kind::Transient);
        assert_eq!(kind(&server("OOM", "command not allowed when used memory > 'maxmemory'.")), Kind::Transient);
        assert_eq!(
            kind(&server("WRONGTYPE", "Operation against a key holding the wrong kind of value")),
            Kind::InvalidConfig
        );
        assert_eq!(kind(&server("MOVED", "3999 127.0.0.1:6381")), Kind::Unsupported);
        assert_eq!(kind(&server("READONLY", "You can't write against a read only replica.")), Kind::InvalidConfig);
    }

    /// Server text is cut to one short line and never shows the password.
    #[test]
    fn server_text_is_sanitised() {
        let c = config("topsecret");
        let e = server("ERR", &format!("echo topsecret\nsecond line {}", "x".repeat(500)));
        let m = message(&c, &e, "");
        assert!(!m.contains("topsecret") && !m.contains("second line"), "{m}");
        assert!(m.chars().count() < 240, "{m}");
    }
}
