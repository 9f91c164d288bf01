//! Opening adapter sessions on storages, for everything that reaches a storage: sync, URI
//! resolving and streaming, connection checks, export on save and `stowage conformance`. A
//! storage's settings become what its adapter's `open` takes, and the sandbox grant they imply is
//! checked against the operator's [`Policy`]. Idle sessions are pooled per storage.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::Session;
use super::grants::{self, Grant, HostRule};
use super::registry::{Adapter, Registry, split_settings};
use crate::domain::{Direction, SettingKind, Storage};

/// What the operator allows every storage (`stowage serve` flags; see `config.rs`).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Directory settings must lie under it; none refuses them (`--document-root`).
    pub document_root: Option<PathBuf>,
    /// Hosts adapters may reach; empty allows any the manifest asks for (`--allowed-hosts`).
    pub allowed_hosts: Vec<HostRule>,
    /// Loopback and private addresses may be reached (`--allow-private-addresses`).
    pub allow_private_addresses: bool,
    /// Server environment variables that may fill empty settings (`--ambient-credentials`).
    pub ambient_credentials: Vec<String>,
}

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

/// Idle instances kept per storage.
pub const POOL_PER_STORAGE: usize = 8;

/// Opens sessions on the registry's adapters under one [`Policy`], and keeps idle ones of recently
/// used storages so a request (resolving a URI, serving a task page) reuses a live instance. Idle
/// sessions are keyed by storage id and a fingerprint of its configuration, so an edited storage
/// never gets an instance opened with old settings or secrets, and one of a replaced adapter is
/// never handed out.
pub struct Sessions {
    registry: Arc<Registry>,
    policy: Policy,
    idle: Mutex<HashMap<(i64, u64), Vec<Session>>>,
}

fn fingerprint(storage: &Storage) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&storage.type_name, storage.direction.as_str()).hash(&mut h);
    serde_json::Value::Object(storage.fields.clone()).to_string().hash(&mut h);
    serde_json::Value::Object(storage.secrets.clone()).to_string().hash(&mut h);
    h.finish()
}

impl Sessions {
    /// Sessions on `registry`'s adapters, allowed what `policy` allows.
    pub fn new(registry: Arc<Registry>, policy: Policy) -> Sessions {
        Sessions { registry, policy, idle: Mutex::default() }
    }

    /// Opens a new session on `storage`. Directory settings are checked against the document root
    /// and replaced by the directory's path relative to it.
    pub fn open(&self, storage: &Storage) -> Result<Session, ConnectError> {
        let adapter = self
            .registry
            .get(&storage.type_name)
            .ok_or_else(|| ConnectError::UnknownType(storage.type_name.clone()))?;
        let value = |name: &str| storage.fields.get(name).or_else(|| storage.secrets.get(name)).and_then(plain);
        self.open_adapter(adapter, storage.direction, value)
    }

    /// Opens a session on `adapter` in `direction` whose settings and secrets `value` gives by
    /// name (plain text); an empty or missing one falls back to an allowed ambient variable, then
    /// to the manifest's default. `stowage conformance` opens its session here too.
    pub fn open_adapter(
        &self,
        adapter: Arc<Adapter>,
        direction: Direction,
        value: impl Fn(&str) -> Option<String>,
    ) -> Result<Session, ConnectError> {
        let info = &adapter.info;
        let refused = |r: grants::GrantRefused| ConnectError::Refused { field: r.field, message: r.message };
        let (mut grant, rewritten): (Grant, _) =
            grants::resolve(info, direction, self.policy.document_root.as_deref(), &value).map_err(refused)?;
        grants::restrict(&mut grant, info, &self.policy.allowed_hosts).map_err(refused)?;
        grant.allow_private_addresses = self.policy.allow_private_addresses;
        let (settings, secrets) = split_settings(info, |spec| {
            let v = match rewritten.iter().find(|(k, _)| *k == spec.name) {
                Some((_, rel)) => Some(rel.clone()),
                None => value(&spec.name)
                    .filter(|v| !v.is_empty())
                    .or_else(|| self.ambient(spec.env_fallback.as_deref()))
                    .or_else(|| spec.default.as_ref().and_then(plain)),
            }?;
            Some(match spec.kind {
                SettingKind::Boolean => (v == "true").to_string(),
                _ => v,
            })
        });
        Ok(self.registry.session(adapter, grant, settings, secrets))
    }

    /// The server environment's value for an empty setting, only for variables the operator listed.
    fn ambient(&self, variable: Option<&str>) -> Option<String> {
        let variable = variable?;
        if !self.policy.ambient_credentials.iter().any(|v| v == variable) {
            return None;
        }
        std::env::var(variable).ok().filter(|v| !v.is_empty())
    }

    /// Whether `session` runs the adapter now loaded for its storage's type.
    fn current(&self, storage: &Storage, session: &Session) -> bool {
        self.registry.get(&storage.type_name).is_some_and(|a| a.hash == session.adapter_hash())
    }

    /// An idle session of `storage` (of the adapter loaded now), or a new one.
    pub fn checkout(&self, storage: &Storage) -> Result<Session, ConnectError> {
        let key = (storage.id, fingerprint(storage));
        loop {
            let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&key).and_then(Vec::pop);
            match pooled {
                Some(session) if self.current(storage, &session) => return Ok(session),
                // Opened on an adapter replaced since: dropped.
                Some(_) => continue,
                None => return self.open(storage),
            }
        }
    }

    /// Returns a session for reuse. It is dropped instead when the storage already has enough idle
    /// ones, or when its adapter has been replaced meanwhile.
    pub fn checkin(&self, storage: &Storage, session: Session) {
        if !self.current(storage, &session) {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry((storage.id, fingerprint(storage))).or_default();
        if list.len() < POOL_PER_STORAGE {
            list.push(session);
        }
    }

    /// Drops the idle sessions of a storage (after it is edited or deleted), so no instance opened
    /// with old settings or secrets lingers.
    pub fn forget(&self, storage_id: i64) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).retain(|(id, _), _| *id != storage_id);
    }
}
