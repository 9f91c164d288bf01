//! Import and export storages of every loaded type: `/api/storages/{type}/...` and
//! `/api/storages/export/{type}/...` (reference §1). A type's fields are the host's common ones
//! (title, regex_filter, use_blob_urls, ...) plus the settings its adapter declares; secrets are
//! write-only. Create, PATCH and validate check the connection through the adapter.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{MatchedPath, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult, Body, Path, Query};
use super::openapi::{self, Routes, get, patch, post, put};
use super::{AppState, Caller};
use crate::App;
use crate::domain::{
    AdapterInfo, DEFAULT_MAX_DELETE_PERCENT, DEFAULT_PRESIGN_TTL_MINUTES, Direction, GrantRequest,
    MAX_PRESIGN_TTL_MINUTES, OnChange, OnDelete, SettingKind, SettingSpec, Storage,
};
use crate::error::{ErrorKind, StorageError};
use crate::plugin::ConnectError;
use crate::plugin::{Adapter, grants};
use crate::sync;

/// The storages routes.
pub fn routes() -> Routes {
    let directions =
        [("Import storages", "/api/storages", "source"), ("Export storages", "/api/storages/export", "target")];
    let mut routes = Routes::new("Storages");
    for (tag, base, kind) in directions {
        let r = Routes::new(tag)
            .route(base, [get("All storages of a project (`?project=`), every type", list_all)])
            .route(&format!("{base}/types"), [get("The storage types loaded", types)])
            .route(
                &format!("{base}/{{type}}"),
                [get("Storages of a type (`?project=`)", list), post("Create a storage", create)],
            )
            .route(&format!("{base}/{{type}}/validate"), [post("Check a storage's connection", validate)])
            .route(
                &format!("{base}/{{type}}/{{id}}"),
                [
                    get("Read a storage (never its secrets)", read),
                    patch("Change a storage", update),
                    put("Change a storage (as PATCH)", update),
                    openapi::delete("Delete a storage (its tasks stay)", delete),
                ],
            )
            .route(
                &format!("{base}/{{type}}/{{id}}/sync"),
                [post(
                    if kind == "source" { "Sync: import new objects as tasks" } else { "Sync: write annotations" },
                    sync_now,
                )
                .body(None)],
            );
        routes = routes.merge(r);
    }
    routes
}

/// Import or export, from the route that matched.
fn direction(path: &MatchedPath) -> Direction {
    if path.as_str().starts_with("/api/storages/export") { Direction::Export } else { Direction::Import }
}

/// One API field of a storage type.
pub(crate) struct FieldSpec {
    pub(crate) name: String,
    pub(crate) kind: SettingKind,
    pub(crate) default: Value,
    pub(crate) secret: bool,
    pub(crate) required: bool,
    /// Declared by the adapter (a connection setting), not by the host.
    pub(crate) adapter: bool,
    /// Decides where the stored secrets go: changing it requires the secrets again, so stored
    /// credentials never follow a storage elsewhere. Every plain adapter setting but `prefix`
    /// (Label Studio's folder inside the same bucket): bucket, container, region, endpoint,
    /// directory, host, port, database; an adapter setting has no way to say it is harmless, so
    /// the rule errs on the side of asking.
    pub(crate) location: bool,
    /// Names a directory the sandbox grants: stored normalised.
    pub(crate) directory: bool,
}

fn host_field(name: &str, kind: SettingKind, default: Value) -> FieldSpec {
    FieldSpec {
        name: name.into(),
        kind,
        default,
        secret: false,
        required: false,
        adapter: false,
        location: false,
        directory: false,
    }
}

