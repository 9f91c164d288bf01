//! Opening an adapter session for a stored storage: its settings as the adapter takes them, and
//! the sandbox grant they imply.

use crate::App;
use crate::domain::{SettingKind, Storage};
use crate::plugin::registry::split_settings;
use crate::plugin::{Session, grants};

/// Why a storage cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// No adapter is loaded for the storage's type.
    UnknownType(String),
    /// The sandbox grant was refused (e.g. a directory outside the document root).
    Refused { field: String, message: String },
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::UnknownType(t) => write!(f, "no adapter is loaded for storage type {t:?}"),
            ConnectError::Refused { message, .. } => f.write_str(message),
        }
    }
}

/// A JSON field value in the plain-text form the WIT `open` takes; `None` for null.
fn plain(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The server environment's value for an empty setting, only for variables the operator listed.
fn ambient(app: &App, variable: Option<&str>) -> Option<String> {
    let variable = variable?;
    if !app.settings.ambient_credentials.iter().any(|v| v == variable) {
        return None;
    }
    std::env::var(variable).ok().filter(|v| !v.is_empty())
}

/// Opens a session on `storage`. Directory settings are checked against the document root and
/// replaced by the directory's path relative to it.
pub fn connect(app: &App, storage: &Storage) -> Result<Session, ConnectError> {
    let adapter =
        app.registry.get(&storage.type_name).ok_or_else(|| ConnectError::UnknownType(storage.type_name.clone()))?;
    let info = &adapter.info;
    let value = |name: &str| storage.fields.get(name).or_else(|| storage.secrets.get(name)).and_then(plain);
    let (mut grant, rewritten) = grants::resolve(info, storage.direction, app.settings.document_root.as_deref(), value)
        .map_err(|r| ConnectError::Refused { field: r.field, message: r.message })?;
    grants::restrict(&mut grant, info, &app.settings.allowed_hosts)
        .map_err(|r| ConnectError::Refused { field: r.field, message: r.message })?;
    grant.allow_private_addresses = app.settings.allow_private_addresses;
    let (settings, secrets) = split_settings(info, |spec| {
        let v = match rewritten.iter().find(|(k, _)| *k == spec.name) {
            Some((_, rel)) => Some(rel.clone()),
            None => value(&spec.name)
                .filter(|v| !v.is_empty())
                .or_else(|| ambient(app, spec.env_fallback.as_deref()))
                .or_else(|| spec.default.as_ref().and_then(plain)),
        }?;
        Some(match spec.kind {
            SettingKind::Boolean => (v == "true").to_string(),
            _ => v,
        })
    });
    Ok(app.registry.session(adapter.clone(), grant, settings, secrets))
}

/// Idle sessions of recently used storages, so a request (resolving a URI, serving a task page)
/// reuses a live adapter instance instead of instantiating one. Keyed by storage id and a
/// fingerprint of its configuration: an edited storage never gets an instance opened with the old
/// settings or secrets.
#[derive(Default)]
pub struct SessionPool {
    idle: std::sync::Mutex<std::collections::HashMap<(i64, u64), Vec<Session>>>,
}

/// Idle instances kept per storage.
pub const POOL_PER_STORAGE: usize = 8;

fn fingerprint(storage: &Storage) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&storage.type_name, storage.direction.as_str()).hash(&mut h);
    serde_json::Value::Object(storage.fields.clone()).to_string().hash(&mut h);
    serde_json::Value::Object(storage.secrets.clone()).to_string().hash(&mut h);
    h.finish()
}

impl SessionPool {
    /// An idle session of `storage`, or a new one.
    pub fn checkout(&self, app: &App, storage: &Storage) -> Result<Session, ConnectError> {
        let key = (storage.id, fingerprint(storage));
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&key).and_then(Vec::pop);
        match pooled {
            Some(session) => Ok(session),
            None => connect(app, storage),
        }
    }

    /// Drops the idle sessions of a storage (after it is edited or deleted), so no instance opened
    /// with old settings or secrets lingers.
    pub fn forget(&self, storage_id: i64) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).retain(|(id, _), _| *id != storage_id);
    }

    /// Drops every idle session (after an adapter is installed or replaced).
    pub fn clear(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Returns a session for reuse. It is dropped instead when the storage already has enough idle
    /// ones, or when its adapter has been replaced meanwhile.
    pub fn checkin(&self, app: &App, storage: &Storage, session: Session) {
        if app.registry.get(&storage.type_name).is_none_or(|a| a.hash != session.adapter_hash()) {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry((storage.id, fingerprint(storage))).or_default();
        if list.len() < POOL_PER_STORAGE {
            list.push(session);
        }
    }
}
