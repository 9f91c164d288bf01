//! Scenarios shared by the object-store backends (S3, GCS, Azure Blob), written once and run by
//! each backend's test file (`tests/s3.rs`, `tests/gcs.rs`, `tests/azure.rs`), as object_store's
//! `src/integration.rs` is called by each of its stores. A backend's file keeps only what is its
//! own (signed-URL formats, credential kinds, emulator quirks, its address policy cases).
//!
//! 1. A backend's test server implements [`ObjectStore`]: type name, URI scheme, bucket, endpoint,
//!    secrets and storage fields (from which the domain storage its adapter is driven with follows).
//! 2. A test gets its server (e.g. [`crate::s3_env`], skipping without one), starts a [`Service`]
//!    and calls a scenario, e.g. [`imports_follow_prefix_regex_and_recursion_rules`].
//! 3. Each scenario works under a fresh [`unique_prefix`] of the shared test bucket and seeds and
//!    reads objects through the backend's own adapter ([`session`]), so it needs no emulator client.
//!
//! ```no_run
//! # async fn example() {
//! use stowage_tests::{Service, object_store, s3_env};
//! let Some(s3) = s3_env() else { return };
//! object_store::imports_follow_prefix_regex_and_recursion_rules(&Service::start().await, &s3).await;
//! # }
//! ```

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use stowage::domain::{Direction, Storage};
use stowage::error::ErrorKind;
use stowage::plugin::Session;
use stowage::tasks::uri::resolver_url;

use crate::{AzureEnv, GcsEnv, Reply, S3Env, Service, TOKEN, unique_prefix};

/// One object-store backend's test server, as the shared scenarios see it.
pub trait ObjectStore {
    /// The storage type, in `/api/storages/{TYPE}` and the adapter's manifest (`s3`, `gcs`, `azure`).
    const TYPE: &'static str;
    /// The scheme of the task URIs a blob-mode import writes (`s3`, `gs`, `azure-blob`).
    const SCHEME: &'static str;
    /// The API field holding the server's address (`s3_endpoint`, `gcs_endpoint`, `azure_endpoint`).
    const ENDPOINT_FIELD: &'static str;
    /// The write-only fields of this storage type: no response carries them.
    const SECRET_FIELDS: &'static [&'static str];

    /// The bucket (Azure: container) the API tests share; each test works under its own prefix.
    fn bucket(&self) -> &str;
    /// The test server's address, as [`ENDPOINT_FIELD`](Self::ENDPOINT_FIELD) holds it.
    fn endpoint(&self) -> &str;
    /// The secret values [`fields`](Self::fields) sends: no response may contain them.
    fn secret_values(&self) -> Vec<&str>;
    /// API fields of a storage on `bucket` under `prefix`, with the credentials the tests use.
    fn fields(&self, bucket: &str, prefix: &str) -> Value;

    /// A domain storage on `bucket`, for driving the adapter directly (seeding, reading back): its
    /// [`fields`](Self::fields), the [`SECRET_FIELDS`](Self::SECRET_FIELDS) among them as secrets.
    fn storage(&self, direction: Direction, bucket: &str) -> Storage {
        let Value::Object(mut fields) = self.fields(bucket, "") else { unreachable!("fields are an object") };
        let mut storage = Storage::new(direction, Self::TYPE, 0, serde_json::Map::new());
        for secret in Self::SECRET_FIELDS {
            if let Some(value) = fields.remove(*secret) {
                storage.secrets.insert((*secret).into(), value);
            }
        }
        storage.fields = fields;
        storage
    }

    /// [`fields`](Self::fields) on the shared test bucket.
    fn prefix_fields(&self, prefix: &str) -> Value {
        self.fields(self.bucket(), prefix)
    }

    /// [`prefix_fields`](Self::prefix_fields) of a blob-mode storage (one task per object).
    fn blob_fields(&self, prefix: &str) -> Value {
        let mut fields = self.prefix_fields(prefix);
        fields["use_blob_urls"] = json!(true);
        fields
    }

    /// The task URI of `key` in the shared test bucket, e.g. `s3://bucket/key`.
    fn uri(&self, key: &str) -> String {
        format!("{}://{}/{key}", Self::SCHEME, self.bucket())
    }

    /// Raw data of the blob-mode tasks of `keys`, in order, under a project without a label
    /// config (the URI sits under Label Studio's `$undefined$`).
    fn blob_tasks(&self, keys: &[String]) -> Vec<Value> {
        keys.iter().map(|k| json!({"$undefined$": self.uri(k)})).collect()
    }
}