/// The fields of a storage type in one direction, with Label Studio's defaults (reference §1.1).
pub(crate) fn field_specs(info: &AdapterInfo, dir: Direction) -> Vec<FieldSpec> {
    let mut specs = vec![
        host_field("regex_filter", SettingKind::Text, Value::Null),
        host_field("use_blob_urls", SettingKind::Boolean, Value::Bool(false)),
    ];
    match dir {
        Direction::Import => {
            if !info.key_value {
                specs.push(host_field("recursive_scan", SettingKind::Boolean, Value::Bool(false)));
            }
            // Sync policies (stowage's; absent in Label Studio, whose behaviour the defaults keep).
            specs.push(host_field("sync_on_change", SettingKind::Text, Value::from("keep")));
            specs.push(host_field("sync_on_delete", SettingKind::Text, Value::from("keep")));
            specs.push(host_field("max_delete_percent", SettingKind::Integer, Value::from(DEFAULT_MAX_DELETE_PERCENT)));
            if info.capabilities.presign {
                specs.push(host_field("presign", SettingKind::Boolean, Value::Bool(true)));
                // Minutes, as in Label Studio.
                specs.push(host_field("presign_ttl", SettingKind::Integer, Value::from(DEFAULT_PRESIGN_TTL_MINUTES)));
            }
        }
        Direction::Export => specs.push(host_field("can_delete_objects", SettingKind::Boolean, Value::Null)),
    }
    for s in &info.settings {
        specs.retain(|h| h.name != s.name);
        let default = match dir {
            Direction::Export => s.export_default.as_ref().or(s.default.as_ref()),
            Direction::Import => s.default.as_ref(),
        };
        specs.push(FieldSpec {
            name: s.name.clone(),
            kind: s.kind,
            default: default.cloned().unwrap_or(Value::Null),
            secret: s.secret,
            required: s.required,
            adapter: true,
            location: !s.secret && s.name != "prefix",
            directory: info.grants.contains(&GrantRequest::Directory(s.name.clone())),
        });
    }
    specs
}

/// Coerces a JSON value to a field's kind the way Django REST framework fields do.
fn coerce(kind: SettingKind, v: &Value) -> Result<Value, &'static str> {
    match (kind, v) {
        (_, Value::Null) => Ok(Value::Null),
        (SettingKind::Text, Value::String(_)) => Ok(v.clone()),
        (SettingKind::Text, Value::Number(n)) => Ok(Value::String(n.to_string())),
        (SettingKind::Text, Value::Bool(b)) => Ok(Value::String(b.to_string())),
        (SettingKind::Text, _) => Err("Not a valid string."),
        (SettingKind::Boolean, Value::Bool(_)) => Ok(v.clone()),
        (SettingKind::Boolean, Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Bool(true)),
            "false" | "0" | "no" | "off" | "" => Ok(Value::Bool(false)),
            _ => Err("Must be a valid boolean."),
        },
        (SettingKind::Boolean, Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
            Ok(Value::Bool(n.as_i64() == Some(1)))
        }
        (SettingKind::Boolean, _) => Err("Must be a valid boolean."),
        (SettingKind::Integer, Value::Number(n)) if n.is_i64() => Ok(v.clone()),
        (SettingKind::Integer, Value::String(s)) => {
            s.trim().parse::<i64>().map(Value::from).map_err(|_| "A valid integer is required.")
        }
        (SettingKind::Integer, _) => Err("A valid integer is required."),
    }
}

type Errors = BTreeMap<String, Vec<String>>;

fn add(errors: &mut Errors, field: &str, message: impl Into<String>) {
    errors.entry(field.to_string()).or_default().push(message.into());
}

/// Keys accepted and ignored when they are not fields of the storage at hand, as Label Studio
/// ignores them: read-only fields a client sends back as it read them, and the common fields of
/// other types or directions (`presign` on local files, `can_delete_objects` on an import).
const IGNORED_FIELDS: [&str; 19] = [
    "id",
    "type",
    "created_at",
    "last_sync",
    "last_sync_count",
    "last_sync_job",
    "status",
    "traceback",
    "meta",
    "created_ago",
    "regex_filter",
    "use_blob_urls",
    "recursive_scan",
    "presign",
    "presign_ttl",
    "can_delete_objects",
    "sync_on_change",
    "sync_on_delete",
    "max_delete_percent",
];

