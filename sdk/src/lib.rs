//! Build a stowage storage adapter.
//!
//! An adapter is a `wasm32-wasip2` component that implements the WIT world `stowage:storage/adapter`
//! (`wit/since_v0.3.0/storage.wit`). This crate owns the bindings so an adapter crate holds only
//! backend logic:
//!
//! 1. implement [`Backend`] for a type holding your parsed configuration;
//! 2. call [`export_adapter!`] with that type;
//! 3. `cargo build --release --target wasm32-wasip2` emits the component (`crate-type = ["cdylib"]`).
//!
//! ```ignore
//! struct Mine { root: String }
//! impl stowage_sdk::Backend for Mine {
//!     fn describe() -> stowage_sdk::AdapterInfo { /* type name, settings, grants */ }
//!     fn open(config: stowage_sdk::Config) -> Result<Self, stowage_sdk::Error> {
//!         Ok(Mine { root: config.require("root")?.to_string() })
//!     }
//!     fn blob_uri(&self, key: &str) -> String { format!("mine://{}/{key}", self.root) }
//! }
//! stowage_sdk::export_adapter!(Mine);
//! ```
//!
//! Rules the host relies on: never retry (return `transient`/`throttled` and the host retries);
//! keep no state between calls that correctness depends on (an instance may be rebuilt at any time);
//! never put secrets in error messages.
//!
//! With the `conformance` feature (native only), [`conformance`] holds the checks every adapter must pass.
//! With the `http` feature, [`http`] sends requests over `wasi:http` (the only network an HTTP storage gets).
//! With the `time` feature, [`time`] reads and writes the timestamps storage APIs use.
//! With the `object-store` feature (`http` + `time`), [`object_store`] holds Label Studio's rules
//! for bucket storages (S3, GCS, Azure Blob and the like): prefix folders, listing pages, export
//! keys and blob URIs.

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "object-store")]
pub mod object_store;
#[cfg(feature = "time")]
pub mod time;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/since_v0.3.0",
        world: "adapter",
        pub_export_macro: true,
        default_bindings_module: "stowage_sdk::bindings",
    });
}

use bindings::exports::stowage::storage::backend_api as api;
pub use bindings::stowage::storage::types::{
    AdapterInfo, ByteRange, Capabilities, Direction, Entry, Error, GrantRequest, HttpGrant, Method, Object, Page,
    Setting, SettingKind, Skipped, TcpGrant,
};

/// The host's small per-storage cache (WIT `host-cache`, since 0.2.0): values that should
/// outlive one adapter instance, such as an access token until it expires or a discovered
/// region. Bounded (64 entries per storage, 8 KiB a value, a day at most) and evictable at any
/// time: an adapter must work with an empty cache. Natively (an adapter's unit tests) there is
/// no host: the cache is always empty.
pub mod cache {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::stowage::storage::host_cache::{get, set};

    /// The value stored under `key`: none natively.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn get(_key: &str) -> Option<Vec<u8>> {
        None
    }

    /// Stores nothing natively.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn set(_key: &str, _value: &[u8], _ttl_seconds: u32) {}
}

/// The WIT package version this SDK builds adapters for.
pub const WIT_VERSION: &str = "0.3.0";

/// A storage's configuration as passed to [`Backend::open`]: plain settings and secrets,
/// each a (name, value) pair in plain text (booleans `true`/`false`, integers in decimal).
#[derive(Clone, Default)]
pub struct Config {
    /// The plain settings (those not marked [`Setting::secret`]), as `(name, value)` pairs; a
    /// setting the user left empty may come as `""` or be absent.
    pub settings: Vec<(String, String)>,
    /// The secret settings ([`Setting::secret`]: keys, passwords, tokens), as `(name, value)`
    /// pairs, filled from an environment fallback when the operator allows it. Never put a value in
    /// a message or a log; `Debug` shows names only.
    pub secrets: Vec<(String, String)>,
}

