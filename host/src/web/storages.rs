//! Cloud Storage, the guide's Settings > Cloud Storage: `GET /projects/{id}/settings/storage`
//! shows source and target storages side by side, and the "Add Source Storage" / "Add Target
//! Storage" dialogs; `GET /projects/{id}/settings/storage/status` is what the page polls while a
//! sync runs.
//!
//! A dialog's storage types are the adapters loaded at the moment the page is shown, and each
//! type's fields are the API's fields of that type (`api::storages::field_specs`: the host's
//! common ones plus the adapter's manifest), so an adapter needs no page code. Secrets are
//! password inputs that are never filled: no page carries a stored secret.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::projects::title_of;
use super::{Nav, PageError, PageResult, Viewer, html};
use crate::App;
use crate::api::storages::{FieldSpec, field_specs, storage_json};
use crate::domain::{AdapterInfo, Direction, OnChange, OnDelete, SettingKind, Storage, SyncStatus};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/projects/{id}/settings/storage", get(page))
        .route("/projects/{id}/settings/storage/status", get(status))
}

/// Field labels in the words of Label Studio's storage guide and forms, by API field name; a
/// field the guide does not name is labelled by its adapter's help text.
const GUIDE_LABELS: [(&str, &str); 27] = [
    ("title", "Storage Title"),
    ("description", "Description"),
    ("bucket", "Bucket Name"),
    ("prefix", "Bucket Prefix"),
    ("regex_filter", "File Filter Regex"),
    ("use_blob_urls", "Treat every bucket object as a source file"),
    ("recursive_scan", "Recursive scan"),
    ("presign", "Use pre-signed URLs"),
    ("presign_ttl", "Expire pre-signed URLs (minutes)"),
    ("region_name", "Region Name"),
    ("s3_endpoint", "S3 Endpoint"),
    ("aws_access_key_id", "Access Key ID"),
    ("aws_secret_access_key", "Secret Access Key"),
    ("aws_session_token", "Session Token"),
    ("aws_sse_kms_key_id", "SSE KMS Key ID"),
    ("google_application_credentials", "Google Application Credentials"),
    ("google_project_id", "Google Project ID"),
    ("container", "Container Name"),
    ("account_name", "Account Name"),
    ("account_key", "Account Key"),
    ("host", "Host"),
    ("port", "Port"),
    ("password", "Password"),
    ("can_delete_objects", "Can delete objects from storage"),
    ("sync_on_change", "When a synced object changes"),
    ("sync_on_delete", "When a synced object is deleted"),
    ("max_delete_percent", "Largest share of tasks one sync may delete (%)"),
];

/// Help for the host's own fields (the adapter's manifest has the help of its settings).
const HOST_HELP: [(&str, &str); 10] = [
    ("title", "A name to tell this storage from the project's others."),
    ("regex_filter", "Only object keys matching this regular expression are synced; empty syncs all."),
    (
        "use_blob_urls",
        "Each object becomes one task holding its URL (images, audio, video); off reads objects as task files (JSON, JSONL).",
    ),
    ("recursive_scan", "Also list the objects in the folders under the prefix."),
    (
        "presign",
        "Serve objects to the browser by a pre-signed URL of the storage; off streams them through this server.",
    ),
    ("presign_ttl", "How long a pre-signed URL stays valid, in minutes."),
    ("can_delete_objects", "Deleting an annotation also deletes its object in the storage."),
    ("sync_on_change", "keep: the task stays as it is; update: the task data is read again."),
    ("sync_on_delete", "keep: the task stays; mark: the task is marked; delete: the task is removed."),
    ("max_delete_percent", "A sync that would remove more than this share of the storage's tasks removes none."),
];