/// Applies the request body to `s` (a new storage or a stored one). A key that is neither a
/// common field nor one of the type's settings is refused (Label Studio ignores it): the manifest
/// describes the form, and a misspelt setting (`bucket_name`) silently ignored would leave a
/// storage misconfigured.
/// Returns the names of adapter settings whose value changed.
fn apply_body(
    app: &App,
    s: &mut Storage,
    specs: &[FieldSpec],
    body: &Map<String, Value>,
    errors: &mut Errors,
) -> ApiResult<Vec<String>> {
    if let Some(v) = body.get("project") {
        match v.as_i64() {
            Some(p) if app.store.project(p)?.is_some() => s.project_id = p,
            Some(p) => add(errors, "project", format!("Invalid pk \"{p}\" - object does not exist.")),
            None => add(errors, "project", "Incorrect type. Expected pk value."),
        }
    }
    for (name, slot) in [("title", &mut s.title), ("description", &mut s.description)] {
        if let Some(v) = body.get(name) {
            match coerce(SettingKind::Text, v) {
                Ok(Value::String(t)) => *slot = Some(t),
                Ok(_) => *slot = None,
                Err(m) => add(errors, name, m),
            }
        }
    }
    if let Some(v) = body.get("synchronizable") {
        match coerce(SettingKind::Boolean, v) {
            Ok(Value::Bool(b)) => s.synchronizable = b,
            Ok(_) => {}
            Err(m) => add(errors, "synchronizable", m),
        }
    }
    for key in body.keys() {
        let known = ["project", "title", "description", "synchronizable"].contains(&key.as_str())
            || IGNORED_FIELDS.contains(&key.as_str())
            || specs.iter().any(|f| f.name == *key);
        if !known {
            add(errors, key, format!("Unknown field: {} storage has no setting {key:?}.", s.type_name));
        }
    }
    let mut changed = Vec::new();
    for spec in specs {
        let Some(v) = body.get(&spec.name) else { continue };
        let v = match coerce(spec.kind, v) {
            Ok(Value::String(dir)) if spec.directory => Value::String(grants::normalize_directory(&dir)),
            // Clients send explicit nulls for fields they leave alone (the legacy SDK does);
            // a typed field with a default takes it.
            Ok(Value::Null) if spec.kind != SettingKind::Text => spec.default.clone(),
            Ok(v) => v,
            Err(m) => {
                add(errors, &spec.name, m);
                continue;
            }
        };
        let map = if spec.secret { &mut s.secrets } else { &mut s.fields };
        if spec.adapter && map.get(&spec.name).unwrap_or(&Value::Null) != &v {
            changed.push(spec.name.clone());
        }
        if v.is_null() && spec.secret {
            map.remove(&spec.name);
        } else {
            map.insert(spec.name.clone(), v);
        }
    }
    Ok(changed)
}

/// Fills defaults and checks required fields and `regex_filter`.
fn complete(s: &mut Storage, specs: &[FieldSpec], errors: &mut Errors) {
    for spec in specs.iter().filter(|f| !f.secret) {
        s.fields.entry(spec.name.clone()).or_insert_with(|| spec.default.clone());
    }
    for spec in specs.iter().filter(|f| f.required) {
        let map = if spec.secret { &s.secrets } else { &s.fields };
        if map.get(&spec.name).is_none_or(|v| v.is_null() || v.as_str() == Some("")) {
            add(errors, &spec.name, "This field is required.");
        }
    }
    let opts = s.options();
    if let Err(m) = sync::stages::compile_filter(opts.regex_filter.as_deref()) {
        add(errors, "regex_filter", m);
    }
    for (name, choices) in [("sync_on_change", &OnChange::CHOICES[..]), ("sync_on_delete", &OnDelete::CHOICES[..])] {
        match s.fields.get(name) {
            Some(Value::String(v)) if !choices.contains(&v.as_str()) => {
                add(errors, name, format!("\"{v}\" is not a valid choice."));
            }
            _ => {}
        }
    }
    if let Some(p) = s.fields.get("max_delete_percent").and_then(Value::as_i64).filter(|p| !(0..=100).contains(p)) {
        add(errors, "max_delete_percent", format!("Ensure this value is between 0 and 100 (got {p})."));
    }
    let ttl_range = 1..=MAX_PRESIGN_TTL_MINUTES as i64;
    if let Some(t) = s.fields.get("presign_ttl").and_then(Value::as_i64).filter(|t| !ttl_range.contains(t)) {
        add(
            errors,
            "presign_ttl",
            format!(
                "Ensure this value is between 1 and {} minutes (7 days, the longest a presigned URL may live; got {t}).",
                MAX_PRESIGN_TTL_MINUTES
            ),
        );
    }
}

/// Checks the sandbox grant and the connection (`backend.check`).
async fn validate_connection(app: &App, s: &Storage) -> ApiResult<()> {
    let mut session = app.sessions.open(s).map_err(|e| match e {
        ConnectError::UnknownType(_) => ApiError::not_found(),
        ConnectError::Refused { field, message } => ApiError::field(&field, message),
    })?;
    // The adapter's message is shown as is (Label Studio's own wording, e.g. "Cannot find bucket b in S3").
    let checked = session.check(s.direction).await;
    checked.map_err(|e| {
        let field = setting_blamed(&session.info().settings, &e).unwrap_or("non_field_errors");
        ApiError::field(field, e.message)
    })
}

/// The setting an adapter's `invalid-config` message is about: the message starts with the
/// setting's name (`region_name "eu-west-1" does not match ...`), so it is reported under that
/// field, as Label Studio's serializers report a field's problem (WIT `error.invalid-config`).
fn setting_blamed<'a>(settings: &'a [SettingSpec], e: &StorageError) -> Option<&'a str> {
    if e.kind != ErrorKind::InvalidConfig {
        return None;
    }
    let first = e.message.split([' ', ':']).next()?;
    settings.iter().map(|s| s.name.as_str()).find(|name| *name == first)
}