impl Config {
    /// A setting or secret by name; `None` when unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.settings.iter().chain(self.secrets.iter()).find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A setting that must be set and non-empty.
    ///
    /// # Errors
    /// `invalid-config("<name> must be set")` when missing or empty.
    pub fn require(&self, name: &str) -> Result<&str, Error> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(Error::InvalidConfig(format!("{name} must be set"))),
        }
    }

    /// A boolean setting; unset means `default`.
    pub fn flag(&self, name: &str, default: bool) -> bool {
        self.get(name).map_or(default, |v| v == "true")
    }

    /// A setting or secret by name, trimmed; `None` when unset or blank (Label Studio sends `""`
    /// and `null` alike for a field left empty).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }
}

/// Builders for [`Setting`], the entries of [`AdapterInfo::settings`]:
/// `Setting::text("bucket", "Bucket name").required()`.
impl Setting {
    /// An optional, non-secret text setting with no default and no environment fallback.
    pub fn text(name: &str, help: &str) -> Setting {
        Setting {
            name: name.into(),
            kind: SettingKind::Text,
            secret: false,
            required: false,
            default_value: None,
            export_default_value: None,
            env_fallback: None,
            help: help.into(),
        }
    }

    /// Marks the setting required: the host refuses a storage without it.
    #[must_use]
    pub fn required(mut self) -> Setting {
        self.required = true;
        self
    }

    /// Marks the setting secret: write-only in the API, passed to [`Backend::open`] in
    /// [`Config::secrets`], never logged.
    #[must_use]
    pub fn secret(mut self) -> Setting {
        self.secret = true;
        self
    }

    /// The server environment variable that may fill the setting when it is empty (only if the
    /// operator allows it, `--ambient-credentials`).
    #[must_use]
    pub fn env_fallback(mut self, variable: &str) -> Setting {
        self.env_fallback = Some(variable.into());
        self
    }
}

/// The kind of an [`Error`] without its payload: what a backend's error table maps a status or
/// an error code to, before the message is known. The host retries only `Throttled` and
/// `Transient`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The bucket, container, object or key does not exist ([`Error::NotFound`]).
    NotFound,
    /// Credentials missing, wrong or not allowed, or a connection the host refused
    /// ([`Error::Denied`]).
    Denied,
    /// Too many requests or an overloaded service; retried after a delay ([`Error::Throttled`],
    /// which carries only the delay).
    Throttled,
    /// A failure the same call may not meet again (network, timeout, a 5xx); retried
    /// ([`Error::Transient`]).
    Transient,
    /// The storage as configured cannot work (a malformed setting, a bad request): the user must
    /// change it ([`Error::InvalidConfig`]).
    InvalidConfig,
    /// The storage or service does not offer the operation ([`Error::Unsupported`]).
    Unsupported,
}

impl ErrorKind {
    /// The WIT error of this kind. `message` is dropped for `Throttled`, which carries only
    /// `retry_after` (seconds, e.g. from `Retry-After`); the other kinds ignore `retry_after`.
    pub fn error(self, message: String, retry_after: Option<u32>) -> Error {
        match self {
            ErrorKind::NotFound => Error::NotFound(message),
            ErrorKind::Denied => Error::Denied(message),
            ErrorKind::Throttled => Error::Throttled(retry_after),
            ErrorKind::Transient => Error::Transient(message),
            ErrorKind::InvalidConfig => Error::InvalidConfig(message),
            ErrorKind::Unsupported => Error::Unsupported(message),
        }
    }
}

/// `Debug` shows setting names only: values may be secrets.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |v: &[(String, String)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        f.debug_struct("Config")
            .field("settings", &names(&self.settings))
            .field("secrets", &names(&self.secrets))
            .finish()
    }
}

/// `unsupported("<op> is not supported by this storage")`, the default of every optional operation.
pub fn unsupported(op: &str) -> Error {
    Error::Unsupported(format!("{op} is not supported by this storage"))
}

