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
    /// What the listing found but left out (adapters of WIT 0.3.0 and later report it).
    pub skipped: Vec<Skipped>,
}

/// A name a listing left out of its entries, and why (WIT 0.3.0 `skipped`).
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// A key or a folder (`dir/`), relative to the storage root.
    pub name: String,
    /// Shown to users.
    pub reason: String,
    /// An object that should have been imported (a failure of the run), not one the storage's
    /// rules leave out (only counted).
    pub error: bool,
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
    /// The import storage that object belongs to.
    pub storage_id: Option<i64>,
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
    /// Timestamps in Label Studio's API format, when the task file gave them; else now.
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// A prediction to create (`result` as in annotations; `score` model confidence, if given).
#[derive(Debug, Clone, Default)]
pub struct NewPrediction {
    pub result: serde_json::Value,
    pub score: Option<f64>,
    pub model_version: String,
    /// In Label Studio's API format, when the task file gave it; else now.
    pub created_at: Option<String>,
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
    /// Where its last (or current) sync stands.
    pub sync: SyncState,
    pub created_at: String,
}

/// A storage's sync columns, Label Studio's `StorageInfo` fields.
#[derive(Debug, Clone)]
pub struct SyncState {
    pub status: SyncStatus,
    /// Why the last run failed or which objects it could not import; `None` after a clean run.
    pub traceback: Option<String>,
    /// Timings and counters of the run (`attempts`, `time_queued`, `tasks_created`, ...).
    pub meta: serde_json::Value,
    /// When the last run ended, in Label Studio's API format.
    pub last_sync: Option<String>,
    /// Tasks created (import) or annotations written (export) by the last completed run.
    pub last_sync_count: Option<i64>,
    /// The id of the storage's last sync run (a decimal string), set when it is queued; Label
    /// Studio puts its RQ job id here.
    pub last_sync_job: Option<String>,
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
            .field("status", &self.sync.status)
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
            sync: SyncState {
                status: SyncStatus::Initialized,
                traceback: None,
                meta: serde_json::json!({}),
                last_sync: None,
                last_sync_count: None,
                last_sync_job: None,
            },
            created_at: String::new(),
        }
    }

    /// The host's options of this storage (filters, URL and sync policies), read from `fields`.
    pub fn options(&self) -> HostOptions {
        HostOptions::of(&self.fields)
    }

    /// A non-empty text field, e.g. `path`; `None` when unset, null or empty.
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

/// Label Studio's storage status (`io_storages/base_models.py::StorageInfo.Status`):
/// `initialized -> queued -> in_progress -> completed | completed_with_errors | failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncStatus {
    Initialized,
    Queued,
    InProgress,
    Failed,
    Completed,
    CompletedWithErrors,
}

impl SyncStatus {
    /// The API and database spelling (`in_progress`).
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Initialized => "initialized",
            SyncStatus::Queued => "queued",
            SyncStatus::InProgress => "in_progress",
            SyncStatus::Failed => "failed",
            SyncStatus::Completed => "completed",
            SyncStatus::CompletedWithErrors => "completed_with_errors",
        }
    }

    /// Reads [`as_str`](Self::as_str)'s spelling; anything else is `None`.
    pub fn parse(s: &str) -> Option<SyncStatus> {
        [
            SyncStatus::Initialized,
            SyncStatus::Queued,
            SyncStatus::InProgress,
            SyncStatus::Failed,
            SyncStatus::Completed,
            SyncStatus::CompletedWithErrors,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// A run in this status has ended (`completed`, `completed_with_errors`, `failed`).
    pub fn is_final(self) -> bool {
        matches!(self, SyncStatus::Failed | SyncStatus::Completed | SyncStatus::CompletedWithErrors)
    }
}

/// What a sync does with a task file whose etag, size or modification time changed
/// (storage field `sync_on_change`). Label Studio never looks again: `keep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnChange {
    #[default]
    Keep,
    /// Rewrite the data of its tasks that have no annotations; annotated ones are marked
    /// `meta.storage_object_changed`, never overwritten.
    Update,
}

/// What a sync does with the tasks of objects gone from the listing (storage field
/// `sync_on_delete`). Label Studio keeps them (its issue 4133): `keep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDelete {
    #[default]
    Keep,
    /// Mark them `meta.storage_object_missing`.
    Mark,
    /// Remove those without annotations; mark the annotated ones.
    Delete,
}

impl OnChange {
    /// Field values, as the API spells them.
    pub const CHOICES: [&str; 2] = ["keep", "update"];

    pub fn parse(s: &str) -> Option<OnChange> {
        match s {
            "keep" => Some(OnChange::Keep),
            "update" => Some(OnChange::Update),
            _ => None,
        }
    }
}

impl OnDelete {
    /// Field values, as the API spells them.
    pub const CHOICES: [&str; 3] = ["keep", "mark", "delete"];

    pub fn parse(s: &str) -> Option<OnDelete> {
        match s {
            "keep" => Some(OnDelete::Keep),
            "mark" => Some(OnDelete::Mark),
            "delete" => Some(OnDelete::Delete),
            _ => None,
        }
    }
}

/// Default of `max_delete_percent`: a run may remove or mark at most half of a storage's
/// linked objects (rclone's `--max-delete` brake, as a share).
pub const DEFAULT_MAX_DELETE_PERCENT: u32 = 50;
/// Default of `presign_ttl`, minutes (Label Studio's default).
pub const DEFAULT_PRESIGN_TTL_MINUTES: u64 = 1;
/// Longest `presign_ttl`, minutes: 7 days, the most a SigV4 presigned URL may live (AWS:
/// "X-Amz-Expires ... minimum 1 second, maximum 604800 seconds"); GCS V4 signed URLs share it.
/// Label Studio accepts up to 32,767 and hands out URLs that S3 refuses.
pub const MAX_PRESIGN_TTL_MINUTES: u64 = 7 * 24 * 60;