/// A storage as the API returns it: common fields, then the type's fields; never secrets.
pub(crate) fn storage_json(app: &App, s: &Storage) -> Value {
    let mut v = json!({
        "id": s.id,
        "type": s.type_name,
        "project": s.project_id,
        "title": s.title,
        "description": s.description,
        "created_at": s.created_at,
        "synchronizable": s.synchronizable,
        "last_sync": s.sync.last_sync,
        "last_sync_count": s.sync.last_sync_count,
        "last_sync_job": s.sync.last_sync_job,
        "status": s.sync.status.as_str(),
        "traceback": s.sync.traceback,
        "meta": s.sync.meta,
    });
    if let Some(adapter) = app.registry.get(&s.type_name) {
        for spec in field_specs(&adapter.info, s.direction).iter().filter(|f| !f.secret) {
            v[&spec.name] = s.fields.get(&spec.name).cloned().unwrap_or_else(|| spec.default.clone());
        }
    }
    v
}

fn adapter_or_404(app: &App, type_name: &str, dir: Direction) -> ApiResult<Arc<Adapter>> {
    app.registry
        .get(type_name)
        .filter(|a| dir == Direction::Import || a.info.capabilities.write)
        .ok_or_else(ApiError::not_found)
}

fn storage_or_404(app: &App, type_name: &str, dir: Direction, id: i64) -> ApiResult<Storage> {
    app.store.storage(id)?.filter(|s| s.type_name == type_name && s.direction == dir).ok_or_else(ApiError::not_found)
}

#[derive(Deserialize)]
struct ProjectQuery {
    project: Option<i64>,
}

async fn types(State(app): AppState, _: Caller, path: MatchedPath) -> Json<Value> {
    let dir = direction(&path);
    let types: Vec<Value> = app
        .registry
        .all()
        .into_iter()
        .filter(|a| dir == Direction::Import || a.info.capabilities.write)
        .map(|a| json!({"name": a.info.type_name, "title": a.info.title}))
        .collect();
    Json(Value::Array(types))
}

/// All storages of a project, every type (`[]` without `project`, as Label Studio).
async fn list_all(
    State(app): AppState,
    _: Caller,
    path: MatchedPath,
    Query(q): Query<ProjectQuery>,
) -> ApiResult<Json<Value>> {
    let Some(project) = q.project else { return Ok(Json(json!([]))) };
    let list = app.store.storages(direction(&path), None, project)?;
    Ok(Json(Value::Array(list.iter().map(|s| storage_json(&app, s)).collect())))
}

async fn list(
    State(app): AppState,
    _: Caller,
    path: MatchedPath,
    Path(type_name): Path<String>,
    Query(q): Query<ProjectQuery>,
) -> ApiResult<Json<Value>> {
    let dir = direction(&path);
    adapter_or_404(&app, &type_name, dir)?;
    let project = q.project.ok_or_else(|| ApiError::missing_query("project"))?;
    let list = app.store.storages(dir, Some(&type_name), project)?;
    Ok(Json(Value::Array(list.iter().map(|s| storage_json(&app, s)).collect())))
}