/// What an adapter implements. Every operation but `describe`, `open` and `blob_uri` has a default
/// that returns `unsupported`, so a read-only adapter implements `list`, `stat` and `get` only.
///
/// Each method runs inside one host call with a deadline and a memory cap; a panic traps the
/// instance and fails that call only.
pub trait Backend: Sized + 'static {
    /// Static description: storage type name, title, settings and sandbox grants. Called once at load.
    fn describe() -> AdapterInfo;
    /// Parses the configuration. Must not do I/O (the host calls it for every instance).
    fn open(config: Config) -> Result<Self, Error>;
    /// Validates the connection (credentials, bucket or directory exists); `direction` tells an
    /// import storage (which must have objects under its prefix) from an export one.
    fn check(&self, _direction: Direction) -> Result<(), Error> {
        Ok(())
    }
    /// One page of keys under `prefix`, sorted, at most `page_size` entries.
    fn list(&self, _prefix: &str, _cursor: Option<String>, _page_size: u32, _recursive: bool) -> Result<Page, Error> {
        Err(unsupported("list"))
    }
    /// The [`Entry`] of one object: its `key` as given, `size` in bytes, and `etag` and
    /// `last_modified` (milliseconds since the Unix epoch) when the storage knows them.
    ///
    /// # Errors
    /// `not-found` when there is no such object; otherwise as any call (`denied`, `transient`,
    /// `throttled`, `invalid-config`). Default: `unsupported`.
    fn stat(&self, _key: &str) -> Result<Entry, Error> {
        Err(unsupported("stat"))
    }
    /// The bytes of one object, all of them or the inclusive `range` (`end: None` reads to the
    /// end; a range starting past the end reads as empty, not as an error), with
    /// [`Object::total_size`] the size of the whole object in bytes (not of the range), and the
    /// object's ETag, content type and last modification when known.
    ///
    /// # Errors
    /// `not-found` when there is no such object; otherwise as any call. Default: `unsupported`.
    fn get(&self, _key: &str, _range: Option<ByteRange>) -> Result<Object, Error> {
        Err(unsupported("get"))
    }
    /// Writes `body` as the whole object `key`, replacing any object of that key; `content_type`
    /// is stored where the storage keeps one (`None` or empty: the storage's default).
    ///
    /// # Errors
    /// `denied` when the credentials may not write; otherwise as any call. Default: `unsupported`.
    fn put(&self, _key: &str, _body: Vec<u8>, _content_type: Option<String>) -> Result<(), Error> {
        Err(unsupported("put"))
    }
    /// Deletes the objects `keys`; a key with no object is not an error (deleting is idempotent).
    ///
    /// # Errors
    /// The first failure other than a missing object (`denied` when the credentials may not
    /// delete); keys before it may already be gone. Default: `unsupported`.
    fn delete(&self, _keys: Vec<String>) -> Result<(), Error> {
        Err(unsupported("delete"))
    }
    /// An absolute `http(s)` URL through which a browser may perform `method` on `key` (GET: read
    /// it, PUT: write it) without other credentials, for about `ttl_seconds` seconds where the
    /// storage can limit it. The host hands it to clients (a `303` to it), so it must carry no
    /// credential of the storage itself, only a signature limited to that object.
    ///
    /// # Errors
    /// `unsupported` when this storage cannot make such a URL (e.g. it has no signing key; an
    /// adapter that never can leaves [`Capabilities::PRESIGN`] out); otherwise as any call.
    /// Default: `unsupported`.
    fn presign(&self, _method: Method, _key: &str, _ttl_seconds: u32) -> Result<String, Error> {
        Err(unsupported("presign"))
    }
    /// The URI a blob-mode task stores for `key`.
    fn blob_uri(&self, key: &str) -> String;
    /// The key an export storage writes annotation `annotation_id` to; the bare id by default
    /// (Label Studio's local files), object stores put it under their prefix.
    fn export_key(&self, annotation_id: u64) -> String {
        annotation_id.to_string()
    }
    /// The key of `uri` if this storage serves it (inverse of `blob_uri`); `None` by default.
    fn key_of_uri(&self, _uri: &str) -> Option<String> {
        None
    }
}

/// Wraps a [`Backend`] as the WIT `backend` resource. Used by [`export_adapter!`].
#[doc(hidden)]
pub struct Resource<T>(pub T);

