//! Host bindings per supported version of the `stowage:storage` WIT package (one module per
//! version, as Zed's extension host does), and conversions to the host's own types.
//!
//! Adding a version: a `wit/since_vX.Y.Z/` directory, a module here with its `bindgen!` and
//! `conversions!()`, a [`Version`] variant, and its imports in the registry's linker. A version
//! is dropped only when no supported adapter needs it.

/// The versions this host loads, oldest first (shown in refusals).
pub const SUPPORTED: [&str; 3] = ["0.1.0", "0.2.0", "0.3.0"];

/// The WIT version an adapter was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V0_1_0,
    V0_2_0,
    V0_3_0,
}

impl Version {
    /// `"0.1.0"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_1_0 => "0.1.0",
            Version::V0_2_0 => "0.2.0",
            Version::V0_3_0 => "0.3.0",
        }
    }
}

/// Conversions between one version's generated types and the host's; the same text in every
/// version module (each has its own `wit`, `Direction`, ... types). `conversions!(skipped)` is
/// for versions whose pages have `skipped` (0.3.0 and later).
macro_rules! conversions {
    () => {
        conversions!(@common);

        impl From<wit::Page> for domain::Page {
            fn from(p: wit::Page) -> Self {
                let entries = p.entries.into_iter().map(Into::into).collect();
                domain::Page { entries, next_cursor: p.next_cursor, skipped: Vec::new() }
            }
        }
    };
    (skipped) => {
        conversions!(@common);

        impl From<wit::Page> for domain::Page {
            fn from(p: wit::Page) -> Self {
                let skipped =
                    p.skipped.into_iter().map(|s| domain::Skipped { name: s.name, reason: s.reason, error: s.error });
                let entries = p.entries.into_iter().map(Into::into).collect();
                domain::Page { entries, next_cursor: p.next_cursor, skipped: skipped.collect() }
            }
        }
    };
    (@common) => {
        use crate::domain;
        use crate::error::{ErrorKind, StorageError};

        pub fn error(op: &'static str, e: wit::Error) -> StorageError {
            let (kind, message) = match e {
                wit::Error::NotFound(m) => (ErrorKind::NotFound, m),
                wit::Error::Denied(m) => (ErrorKind::Denied, m),
                wit::Error::Throttled(s) => (ErrorKind::Throttled(s), "the storage asked to slow down".into()),
                wit::Error::Transient(m) => (ErrorKind::Transient, m),
                wit::Error::InvalidConfig(m) => (ErrorKind::InvalidConfig, m),
                wit::Error::Unsupported(m) => (ErrorKind::Unsupported, m),
            };
            StorageError::new(kind, op, message)
        }

        impl From<domain::Direction> for Direction {
            fn from(d: domain::Direction) -> Self {
                match d {
                    domain::Direction::Import => Direction::Import,
                    domain::Direction::Export => Direction::Export,
                }
            }
        }

        impl From<wit::Entry> for domain::Entry {
            fn from(e: wit::Entry) -> Self {
                domain::Entry { key: e.key, size: e.size, etag: e.etag, last_modified: e.last_modified }
            }
        }

        impl From<wit::Object> for domain::ObjectData {
            fn from(o: wit::Object) -> Self {
                domain::ObjectData {
                    body: o.body,
                    total_size: o.total_size,
                    etag: o.etag,
                    content_type: o.content_type,
                }
            }
        }

        impl From<wit::AdapterInfo> for domain::AdapterInfo {
            fn from(i: wit::AdapterInfo) -> Self {
                let settings = i
                    .settings
                    .into_iter()
                    .map(|s| {
                        let kind = match s.kind {
                            wit::SettingKind::Text => domain::SettingKind::Text,
                            wit::SettingKind::Boolean => domain::SettingKind::Boolean,
                            wit::SettingKind::Integer => domain::SettingKind::Integer,
                        };
                        let typed = |v: String| match kind {
                            domain::SettingKind::Text => serde_json::Value::String(v),
                            _ => serde_json::from_str(&v).unwrap_or(serde_json::Value::String(v)),
                        };
                        let default = s.default_value.map(typed);
                        let export_default = s.export_default_value.map(typed);
                        domain::SettingSpec {
                            name: s.name,
                            kind,
                            secret: s.secret,
                            required: s.required,
                            default,
                            export_default,
                            env_fallback: s.env_fallback,
                            help: s.help,
                        }
                    })
                    .collect();
                let caps = i.capabilities;
                domain::AdapterInfo {
                    type_name: i.type_name,
                    title: i.title,
                    capabilities: domain::Capabilities {
                        read: caps.contains(wit::Capabilities::READ),
                        write: caps.contains(wit::Capabilities::WRITE),
                        delete: caps.contains(wit::Capabilities::DELETE),
                        presign: caps.contains(wit::Capabilities::PRESIGN),
                    },
                    settings,
                    grants: i
                        .grants
                        .into_iter()
                        .map(|g| match g {
                            wit::GrantRequest::Directory(s) => domain::GrantRequest::Directory(s),
                            wit::GrantRequest::Http(h) => domain::GrantRequest::Http {
                                endpoint_setting: h.endpoint_setting,
                                default_hosts: h.default_hosts,
                            },
                            wit::GrantRequest::Tcp(t) => domain::GrantRequest::Tcp {
                                host_setting: t.host_setting,
                                port_setting: t.port_setting,
                                default_host: t.default_host,
                                default_port: t.default_port,
                            },
                        })
                        .collect(),
                    regex_on_basename: i.regex_on_basename,
                    key_value: i.key_value,
                    uri_schemes: i.uri_schemes,
                }
            }
        }
    };
}

/// `stowage:storage@0.1.0` (`wit/since_v0.1.0`).
pub mod since_v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.1.0",
        world: "adapter",
        exports: { default: async },
    });

    pub use self::stowage::storage::types as wit;
    pub use exports::stowage::storage::backend_api::{ByteRange, Direction, Method};

    conversions!();
}

/// `stowage:storage@0.2.0` (`wit/since_v0.2.0`): 0.1.0 plus the `host-cache` import.
pub mod since_v0_2_0 {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.2.0",
        world: "adapter",
        exports: { default: async },
    });

    pub use self::stowage::storage::types as wit;
    pub use exports::stowage::storage::backend_api::{ByteRange, Direction, Method};

    conversions!();
}

/// `stowage:storage@0.3.0` (`wit/since_v0.3.0`): 0.2.0 plus `page.skipped`.
pub mod since_v0_3_0 {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.3.0",
        world: "adapter",
        exports: { default: async },
    });

    pub use self::stowage::storage::types as wit;
    pub use exports::stowage::storage::backend_api::{ByteRange, Direction, Method};

    conversions!(skipped);
}