impl ObjectStore for S3Env {
    const TYPE: &'static str = "s3";
    const SCHEME: &'static str = "s3";
    const ENDPOINT_FIELD: &'static str = "s3_endpoint";
    const SECRET_FIELDS: &'static [&'static str] = &["aws_access_key_id", "aws_secret_access_key", "aws_session_token"];

    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn secret_values(&self) -> Vec<&str> {
        vec![&self.key_id, &self.secret]
    }

    fn fields(&self, bucket: &str, prefix: &str) -> Value {
        json!({
            "bucket": bucket,
            "prefix": prefix,
            "s3_endpoint": self.endpoint,
            "region_name": self.region,
            "aws_access_key_id": self.key_id,
            "aws_secret_access_key": self.secret,
        })
    }
}

impl ObjectStore for GcsEnv {
    const TYPE: &'static str = "gcs";
    const SCHEME: &'static str = "gs";
    const ENDPOINT_FIELD: &'static str = "gcs_endpoint";
    const SECRET_FIELDS: &'static [&'static str] = &["google_application_credentials"];

    fn bucket(&self) -> &str {
        &self.bucket
    }

    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// None, and not by oversight: the shared flows ([`fields`](Self::fields), hence
    /// `connection_checks`' leak check) configure no GCS secret at all, since fake-gcs-server
    /// checks no credentials; an empty list is the truth, not a placeholder, so the check is
    /// vacuous for GCS. The service-account key is sent only by `tests/gcs.rs`'s own tests:
    /// [`special_keys`] (an extra `google_application_credentials`) checks the field is
    /// write-only, and the malformed-key test that no answer repeats the key.
    fn secret_values(&self) -> Vec<&str> {
        vec![]
    }

    /// Anonymous: the emulator checks no credentials.
    fn fields(&self, bucket: &str, prefix: &str) -> Value {
        json!({
            "bucket": bucket,
            "prefix": prefix,
            "gcs_endpoint": self.endpoint,
            "google_project_id": self.project,
        })
    }
}

impl ObjectStore for AzureEnv {
    const TYPE: &'static str = "azure";
    const SCHEME: &'static str = "azure-blob";
    const ENDPOINT_FIELD: &'static str = "azure_endpoint";
    const SECRET_FIELDS: &'static [&'static str] = &["account_name", "account_key", "sas_token", "connection_string"];

    fn bucket(&self) -> &str {
        &self.container
    }

    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The account key (the account name is part of the path-style endpoint, which is shown).
    fn secret_values(&self) -> Vec<&str> {
        vec![&self.account_key]
    }

    /// Authenticated with the account key (SharedKey).
    fn fields(&self, container: &str, prefix: &str) -> Value {
        json!({
            "container": container,
            "prefix": prefix,
            "azure_endpoint": self.endpoint,
            "account_name": self.account_name,
            "account_key": self.account_key,
        })
    }
}

/// Sessions seeding at once: Azurite takes ~144 uploads/s one at a time, fake-gcs-server ~700/s.
const UPLOADERS: usize = 16;

/// The six special key names: space, `+`, `%` (encoded and bare), non-ASCII, `#`, `?` and `&`.
pub const SPECIAL_NAMES: [&str; 9] = [
    "sp ace.txt",
    "plus+sign.txt",
    "per%25cent%.txt",
    "ünïcödé 日本.txt",
    "hash#tag.txt",
    "q?mark&x=1.txt",
    "O'Brien [v2] (1).txt",
    // The same word in Unicode's two forms, kept apart byte for byte: NFC, then NFD.
    "caf\u{e9}.txt",
    "cafe\u{301}.txt",
];

/// An adapter session on the shared test bucket.
pub fn session<S: ObjectStore>(svc: &Service, store: &S, direction: Direction) -> Session {
    svc.app.sessions.open(&store.storage(direction, store.bucket())).unwrap()
}

