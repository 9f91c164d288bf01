//! Opening an adapter session for a stored storage: its settings as the adapter takes them, and
//! the sandbox grant they imply.

use crate::App;
use crate::domain::{SettingKind, Storage};
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

/// The server environment's value for an empty setting, only when the operator allows it.
fn ambient(app: &App, variable: Option<&str>) -> Option<String> {
    if !app.settings.allow_ambient_credentials {
        return None;
    }
    std::env::var(variable?).ok().filter(|v| !v.is_empty())
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
    grant.allow_private_addresses = app.settings.allow_private_addresses;
    let mut settings = Vec::new();
    let mut secrets = Vec::new();
    for spec in &info.settings {
        let v = match rewritten.iter().find(|(k, _)| *k == spec.name) {
            Some((_, rel)) => Some(rel.clone()),
            None => value(&spec.name)
                .filter(|v| !v.is_empty())
                .or_else(|| ambient(app, spec.env_fallback.as_deref()))
                .or_else(|| spec.default.as_ref().and_then(plain)),
        };
        let Some(v) = v else { continue };
        let v = match spec.kind {
            SettingKind::Boolean => (v == "true").to_string(),
            _ => v,
        };
        if spec.secret { secrets.push((spec.name.clone(), v)) } else { settings.push((spec.name.clone(), v)) }
    }
    Ok(Session::new(adapter, app.registry.engine.clone(), app.registry.limits, grant, settings, secrets))
}