impl<T: Backend> api::GuestBackend for Resource<T> {
    fn open(settings: Vec<(String, String)>, secrets: Vec<(String, String)>) -> Result<api::Backend, Error> {
        T::open(Config { settings, secrets }).map(|b| api::Backend::new(Resource(b)))
    }
    fn check(&self, direction: Direction) -> Result<(), Error> {
        self.0.check(direction)
    }
    fn list(&self, prefix: String, cursor: Option<String>, page_size: u32, recursive: bool) -> Result<Page, Error> {
        self.0.list(&prefix, cursor, page_size, recursive)
    }
    fn stat(&self, key: String) -> Result<Entry, Error> {
        self.0.stat(&key)
    }
    fn get(&self, key: String, range: Option<ByteRange>) -> Result<Object, Error> {
        self.0.get(&key, range)
    }
    fn put(&self, key: String, body: Vec<u8>, content_type: Option<String>) -> Result<(), Error> {
        self.0.put(&key, body, content_type)
    }
    fn delete(&self, keys: Vec<String>) -> Result<(), Error> {
        self.0.delete(keys)
    }
    fn presign(&self, method: Method, key: String, ttl_seconds: u32) -> Result<String, Error> {
        self.0.presign(method, &key, ttl_seconds)
    }
    fn blob_uri(&self, key: String) -> String {
        self.0.blob_uri(&key)
    }
    fn export_key(&self, annotation_id: u64) -> String {
        self.0.export_key(annotation_id)
    }
    fn key_of_uri(&self, uri: String) -> Option<String> {
        self.0.key_of_uri(&uri)
    }
}

/// Exports a [`Backend`] implementation as the adapter component.
#[macro_export]
macro_rules! export_adapter {
    ($backend:ty) => {
        struct __StowageAdapter;
        impl $crate::bindings::exports::stowage::storage::backend_api::Guest for __StowageAdapter {
            type Backend = $crate::Resource<$backend>;
            fn describe() -> $crate::AdapterInfo {
                <$backend as $crate::Backend>::describe()
            }
        }
        $crate::bindings::export!(__StowageAdapter with_types_in $crate::bindings);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(settings: &[(&str, &str)]) -> Config {
        Config { settings: settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), secrets: vec![] }
    }

    /// Blank values count as unset; others come back trimmed.
    #[test]
    fn text_settings() {
        let c = config(&[("a", "  x y "), ("blank", "   "), ("empty", "")]);
        assert_eq!(c.text("a"), Some("x y"));
        assert_eq!((c.text("blank"), c.text("empty"), c.text("unset")), (None, None, None));
    }

    #[test]
    fn setting_builders() {
        let s = Setting::text("key", "Access key").required().secret().env_fallback("AWS_ACCESS_KEY_ID");
        assert_eq!((s.name.as_str(), s.help.as_str()), ("key", "Access key"));
        assert!(s.required && s.secret && matches!(s.kind, SettingKind::Text));
        assert_eq!(s.env_fallback.as_deref(), Some("AWS_ACCESS_KEY_ID"));
        assert_eq!((s.default_value, s.export_default_value), (None, None));
        let plain = Setting::text("prefix", "Folder");
        assert!(!plain.required && !plain.secret && plain.env_fallback.is_none());
    }

    /// Each kind gives its WIT error; throttling keeps the delay, not the message.
    #[test]
    fn error_kinds() {
        let e = |k: ErrorKind| k.error("m".into(), Some(3));
        assert!(matches!(e(ErrorKind::NotFound), Error::NotFound(m) if m == "m"));
        assert!(matches!(e(ErrorKind::Denied), Error::Denied(m) if m == "m"));
        assert!(matches!(e(ErrorKind::Throttled), Error::Throttled(Some(3))));
        assert!(matches!(e(ErrorKind::Transient), Error::Transient(m) if m == "m"));
        assert!(matches!(e(ErrorKind::InvalidConfig), Error::InvalidConfig(m) if m == "m"));
        assert!(matches!(e(ErrorKind::Unsupported), Error::Unsupported(m) if m == "m"));
    }
}