/// Writes `objects` (`(key, body)`) to the shared test bucket through the backend's own adapter,
/// 16 sessions at a time, temporary failures retried.
pub async fn seed<S: ObjectStore>(svc: &Service, store: &S, objects: &[(String, Vec<u8>)]) {
    let per = objects.len().div_ceil(UPLOADERS).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in objects.chunks(per) {
        let mut session = session(svc, store, Direction::Export);
        let chunk = chunk.to_vec();
        tasks.spawn(async move {
            for (key, body) in chunk {
                // Retried as the service retries: a test server under load answers 5xx at times.
                stowage::with_retry!(session.put(&key, &body, None)).unwrap_or_else(|e| panic!("put {key}: {e}"));
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// Every key under `prefix` (recursive), listed through the adapter.
pub async fn keys_under(session: &mut Session, prefix: &str) -> Vec<String> {
    let (mut keys, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let page = session.list(prefix, cursor.as_deref(), 1000, true).await.unwrap();
        keys.extend(page.entries.into_iter().map(|e| e.key));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return keys,
        }
    }
}

/// A storage created with `extra` secrets (`secrets`: every secret field then stored) keeps them
/// only where it is: moving it with any of `moves` or to another project needs them again
/// ([`Service::assert_secrets_stay_behind`]), while a new `prefix` in the same bucket does not.
pub async fn secrets_stay_behind_a_moved_storage<S: ObjectStore>(
    svc: &Service,
    store: &S,
    extra: Value,
    moves: &[(&str, Value)],
    secrets: &[&str],
) {
    let prefix = unique_prefix("moved");
    seed(svc, store, &[(format!("{prefix}/a.txt"), b"a".to_vec())]).await;
    let project = svc.project("<View></View>").await;
    let mut fields = store.prefix_fields("");
    for (k, v) in extra.as_object().unwrap() {
        fields[k] = v.clone();
    }
    let path = format!("/api/storages/{}/{}", S::TYPE, create(svc, S::TYPE, project, fields).await);
    svc.assert_secrets_stay_behind(&path, moves, secrets).await;
    let r = svc.patch(&path, json!({"prefix": prefix})).await;
    assert_eq!((r.status, &r.body["prefix"]), (200, &json!(prefix)), "{:?}", r.body);
}

/// Creates an import storage of type `type_name` in `project` from `fields`; returns its id.
pub async fn create(svc: &Service, type_name: &str, project: i64, fields: Value) -> i64 {
    let mut body = fields;
    body["project"] = json!(project);
    let r = svc.post(&format!("/api/storages/{type_name}"), body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

/// Syncs import storage `id` of type `type_name`: its status, `last_sync_count` and the whole answer.
pub async fn sync(svc: &Service, type_name: &str, id: i64) -> (String, i64, Value) {
    let r = svc.sync(&format!("/api/storages/{type_name}/{id}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    (r.body["status"].as_str().unwrap().into(), r.body["last_sync_count"].as_i64().unwrap(), r.body)
}

/// Raw task data (`resolve_uri=false`) of a project, in id order.
pub async fn raw_data(svc: &Service, project: i64) -> Vec<Value> {
    let r = svc.get(&format!("/api/tasks/?project={project}&page_size=10000&resolve_uri=false")).await;
    r.body["tasks"].as_array().unwrap().iter().map(|t| t["data"].clone()).collect()
}

/// The `text` of every task of a project, in id order.
pub async fn texts(svc: &Service, project: i64) -> Vec<Value> {
    raw_data(svc, project).await.iter().map(|d| d["text"].clone()).collect()
}

/// The first `non_field_errors` message of a refusal.
pub fn refusal(r: &Reply) -> &str {
    r.body["validation_errors"]["non_field_errors"][0].as_str().unwrap_or_else(|| panic!("no message: {:?}", r.body))
}

/// GETs `link` of the service with the API token and `headers`, without following redirects.
pub async fn fetch(svc: &Service, link: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut request = client.get(format!("{}{link}", svc.url)).header("Authorization", format!("Token {TOKEN}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Imports follow Label Studio's rules: a prefix is a folder (with or without its trailing slash),
/// folder markers never become tasks, `regex_filter` matches the full key from its start,
/// `recursive_scan` descends, JSON mode reads `.json`/`.jsonl` and reports a broken file, and a
/// re-sync creates nothing.
pub async fn imports_follow_prefix_regex_and_recursion_rules<S: ObjectStore>(svc: &Service, store: &S) {
    let p = unique_prefix("rules");
    let k = |rest: &str| format!("{p}/{rest}");
    let objects: Vec<(String, Vec<u8>)> = [
        ("img/a.jpg", &b"A"[..]),
        ("img/b.png", b"B"),
        ("img/sub/c.jpg", b"C"),
        ("img/dir/", b""),
        ("imgx/d.jpg", b"D"),
        ("json/1.json", br#"{"text": "one"}"#),
        ("json/2.jsonl", b"{\"text\": \"two\"}\n{\"text\": \"three\"}\n"),
        ("json/3.json", b"{oops"),
        ("json/deeper/4.json", br#"{"text": "four"}"#),
    ]
    .iter()
    .map(|(key, body)| (k(key), body.to_vec()))
    .collect();
    seed(svc, store, &objects).await;

    // A prefix is a folder: `img` lists img/ only, never `imgx/`; folder markers are skipped.
    let project = svc.project("<View></View>").await;
    let flat = create(svc, S::TYPE, project, store.blob_fields(&k("img"))).await;
    assert_eq!(sync(svc, S::TYPE, flat).await.0, "completed");
    assert_eq!(raw_data(svc, project).await, store.blob_tasks(&[k("img/a.jpg"), k("img/b.png")]));
    let (status, count, body) = sync(svc, S::TYPE, flat).await;
    assert_eq!((status.as_str(), count, body["meta"]["tasks_existed"].as_i64()), ("completed", 0, Some(2)));

    // A trailing slash is the same prefix; recursion descends; the regex is matched against the
    // full key from its start (Python `re.match`).
    let project = svc.project("<View></View>").await;
    let mut fields = store.blob_fields(&format!("{}/", k("img")));
    fields["recursive_scan"] = json!(true);
    fields["regex_filter"] = json!(format!("{p}/img/(sub/)?[ac]"));
    let deep = create(svc, S::TYPE, project, fields.clone()).await;
    assert_eq!(sync(svc, S::TYPE, deep).await.1, 2);
    assert_eq!(raw_data(svc, project).await, store.blob_tasks(&[k("img/a.jpg"), k("img/sub/c.jpg")]));
    assert_eq!(sync(svc, S::TYPE, deep).await.1, 0, "a re-sync creates nothing");
    fields["regex_filter"] = json!("img/a");
    let anchored = create(svc, S::TYPE, project, fields).await;
    assert_eq!(sync(svc, S::TYPE, anchored).await.1, 0, "a regex matching mid-key only imports nothing");

    // Recursive without a regex: everything under img/ but the folder marker.
    let project = svc.project("<View></View>").await;
    let mut fields = store.blob_fields(&k("img"));
    fields["recursive_scan"] = json!(true);
    let all = create(svc, S::TYPE, project, fields).await;
    assert_eq!(sync(svc, S::TYPE, all).await.1, 3);
    assert_eq!(raw_data(svc, project).await, store.blob_tasks(&[k("img/a.jpg"), k("img/b.png"), k("img/sub/c.jpg")]));

    // JSON mode (prefix with and without the trailing slash): tasks from .json and .jsonl; a broken
    // file is reported, the rest imports; not recursive, so deeper/4.json is not read.
    for prefix in [k("json"), format!("{}/", k("json"))] {
        let project = svc.project("<View></View>").await;
        let json_storage = create(svc, S::TYPE, project, store.prefix_fields(&prefix)).await;
        let (status, count, body) = sync(svc, S::TYPE, json_storage).await;
        assert_eq!((status.as_str(), count), ("completed_with_errors", 3), "{prefix}");
        assert_eq!(
            body["traceback"],
            format!("{}: invalid JSON: key must be a string at line 1 column 2", k("json/3.json"))
        );
        assert_eq!(texts(svc, project).await, ["one", "two", "three"], "{prefix}");
        assert_eq!(sync(svc, S::TYPE, json_storage).await.1, 0, "a re-sync creates nothing");
    }

    // Recursive JSON import reads deeper/ too.
    let project = svc.project("<View></View>").await;
    let mut fields = store.prefix_fields(&k("json"));
    fields["recursive_scan"] = json!(true);
    fields["regex_filter"] = json!(r".*\.json$");
    let id = create(svc, S::TYPE, project, fields).await;
    let (status, count, _) = sync(svc, S::TYPE, id).await;
    assert_eq!((status.as_str(), count), ("completed_with_errors", 2));
    assert_eq!(texts(svc, project).await, ["one", "four"]);
}

/// `count` one-byte objects: the adapter lists them in pages of 500 (the sizes `pages`, a cursor
/// until the last one), one import creates a task per object (across the backend's own list
/// pages) and a re-sync creates nothing.
pub async fn import_spans_list_pages<S: ObjectStore>(svc: &Service, store: &S, count: usize, pages: &[usize]) {
    let p = unique_prefix("many");
    let keys: Vec<String> = (0..count).map(|i| format!("{p}/{i:04}.txt")).collect();
    seed(svc, store, &keys.iter().map(|k| (k.clone(), b"x".to_vec())).collect::<Vec<_>>()).await;

    // The adapter honours the page size and hands out a cursor until the last page.
    let mut session = session(svc, store, Direction::Import);
    let (mut listed, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let page = session.list(&p, cursor.as_deref(), 500, false).await.unwrap();
        sizes.push(page.entries.len());
        listed.extend(page.entries.into_iter().map(|e| (e.key, e.size)));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, pages);
    assert_eq!(listed, keys.iter().map(|k| (k.clone(), 1)).collect::<Vec<_>>());

    let project = svc.project("<View></View>").await;
    let id = create(svc, S::TYPE, project, store.blob_fields(&p)).await;
    assert_eq!(sync(svc, S::TYPE, id).await.1, count as i64);
    assert_eq!(raw_data(svc, project).await, store.blob_tasks(&keys));
    assert_eq!(sync(svc, S::TYPE, id).await.1, 0);
}

/// A blob-mode storage (presigned, TTL 2 minutes) over objects named [`SPECIAL_NAMES`], synced:
/// what the resolve scenarios run on. Built by [`special_keys`].
pub struct SpecialKeys {
    /// The storage type.
    pub type_name: &'static str,
    /// The unique prefix the objects are under.
    pub prefix: String,
    /// The import storage's id.
    pub storage: i64,
    /// `(key, body)` of each object, in [`SPECIAL_NAMES`] order.
    pub objects: Vec<(String, Vec<u8>)>,
    /// The project's tasks as `GET /api/tasks/` shows them (resolver links).
    pub tasks: Vec<Value>,
    /// Each key's resolver link.
    pub links: HashMap<String, String>,
}

/// Seeds the [`SPECIAL_NAMES`] objects and imports them through a blob-mode storage with
/// `presign_ttl` 2 and the `extra` fields; checks its secrets are write-only, that it imports one
/// task per object, and that each stored URI is shown as its resolver link under the label
/// config's field.
pub async fn special_keys<S: ObjectStore>(svc: &Service, store: &S, extra: Value) -> SpecialKeys {
    let prefix = unique_prefix("special");
    let objects: Vec<(String, Vec<u8>)> =
        SPECIAL_NAMES.iter().map(|n| (format!("{prefix}/{n}"), format!("bytes of {n}").into_bytes())).collect();
    seed(svc, store, &objects).await;
    let project = svc.project(r#"<View><Text name="t" value="$doc"/></View>"#).await;
    let mut fields = store.blob_fields(&prefix);
    fields["presign_ttl"] = json!(2);
    for (name, value) in extra.as_object().into_iter().flatten() {
        fields[name] = value.clone();
    }
    let storage = create(svc, S::TYPE, project, fields).await;
    let r = svc.get(&format!("/api/storages/{}/{storage}", S::TYPE)).await;
    for secret in S::SECRET_FIELDS {
        assert!(r.body.get(secret).is_none(), "secrets are write-only: {secret} returned");
    }
    assert_eq!(sync(svc, S::TYPE, storage).await.1, SPECIAL_NAMES.len() as i64);

    let r = svc.get(&format!("/api/tasks/?project={project}")).await;
    let tasks = r.body["tasks"].as_array().unwrap().clone();
    let mut links = HashMap::new();
    for t in &tasks {
        let id = t["id"].as_i64().unwrap();
        let key = t["storage_filename"].as_str().unwrap().to_string();
        // The stored URI is shown as the resolver link, under the label config's field.
        let link = resolver_url(id, &store.uri(&key));
        assert_eq!(t["data"], json!({"doc": link}));
        links.insert(key, link);
    }
    SpecialKeys { type_name: S::TYPE, prefix, storage, objects, tasks, links }
}

impl SpecialKeys {
    /// Each resolver link answers 303 (`Cache-Control: no-store, max-age=120`) to a URL that
    /// serves the object's bytes without the service's token. Returns `(key, URL)` per object, for
    /// the backend's checks of its signed-URL format.
    pub async fn presigned(&self, svc: &Service) -> Vec<(String, String)> {
        let mut locations = Vec::new();
        for (key, body) in &self.objects {
            let resp = fetch(svc, &self.links[key], &[]).await;
            assert_eq!(resp.status(), 303, "{key}");
            assert_eq!(resp.headers()["cache-control"], "no-store, max-age=120");
            let location = resp.headers()["location"].to_str().unwrap().to_string();
            let fetched = reqwest::get(&location).await.unwrap();
            assert_eq!(fetched.status(), 200, "{key}: {location}");
            assert_eq!(fetched.bytes().await.unwrap().as_ref(), body.as_slice(), "{key}");
            locations.push((key.clone(), location));
        }
        locations
    }

    /// A URL presigned for 1 second serves the first object, and after 2.1 seconds is refused
    /// with `expired_status`.
    pub async fn expired_url_is_refused<S: ObjectStore>(&self, svc: &Service, store: &S, expired_status: u16) {
        let mut session = session(svc, store, Direction::Import);
        // Signed times are whole seconds, so a 1-second URL made late in a second may expire at
        // once: presign early in a second, leaving it ~0.9 s to be served.
        let into_second = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_millis();
        if into_second > 50 {
            tokio::time::sleep(Duration::from_millis(u64::from(1010 - into_second))).await;
        }
        let short = session.presign_get(&self.objects[0].0, 1).await.unwrap();
        assert_eq!(reqwest::get(&short).await.unwrap().status(), 200);
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(reqwest::get(&short).await.unwrap().status(), expired_status);
    }

    /// With `presign` patched to false the service streams the bytes itself, with Range, ETag and
    /// 304 on `If-None-Match`.
    pub async fn proxied(&self, svc: &Service) {
        let r =
            svc.patch(&format!("/api/storages/{}/{}", self.type_name, self.storage), json!({"presign": false})).await;
        assert_eq!((r.status, r.body["presign"].as_bool()), (200, Some(false)));
        for (key, body) in &self.objects {
            let link = &self.links[key];
            let resp = fetch(svc, link, &[]).await;
            assert_eq!(resp.status(), 200, "{key}");
            let etag = resp.headers()["etag"].to_str().unwrap().to_string();
            assert_eq!(resp.bytes().await.unwrap().as_ref(), body.as_slice(), "{key}");
            let resp = fetch(svc, link, &[("Range", "bytes=2-5")]).await;
            assert_eq!(resp.status(), 206);
            assert_eq!(resp.headers()["content-range"], format!("bytes 2-5/{}", body.len()).as_str());
            assert_eq!(resp.bytes().await.unwrap().as_ref(), &body[2..=5]);
            let resp = fetch(svc, link, &[("If-None-Match", &etag)]).await;
            assert_eq!(resp.status(), 304);
        }
    }

    /// Storage URIs inside longer text (HTML attributes in either quote, Markdown, a sentence),
    /// in a task made with `POST /api/tasks`, are rewritten whole to resolver links, and each
    /// link serves exactly its object's bytes (following the presigned redirect if any).
    pub async fn uris_inside_text<S: ObjectStore>(&self, svc: &Service, store: &S) {
        let project = self.tasks[0]["project"].as_i64().unwrap();
        let key = |name: &str| format!("{}/{name}", self.prefix);
        let uri = |name: &str| store.uri(&key(name));
        let (quoted, single, md, bare, nfd) =
            ("O'Brien [v2] (1).txt", "sp ace.txt", "hash#tag.txt", "plus+sign.txt", "cafe\u{301}.txt");
        let data = json!({
            "html": format!(r#"<p><img src="{}"> <img src='{}'/></p>"#, uri(quoted), uri(single)),
            "md": format!("![a]({}) and", uri(md)),
            "sentence": format!("see {}<br>or {}", uri(bare), uri("q?mark&x=1.txt")),
            "whole": uri(nfd),
        });
        let r = svc.post("/api/tasks", json!({"project": project, "data": data})).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let id = r.body["id"].as_i64().unwrap();
        let link = |name: &str| resolver_url(id, &uri(name));
        let want = json!({
            "html": format!(r#"<p><img src="{}"> <img src='{}'/></p>"#, link(quoted), link(single)),
            "md": format!("![a]({}) and", link(md)),
            "sentence": format!("see {}<br>or {}", link(bare), link("q?mark&x=1.txt")),
            "whole": link(nfd),
        });
        assert_eq!(r.body["data"], want);
        assert_eq!(svc.get(&format!("/api/tasks/{id}")).await.body["data"], want);
        for name in [quoted, single, md, bare, "q?mark&x=1.txt", nfd] {
            let body = &self.objects.iter().find(|(k, _)| *k == key(name)).unwrap().1;
            let mut resp = fetch(svc, &link(name), &[]).await;
            if resp.status() == 303 {
                resp = reqwest::get(resp.headers()["location"].to_str().unwrap()).await.unwrap();
            }
            assert_eq!(resp.status(), 200, "{name}");
            assert_eq!(resp.bytes().await.unwrap().as_ref(), body.as_slice(), "{name}");
        }
    }

    /// A URI of `foreign_bucket`, which no storage of the project serves, is 404; without
    /// resolving, a task shows its raw URI.
    pub async fn unserved_and_raw_uris<S: ObjectStore>(&self, svc: &Service, store: &S, foreign_bucket: &str) {
        let task = self.tasks[0]["id"].as_i64().unwrap();
        let foreign = resolver_url(task, &format!("{}://{foreign_bucket}/x.txt", S::SCHEME));
        assert_eq!(svc.get(&foreign).await.status, 404);
        let r = svc.get(&format!("/api/tasks/{task}?resolve_uri=false")).await;
        let raw = r.body["data"]["doc"].as_str().unwrap();
        assert!(raw.starts_with(&store.uri(&format!("{}/", self.prefix))), "{raw}");
    }
}

/// Export: one JSON object per annotation at `{prefix}/{annotation id}` (the prefix without its
/// trailing slash), written on save with the bytes a local-files target gets, rewritten by an
/// export sync, and deleted with the annotation only where `can_delete_objects` allows it.
pub async fn annotations_are_exported_under_the_prefix_and_deleted_when_allowed<S: ObjectStore>(
    svc: &Service,
    store: &S,
) {
    let p = unique_prefix("export");
    let project = svc.project("<View></View>").await;
    let r = svc.post(&format!("/api/projects/{project}/import"), json!([{"text": "t"}])).await;
    let task = r.body["task_ids"][0].as_i64().unwrap();
    let exports = format!("/api/storages/export/{}", S::TYPE);
    let mut fields = store.prefix_fields(&format!("{p}/ann/"));
    fields["project"] = json!(project);
    fields["can_delete_objects"] = json!(true);
    let r = svc.post(&exports, fields).await;
    assert_eq!((r.status, r.body["status"].as_str()), (201, Some("queued")), "{:?}", r.body);
    assert_eq!(r.body["prefix"], format!("{p}/ann/"));
    let export_id = r.body["id"].as_i64().unwrap();
    let r = svc.wait_sync(&format!("{exports}/{export_id}")).await;
    assert_eq!(r.body["status"], "completed", "{:?}", r.body);
    // A second target, without can_delete_objects, keeps its copies.
    let mut kept = store.prefix_fields(&format!("{p}/kept"));
    kept["project"] = json!(project);
    let r = svc.post(&exports, kept).await;
    assert_eq!(r.status, 201);
    svc.wait_sync(&format!("{exports}/{}", r.body["id"])).await;
    // A local-files target of the same project receives the same documents: the reference bytes.
    let local = svc.dir("reference", &[]);
    let r = svc.post("/api/storages/export/localfiles", json!({"project": project, "path": local})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    svc.wait_sync(&format!("/api/storages/export/localfiles/{}", r.body["id"])).await;

    let result = json!([{"from_name": "c", "to_name": "t", "type": "choices", "value": {"choices": ["x"]}}]);
    let ann = svc.post(&format!("/api/tasks/{task}/annotations"), json!({"result": result})).await.body["id"]
        .as_i64()
        .unwrap();

    let key = format!("{p}/ann/{ann}");
    let mut session = session(svc, store, Direction::Import);
    assert_eq!(keys_under(&mut session, &format!("{p}/")).await, [key.clone(), format!("{p}/kept/{ann}")]);
    let object = session.get(&key, None).await.unwrap();
    assert_eq!(object.content_type.as_deref(), Some("application/json"));
    assert_eq!(object.body, std::fs::read(local.join(ann.to_string())).unwrap());
    let doc: Value = serde_json::from_slice(&object.body).unwrap();
    let stored = svc.get(&format!("/api/annotations/{ann}")).await.body;
    assert_eq!((doc["id"].as_i64(), &doc["result"], doc["task"]["id"].as_i64()), (Some(ann), &result, Some(task)));
    assert_eq!(
        (&doc["task"]["data"], doc["project"].as_i64(), &doc["was_cancelled"]),
        (&json!({"text": "t"}), Some(project), &json!(false))
    );
    assert_eq!((&doc["created_at"], &doc["updated_at"]), (&stored["created_at"], &stored["updated_at"]));

    let r = svc.sync(&format!("{exports}/{export_id}")).await;
    // Incremental: the annotation was written when saved, so the export sync has nothing to do.
    assert_eq!((r.body["status"].as_str(), r.body["last_sync_count"].as_i64()), (Some("completed"), Some(0)));
    assert_eq!(session.get(&key, None).await.unwrap().body, object.body);
    assert_eq!(svc.delete(&format!("/api/annotations/{ann}")).await.status, 204);
    let gone = session.get(&key, None).await.unwrap_err();
    assert_eq!(gone.kind, ErrorKind::NotFound);
    // Only where can_delete_objects allows it.
    assert_eq!(keys_under(&mut session, &format!("{p}/")).await, [format!("{p}/kept/{ann}")]);
    // Deleting a missing object is fine.
    session.delete(&[key]).await.unwrap();
}

/// POSTs `fields` to both the create and the validate path of an import storage of type
/// `type_name`: each answers 400 with exactly `message`. Returns both answers' text, for leak checks.
pub async fn refused(svc: &Service, type_name: &str, fields: &Value, message: &str) -> String {
    let mut seen = String::new();
    for path in [format!("/api/storages/{type_name}"), format!("/api/storages/{type_name}/validate")] {
        let r = svc.post(&path, fields.clone()).await;
        assert_eq!(
            (r.status, r.body["validation_errors"]["non_field_errors"][0].as_str()),
            (400, Some(message)),
            "{path}"
        );
        seen.push_str(&r.body.to_string());
    }
    seen
}

/// Connection checks with Label Studio's messages: a missing bucket is refused with
/// `missing_message` and an import prefix with no objects with `empty_message(bucket, prefix)`,
/// both on create and validate, while an export target may be empty; an import prefix with objects
/// validates; a storage never returns its secrets, shows its endpoint, and no answer contains a
/// secret value. Returns the answers' text, for the backend's own leak checks.
pub async fn connection_checks<S: ObjectStore>(
    svc: &Service,
    store: &S,
    missing_bucket: &str,
    missing_message: &str,
    empty_message: impl Fn(&str, &str) -> String,
) -> String {
    let p = unique_prefix("check");
    seed(svc, store, &[(format!("{p}/x.json"), b"{}".to_vec())]).await;
    let project = svc.project("<View></View>").await;
    let with_project = |mut fields: Value| {
        fields["project"] = json!(project);
        fields
    };
    let mut seen = refused(svc, S::TYPE, &with_project(store.fields(missing_bucket, &p)), missing_message).await;
    let empty = with_project(store.prefix_fields(&format!("{p}-nothing")));
    let message = empty_message(store.bucket(), &format!("{p}-nothing"));
    seen.push_str(&refused(svc, S::TYPE, &empty, &message).await);

    // An export target may be empty; an import storage with objects under its prefix is fine.
    let exports = format!("/api/storages/export/{}", S::TYPE);
    assert_eq!(svc.post(&format!("{exports}/validate"), empty.clone()).await.status, 200);
    assert_eq!(svc.post(&exports, empty).await.status, 201);
    let good = with_project(store.prefix_fields(&p));
    assert_eq!(svc.post(&format!("/api/storages/{}/validate", S::TYPE), good.clone()).await.status, 200);

    // A good storage never returns its secrets (write-only, as in Label Studio).
    let id = create(svc, S::TYPE, project, good).await;
    let r = svc.get(&format!("/api/storages/{}/{id}", S::TYPE)).await;
    for secret in S::SECRET_FIELDS {
        assert!(r.body.get(secret).is_none(), "{secret} returned");
    }
    assert_eq!(r.body[S::ENDPOINT_FIELD], store.endpoint());
    seen.push_str(&r.body.to_string());
    for secret in store.secret_values() {
        assert!(!seen.contains(secret), "a response contains {secret:?}");
    }
    seen
}

/// A service with the default address policy refuses a storage on the loopback test server,
/// naming its `host:port`, on create and validate alike.
pub async fn default_policy_refuses_the_loopback_emulator<S: ObjectStore>(store: &S) {
    let svc = Service::start_with_policy(10_000, false).await;
    let project = svc.project("<View></View>").await;
    let mut fields = store.prefix_fields("");
    fields["project"] = json!(project);
    let authority = store.endpoint().trim_start_matches("http://").split('/').next().unwrap();
    let message = format!("the stowage host refused the connection to {authority} (address policy)");
    refused(&svc, S::TYPE, &fields, &message).await;
}