fn lookup(table: &[(&str, &'static str)], name: &str) -> Option<&'static str> {
    table.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
}

/// One input of a dialog.
pub(super) struct FormField {
    name: String,
    label: String,
    help: String,
    /// `text`, `password`, `number`, `checkbox` or `select`.
    input: &'static str,
    /// `text`, `boolean` or `integer`: how the script sends the value.
    kind: &'static str,
    required: bool,
    /// The default shown in a new storage's form.
    value: String,
    checked: bool,
    choices: Vec<String>,
}

impl FormField {
    fn of(spec: &FieldSpec, info: &AdapterInfo) -> FormField {
        let setting = info.settings.iter().find(|s| s.name == spec.name);
        let label = if spec.directory {
            // Label Studio's local files storage calls its directory this.
            "Absolute local path".to_string()
        } else if spec.name == "prefix" && info.settings.iter().any(|s| s.name == "container") {
            "Container Prefix".to_string()
        } else if let Some(l) = lookup(&GUIDE_LABELS, &spec.name) {
            l.to_string()
        } else {
            setting.map(|s| label_of_help(&s.help)).filter(|l| !l.is_empty()).unwrap_or_else(|| spec.name.clone())
        };
        let help = match setting {
            Some(s) if !s.help.eq_ignore_ascii_case(&label) => s.help.clone(),
            Some(_) => String::new(),
            None => lookup(&HOST_HELP, &spec.name).unwrap_or_default().to_string(),
        };
        let choices = match spec.name.as_str() {
            "sync_on_change" if !spec.adapter => OnChange::CHOICES.map(String::from).to_vec(),
            "sync_on_delete" if !spec.adapter => OnDelete::CHOICES.map(String::from).to_vec(),
            _ => Vec::new(),
        };
        let (input, kind) = match spec.kind {
            _ if !choices.is_empty() => ("select", "text"),
            SettingKind::Boolean => ("checkbox", "boolean"),
            SettingKind::Integer => ("number", "integer"),
            SettingKind::Text if spec.secret => ("password", "text"),
            SettingKind::Text => ("text", "text"),
        };
        let value = match &spec.default {
            // A secret's default is never shown either.
            _ if spec.secret => String::new(),
            Value::Null | Value::Bool(_) => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        FormField {
            name: spec.name.clone(),
            label,
            help,
            input,
            kind,
            required: spec.required,
            value,
            checked: spec.default.as_bool() == Some(true) || spec.default.as_str() == Some("true"),
            choices,
        }
    }
}

/// The label of a setting the guide does not name: its help text up to the first aside (`(`,
/// `;`, `,`, `:`), so "Shared access signature (with or without ...)" is labelled "Shared access
/// signature" and the whole text stays below as help.
fn label_of_help(help: &str) -> String {
    help.split(['(', ';', ',', ':']).next().unwrap_or(help).trim().to_string()
}

/// A storage type in a dialog's select, with its form.
pub(super) struct TypeForm {
    name: String,
    title: String,
    fields: Vec<FormField>,
}

/// The form of a type in one direction: title first, the adapter's settings, then the host's.
fn type_form(info: &AdapterInfo, dir: Direction) -> TypeForm {
    let specs = field_specs(info, dir);
    let title = title_spec();
    let (adapter, host): (Vec<&FieldSpec>, Vec<&FieldSpec>) = specs.iter().partition(|s| s.adapter);
    let fields = std::iter::once(&title).chain(adapter).chain(host).map(|s| FormField::of(s, info)).collect();
    TypeForm { name: info.type_name.clone(), title: info.title.clone(), fields }
}

/// The `title` field, common to every storage (Label Studio's `StorageInfo.title`).
fn title_spec() -> FieldSpec {
    FieldSpec {
        name: "title".into(),
        kind: SettingKind::Text,
        default: Value::Null,
        secret: false,
        required: false,
        adapter: false,
        location: false,
        directory: false,
    }
}

/// A storage's name on the page: its title, else its type and id.
pub(super) fn name_of(s: &Storage) -> String {
    match s.title.as_deref() {
        Some(t) if !t.trim().is_empty() => t.to_string(),
        _ => format!("{} #{}", s.type_name, s.id),
    }
}

/// A status as the page writes it: a word and a symbol, so colour is never the only sign.
fn status_label(s: SyncStatus) -> &'static str {
    match s {
        SyncStatus::Initialized => "○ Not synced yet",
        SyncStatus::Queued => "◔ Queued",
        SyncStatus::InProgress => "◑ In progress",
        SyncStatus::Completed => "✓ Completed",
        SyncStatus::CompletedWithErrors => "⚠ Completed with errors",
        SyncStatus::Failed => "✕ Failed",
    }
}

/// An API timestamp (`2026-12-08T03:37:31.302384Z`) as a person reads it, to the second.
fn readable_time(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map_or_else(|_| t.to_string(), |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// One storage's card.
pub(super) struct Card {
    /// `import-3`: unique on the page.
    key: String,
    id: i64,
    type_name: String,
    type_title: String,
    name: String,
    status: &'static str,
    status_label: &'static str,
    last_sync: String,
    last_sync_count: String,
    /// Tasks linked (source) or annotations written (target).
    count: i64,
    traceback: String,
    /// The storage's API address (`/api/storages/export/s3/3`).
    api: String,
    /// The storage as the API returns it (never a secret): what Edit fills the dialog with.
    values: String,
}

fn api_base(dir: Direction, type_name: &str) -> String {
    match dir {
        Direction::Import => format!("/api/storages/{type_name}"),
        Direction::Export => format!("/api/storages/export/{type_name}"),
    }
}

fn card(app: &App, s: &Storage) -> PageResult<Card> {
    let count = match s.direction {
        Direction::Import => app.store.import_link_count(s.id)?,
        Direction::Export => app.store.export_link_count(s.id)?,
    };
    let type_title =
        app.registry.get(&s.type_name).map(|a| a.info.title.clone()).unwrap_or_else(|| s.type_name.clone());
    Ok(Card {
        key: format!("{}-{}", s.direction.as_str(), s.id),
        id: s.id,
        type_name: s.type_name.clone(),
        type_title,
        name: name_of(s),
        status: s.sync.status.as_str(),
        status_label: status_label(s.sync.status),
        last_sync: s.sync.last_sync.as_deref().map_or_else(|| "never".into(), readable_time),
        last_sync_count: s.sync.last_sync_count.map(|n| n.to_string()).unwrap_or_else(|| "—".into()),
        count,
        traceback: s.sync.traceback.clone().unwrap_or_default(),
        api: format!("{}/{}", api_base(s.direction, &s.type_name), s.id),
        values: storage_json(app, s).to_string(),
    })
}

/// Source or target storages, with their dialog.
pub(super) struct Column {
    dir: &'static str,
    heading: &'static str,
    add_label: &'static str,
    count_label: &'static str,
    empty: &'static str,
    cards: Vec<Card>,
    types: Vec<TypeForm>,
}

#[derive(Template)]
#[template(path = "storage.html")]
struct StoragePage {
    nav: Nav,
    project_id: i64,
    title: String,
    columns: Vec<Column>,
}

fn column(app: &App, project: i64, dir: Direction) -> PageResult<Column> {
    let cards = app.store.storages(dir, None, project)?.iter().map(|s| card(app, s)).collect::<PageResult<_>>()?;
    let mut types: Vec<TypeForm> = app
        .registry
        .all()
        .iter()
        .filter(|a| dir == Direction::Import || a.info.capabilities.write)
        .map(|a| type_form(&a.info, dir))
        .collect();
    types.sort_by(|a, b| a.title.cmp(&b.title));
    Ok(match dir {
        Direction::Import => Column {
            dir: "import",
            heading: "Source Cloud Storage",
            add_label: "Add Source Storage",
            count_label: "Tasks",
            empty: "No source storage yet: add one, then Sync to create a task for each object.",
            cards,
            types,
        },
        Direction::Export => Column {
            dir: "export",
            heading: "Target Cloud Storage",
            add_label: "Add Target Storage",
            count_label: "Annotations",
            empty: "No target storage yet: add one to write every annotation to it as JSON.",
            cards,
            types,
        },
    })
}

async fn page(State(app): State<Arc<App>>, viewer: Viewer, Path(id): Path<i64>) -> PageResult<Response> {
    let project = app.store.project(id)?.ok_or(PageError::NotFound)?;
    let columns = vec![column(&app, id, Direction::Import)?, column(&app, id, Direction::Export)?];
    Ok(html(&StoragePage { nav: viewer.nav(), project_id: id, title: title_of(&project), columns })?.into_response())
}

/// `GET .../settings/storage/status`: what each card shows that a sync changes, by card key;
/// 401 once the session has ended (the page's script then asks for a reload, where a redirect to
/// the sign-in page would only confuse its JSON parsing).
async fn status(State(app): State<Arc<App>>, viewer: Option<Viewer>, Path(id): Path<i64>) -> PageResult<Response> {
    if viewer.is_none() {
        return Ok((axum::http::StatusCode::UNAUTHORIZED, Json(json!({"detail": "Signed out."}))).into_response());
    }
    app.store.project(id)?.ok_or(PageError::NotFound)?;
    let mut cards = Vec::new();
    for dir in [Direction::Import, Direction::Export] {
        for s in app.store.storages(dir, None, id)? {
            let c = card(&app, &s)?;
            cards.push(json!({
                "key": c.key, "status": c.status, "status_label": c.status_label, "count": c.count,
                "last_sync": c.last_sync, "last_sync_count": c.last_sync_count, "traceback": c.traceback,
            }));
        }
    }
    Ok(Json(Value::Array(cards)).into_response())
}
