//! Plain types shared by the API, the sync engine, the store and the plugin runtime
//! (no axum, wasmtime or rusqlite types here).

use serde::Serialize;

/// Import (source) or export (target) storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Import,
    Export,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Import => "import",
            Direction::Export => "export",
        }
    }
}

/// Value type of an adapter setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingKind {
    Text,
    Boolean,
    Integer,
}

/// One setting an adapter takes, from its manifest (`describe`).
#[derive(Debug, Clone, Serialize)]
pub struct SettingSpec {
    pub name: String,
    pub kind: SettingKind,
    pub secret: bool,
    pub required: bool,
    pub default: Option<serde_json::Value>,
    /// Default of export storages when it differs from `default`.
    pub export_default: Option<serde_json::Value>,
    /// Server environment variable used when the setting is empty, if the operator allows
    /// ambient credentials.
    pub env_fallback: Option<String>,
    pub help: String,
}

/// A sandbox capability an adapter asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantRequest {
    /// Preopen the directory named by this setting at `/storage`.
    Directory(String),
    /// Outbound HTTP to the host of the URL in `endpoint_setting`, or, when that setting is
    /// empty, to hosts matching `default_hosts` (`name` or `*.suffix`).
    Http { endpoint_setting: String, default_hosts: Vec<String> },
    /// TCP to the host and port named by two settings (with defaults).
    Tcp { host_setting: String, port_setting: String, default_host: String, default_port: u16 },
}

/// What an adapter can do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub read: bool,
    pub write: bool,
    pub delete: bool,
    pub presign: bool,
}

/// An adapter's manifest: read once at load time.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterInfo {
    pub type_name: String,
    pub title: String,
    pub capabilities: Capabilities,
    pub settings: Vec<SettingSpec>,
    pub grants: Vec<GrantRequest>,
    pub regex_on_basename: bool,
    /// A key-value store (Redis): no folders, every value is task JSON.
    pub key_value: bool,
    /// Schemes of the blob URIs the adapter writes (`s3`), resolved through `key-of-uri`.
    pub uri_schemes: Vec<String>,
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// Bytes.
    pub size: u64,
    pub etag: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub last_modified: Option<u64>,
}

/// One page of a listing; `next_cursor` is `None` on the last page.
#[derive(Debug, Clone)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub next_cursor: Option<String>,
}

/// Bytes read from a storage.
#[derive(Debug, Clone)]
pub struct ObjectData {
    pub body: Vec<u8>,
    /// Size of the whole object in bytes.
    pub total_size: u64,
    pub etag: Option<String>,
    pub content_type: Option<String>,
}

/// A user of the API.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    /// An administrator: may install storage adapters (`POST /api/adapters`).
    pub is_superuser: bool,
}

/// A labeling project.
#[derive(Debug, Clone)]
pub struct Project {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub label_config: String,
    pub created_by: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

/// A task as stored; counts are computed by the store.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: i64,
    pub project_id: i64,
    pub inner_id: i64,
    pub data: serde_json::Value,
    pub meta: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
    pub total_annotations: i64,
    pub cancelled_annotations: i64,
    pub total_predictions: i64,
    /// Key of the storage object the task was imported from, if any.
    pub storage_filename: Option<String>,
}

/// A task to create, with the annotations and predictions that came with it.
#[derive(Debug, Clone, Default)]
pub struct NewTask {
    pub data: serde_json::Value,
    pub meta: serde_json::Value,
    pub annotations: Vec<NewAnnotation>,
    pub predictions: Vec<NewPrediction>,
}

/// An annotation to create. `result` is Label Studio's list of regions; `lead_time` is in seconds.
#[derive(Debug, Clone, Default)]
pub struct NewAnnotation {
    pub result: serde_json::Value,
    pub completed_by: Option<i64>,
    pub was_cancelled: bool,
    pub ground_truth: bool,
    pub lead_time: Option<f64>,
}

/// A prediction to create (`result` as in annotations; `score` model confidence, if given).
#[derive(Debug, Clone, Default)]
pub struct NewPrediction {
    pub result: serde_json::Value,
    pub score: Option<f64>,
    pub model_version: String,
}

/// A stored annotation; timestamps in Label Studio's API format.
#[derive(Debug, Clone)]
pub struct Annotation {
    pub id: i64,
    pub task_id: i64,
    pub project_id: i64,
    pub result: serde_json::Value,
    pub completed_by: Option<i64>,
    pub was_cancelled: bool,
    pub ground_truth: bool,
    pub lead_time: Option<f64>,
    pub created_at: String,
    pub updated_at: String,
}

/// A stored prediction.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub id: i64,
    pub task_id: i64,
    pub project_id: i64,
    pub result: serde_json::Value,
    pub score: Option<f64>,
    pub model_version: String,
    pub created_at: String,
}

/// A source or target storage. `fields` holds the type's non-secret API fields (`path`,
/// `regex_filter`, `use_blob_urls`, ...); `secrets` the write-only ones, never returned and never
/// printed (`Debug` shows their names only).
#[derive(Clone)]
pub struct Storage {
    pub id: i64,
    pub direction: Direction,
    pub type_name: String,
    pub project_id: i64,
    pub title: Option<String>,
    pub description: Option<String>,
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub secrets: serde_json::Map<String, serde_json::Value>,
    pub synchronizable: bool,
    /// Label Studio's status: `initialized|queued|in_progress|failed|completed|completed_with_errors`.
    pub status: String,
    pub traceback: Option<String>,
    pub meta: serde_json::Value,
    pub last_sync: Option<String>,
    pub last_sync_count: Option<i64>,
    pub last_sync_job: Option<String>,
    pub created_at: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("id", &self.id)
            .field("direction", &self.direction)
            .field("type_name", &self.type_name)
            .field("project_id", &self.project_id)
            .field("fields", &self.fields)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// A storage not yet saved (`id` 0, status `initialized`), e.g. to validate a create request.
    pub fn new(
        direction: Direction,
        type_name: &str,
        project_id: i64,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Storage {
        Storage {
            id: 0,
            direction,
            type_name: type_name.into(),
            project_id,
            title: None,
            description: None,
            fields,
            secrets: serde_json::Map::new(),
            synchronizable: true,
            status: "initialized".into(),
            traceback: None,
            meta: serde_json::json!({}),
            last_sync: None,
            last_sync_count: None,
            last_sync_job: None,
            created_at: String::new(),
        }
    }

    /// A non-empty text field, e.g. `regex_filter`; `None` when unset, null or empty.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(|v| v.as_str()).filter(|s| !s.is_empty())
    }

    /// A boolean field; unset or null is `false`.
    pub fn flag(&self, name: &str) -> bool {
        self.fields.get(name).and_then(|v| v.as_bool()).unwrap_or(false)
    }
}

/// Current time in Label Studio's API format, microseconds, UTC: `2026-11-24T23:06:27.347755Z`.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