/// Builds a storage from a create or validate body; `Err` holds the validation errors.
fn from_body(app: &App, dir: Direction, type_name: &str, body: &Map<String, Value>) -> ApiResult<Storage> {
    let adapter = adapter_or_404(app, type_name, dir)?;
    let specs = field_specs(&adapter.info, dir);
    let mut s = Storage::new(dir, type_name, 0, Map::new());
    let mut errors = Errors::new();
    if body.get("project").is_none_or(Value::is_null) {
        add(&mut errors, "project", "This field is required.");
    }
    apply_body(app, &mut s, &specs, body, &mut errors)?;
    complete(&mut s, &specs, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(s)
}

async fn create(
    State(app): AppState,
    _: Caller,
    path: MatchedPath,
    Path(type_name): Path<String>,
    Body(body): Body<Map<String, Value>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let dir = direction(&path);
    let s = from_body(&app, dir, &type_name, &body)?;
    validate_connection(&app, &s).await?;
    let created = app.store.create_storage(&s)?;
    // Label Studio exports every existing annotation when a target storage is created
    // (`SYNC_ON_TARGET_STORAGE_CREATION`, default true); here in the background.
    if dir == Direction::Export {
        sync::request(&app, &created)?;
    }
    let stored = app.store.storage(created.id)?.ok_or_else(ApiError::not_found)?;
    Ok((StatusCode::CREATED, Json(storage_json(&app, &stored))))
}

/// `POST .../validate`: 200 with an empty body, or 400. With `id`, the stored secrets of that
/// storage fill in the ones not sent, but only for the same type and project and unchanged
/// connection settings (Label Studio copies any storage's secrets: reference §8.4).
async fn validate(
    State(app): AppState,
    _: Caller,
    path: MatchedPath,
    Path(type_name): Path<String>,
    Body(body): Body<Map<String, Value>>,
) -> ApiResult<StatusCode> {
    let dir = direction(&path);
    let mut s = from_body(&app, dir, &type_name, &body)?;
    if let Some(id) = body.get("id").and_then(Value::as_i64) {
        let stored = storage_or_404(&app, &type_name, dir, id)?;
        let info = &adapter_or_404(&app, &type_name, dir)?.info;
        // Stored secrets are reused only for the very same connection: every plain setting
        // equal, and no secret sent (a secret such as Azure's `account_name` may itself decide
        // where the others go).
        let same_connection =
            info.settings.iter().filter(|f| !f.secret).all(|f| stored.fields.get(&f.name) == s.fields.get(&f.name))
                && s.secrets.is_empty();
        if stored.project_id == s.project_id && same_connection {
            for (k, v) in stored.secrets {
                s.secrets.entry(k).or_insert(v);
            }
        }
    }
    validate_connection(&app, &s).await?;
    Ok(StatusCode::OK)
}

async fn read(
    State(app): AppState,
    _: Caller,
    path: MatchedPath,
    Path((type_name, id)): Path<(String, i64)>,
) -> ApiResult<Json<Value>> {
    let s = storage_or_404(&app, &type_name, direction(&path), id)?;
    Ok(Json(storage_json(&app, &s)))
}

/// PATCH (and PUT): only the fields sent change. Changing a connection setting requires sending
/// the secrets again, so stored credentials never follow a storage to a new endpoint
/// (reference §8.4).
async fn update(
    State(app): AppState,
    _: Caller,
    path: MatchedPath,
    Path((type_name, id)): Path<(String, i64)>,
    Body(body): Body<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let dir = direction(&path);
    let mut s = storage_or_404(&app, &type_name, dir, id)?;
    let specs = field_specs(&adapter_or_404(&app, &type_name, dir)?.info, dir);
    let mut errors = Errors::new();
    let project = s.project_id;
    let changed = apply_body(&app, &mut s, &specs, &body, &mut errors)?;
    // A new location, a new project (whose members would then use the credentials) or a new
    // secret (which may itself name the account, as Azure's `account_name`) takes the other
    // stored secrets only if they are sent again.
    let moved = s.project_id != project
        || changed.iter().any(|name| specs.iter().any(|f| f.name == *name && (f.location || f.secret)));
    if moved {
        for spec in specs.iter().filter(|f| f.secret && !body.contains_key(&f.name) && s.secrets.contains_key(&f.name))
        {
            add(&mut errors, &spec.name, "Enter this secret again when changing the connection settings.");
        }
    }
    complete(&mut s, &specs, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    if !changed.is_empty() {
        validate_connection(&app, &s).await?;
    }
    app.store.update_storage(&s)?;
    app.sessions.forget(s.id);
    Ok(Json(storage_json(&app, &s)))
}

async fn delete(
    State(app): AppState,
    _: Caller,
    path: MatchedPath,
    Path((type_name, id)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    storage_or_404(&app, &type_name, direction(&path), id)?;
    app.store.delete_storage(id)?;
    app.sessions.forget(id);
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a sync and answers at once with the storage, `queued` or `in_progress` (Label
/// Studio's worker mode: clients poll `status`). A sync requested while one is queued or running
/// returns that run.
async fn sync_now(
    State(app): AppState,
    _: Caller,
    path: MatchedPath,
    Path((type_name, id)): Path<(String, i64)>,
) -> ApiResult<Json<Value>> {
    let s = storage_or_404(&app, &type_name, direction(&path), id)?;
    if !s.synchronizable {
        return Err(ApiError::Raw(
            StatusCode::BAD_REQUEST,
            json!({"message": format!("Storage {id} is not synchronizable")}),
        ));
    }
    // Label Studio validates the connection first: a storage that cannot connect gets 400.
    validate_connection(&app, &s).await?;
    sync::request(&app, &s)?;
    Ok(Json(storage_json(&app, &storage_or_404(&app, &type_name, direction(&path), id)?)))
}