/// The options the host itself applies to a storage, whatever its type: typed once here, so no
/// other code reads them by name. Defaults are Label Studio's (reference §1.1).
#[derive(Debug, Clone, PartialEq)]
pub struct HostOptions {
    /// The adapter's `prefix` setting (object stores), empty when it has none.
    pub prefix: String,
    /// Python `re.match` pattern over keys (or basenames, per adapter); `None` matches all.
    pub regex_filter: Option<String>,
    /// One task per object (blob mode) instead of task files.
    pub use_blob_urls: bool,
    pub recursive_scan: bool,
    /// Resolve URIs to presigned URLs (else the service streams the bytes).
    pub presign: bool,
    /// Lifetime of a presigned URL, minutes (Label Studio's unit).
    pub presign_ttl_minutes: u64,
    /// Export: delete an annotation's object when the annotation is deleted.
    pub can_delete_objects: bool,
    pub sync_on_change: OnChange,
    pub sync_on_delete: OnDelete,
    /// Share of the linked objects (percent, 0-100) a run may remove or mark; more skips the
    /// removal phase.
    pub max_delete_percent: u32,
}

impl HostOptions {
    /// Reads the options from a storage's `fields`; missing or mistyped values take defaults
    /// (the API validated them on the way in).
    pub fn of(fields: &serde_json::Map<String, serde_json::Value>) -> HostOptions {
        let text = |n: &str| fields.get(n).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
        let flag = |n: &str, default: bool| fields.get(n).and_then(|v| v.as_bool()).unwrap_or(default);
        HostOptions {
            prefix: text("prefix").unwrap_or("").to_string(),
            regex_filter: text("regex_filter").map(str::to_string),
            use_blob_urls: flag("use_blob_urls", false),
            recursive_scan: flag("recursive_scan", false),
            presign: flag("presign", true),
            presign_ttl_minutes: fields
                .get("presign_ttl")
                .and_then(|v| v.as_u64())
                .unwrap_or(DEFAULT_PRESIGN_TTL_MINUTES),
            can_delete_objects: flag("can_delete_objects", false),
            sync_on_change: text("sync_on_change").and_then(OnChange::parse).unwrap_or_default(),
            sync_on_delete: text("sync_on_delete").and_then(OnDelete::parse).unwrap_or_default(),
            max_delete_percent: fields
                .get("max_delete_percent")
                .and_then(|v| v.as_u64())
                .map_or(DEFAULT_MAX_DELETE_PERCENT, |p| p.min(100) as u32),
        }
    }
}

/// The counters of one sync run, persisted with each committed page (so a resumed run keeps
/// counting) and shown in the storage's `meta` while it runs.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SyncCounters {
    /// Objects the listing returned (import) or annotations considered (export).
    pub objects_listed: u64,
    /// Listed objects that passed the filters.
    pub objects_matched: u64,
    /// Tasks created (import) or annotation objects written (export).
    pub tasks_created: u64,
    /// Tasks whose data was rewritten, or marked changed (`sync_on_change: update`).
    pub tasks_updated: u64,
    /// Tasks removed (`sync_on_delete: delete`) or objects deleted (export).
    pub tasks_removed: u64,
    /// Tasks marked `storage_object_missing` (`sync_on_delete: mark`, or annotated ones).
    pub tasks_marked: u64,
    /// Listing pages committed.
    pub pages_done: u64,
    /// Objects that could not be imported (or annotations not written; a folder whose names
    /// the adapter cannot read counts once); the first [`MAX_FAILURE_LINES`] are kept in
    /// `failures`.
    pub objects_failed: u64,
    /// Bad tasks skipped inside task files that otherwise imported (a JSONL line that is not
    /// JSON, an element that is not a task); each file's first ones are named in `failures`.
    pub tasks_skipped: u64,
    /// Names the listing left out by the storage's rules, not by error (a symbolic link leading
    /// out of a local storage's directory).
    #[serde(skip_serializing_if = "is_zero")]
    pub objects_left_out: u64,
    /// `key: reason`, one per failed object or bad task, at most [`MAX_FAILURE_LINES`].
    pub failures: Vec<String>,
    /// Lines left out of `failures` once it was full.
    #[serde(skip_serializing_if = "is_zero")]
    pub failures_unreported: u64,
    /// Tasks linked to the storage when the run started (Label Studio's `tasks_existed`).
    pub tasks_existed: Option<u64>,
    /// Tasks not created because another storage of the project already imported their object
    /// (the same bucket connected twice); Label Studio would create them again.
    pub tasks_already_imported: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Failure lines kept per run (the `traceback` says how many more there were).
pub const MAX_FAILURE_LINES: usize = 100;

impl SyncCounters {
    /// Records one failed object.
    pub fn fail(&mut self, line: String) {
        self.objects_failed += 1;
        self.report(line);
    }

    /// Records the bad tasks skipped in the task file `key`: `problems` names the first of
    /// them, `skipped` counts them all.
    pub fn skip(&mut self, key: &str, problems: &[String], skipped: u64) {
        self.tasks_skipped += skipped;
        for p in problems {
            self.report(format!("{key}: {p}"));
        }
        if skipped > problems.len() as u64 {
            self.report(format!("{key}: {} more bad tasks skipped", skipped - problems.len() as u64));
        }
    }

    fn report(&mut self, line: String) {
        if self.failures.len() < MAX_FAILURE_LINES {
            self.failures.push(line);
        } else {
            self.failures_unreported += 1;
        }
    }
}
