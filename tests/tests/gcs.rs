//! GCS storages against fake-gcs-server (started by tests/emulators/gcs.sh): imports with Label
//! Studio's prefix, regex and recursion rules across list pages, signed and proxied URIs, export
//! and deletion, connection checks, and malformed credentials refused without echoing the key.

use serde_json::{Value, json};
use stowage::domain::Direction;
use stowage::plugin::Session;
use stowage::tasks::uri::resolver_url;
use stowage_tests::{GcsEnv, Service, gcs_env, unique_prefix};

/// Google's published dummy service-account key (googleapis/conformance-tests), the adapter's test data.
const TEST_KEY: &str = include_str!("../../adapters/gcs/tests/data/test_service_account.json");

/// Uploads objects through the GCS adapter itself.
async fn upload(svc: &Service, gcs: &GcsEnv, objects: &[(String, Vec<u8>)]) {
    let mut session: Session = stowage::sync::connect(&svc.app, &gcs.storage(Direction::Export, &gcs.bucket)).unwrap();
    for (key, body) in objects {
        session.put(key, body, None).await.unwrap_or_else(|e| panic!("put {key}: {e}"));
    }
}

/// Uploads many small objects straight to the emulator, 16 at a time (fake-gcs-server takes ~700/s).
async fn upload_many(gcs: &GcsEnv, keys: &[String]) {
    let client = reqwest::Client::new();
    let url = format!("{}/upload/storage/v1/b/{}/o", gcs.endpoint, gcs.bucket);
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in keys.chunks(keys.len().div_ceil(16)) {
        let (client, url, chunk) = (client.clone(), url.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for key in chunk {
                let r = client.post(&url).query(&[("uploadType", "media"), ("name", &key)]).body("x").send().await;
                assert_eq!(r.unwrap().status(), 200, "{key}");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// Keys under `prefix`, listed straight from the emulator.
async fn keys_under(gcs: &GcsEnv, prefix: &str) -> Vec<String> {
    let url = format!("{}/storage/v1/b/{}/o", gcs.endpoint, gcs.bucket);
    let r = reqwest::Client::new().get(url).query(&[("prefix", prefix)]).send().await.unwrap();
    let body: Value = r.json().await.unwrap();
    body["items"].as_array().map_or(vec![], |items| items.iter().map(|o| o["name"].as_str().unwrap().into()).collect())
}

/// A key percent-encoded for a URL path: unreserved bytes and `/` kept (RFC 3986).
fn encode_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn create(svc: &Service, project: i64, fields: Value) -> i64 {
    let mut body = fields;
    body["project"] = json!(project);
    let r = svc.post("/api/storages/gcs", body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

async fn sync(svc: &Service, id: i64) -> (String, i64, Value) {
    let r = svc.post(&format!("/api/storages/gcs/{id}/sync"), Value::Null).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    (r.body["status"].as_str().unwrap().into(), r.body["last_sync_count"].as_i64().unwrap(), r.body)
}

/// Raw task data (`resolve_uri=false`) of a project.
async fn raw_data(svc: &Service, project: i64) -> Vec<Value> {
    let r = svc.get(&format!("/api/tasks/?project={project}&page_size=10000&resolve_uri=false")).await;
    r.body["tasks"].as_array().unwrap().iter().map(|t| t["data"].clone()).collect()
}

fn gs_uris(gcs: &GcsEnv, keys: &[String]) -> Vec<Value> {
    keys.iter().map(|k| json!({"$undefined$": format!("gs://{}/{k}", gcs.bucket)})).collect()
}

#[tokio::test]
async fn imports_follow_label_studio_prefix_regex_and_recursion_rules() {
    let Some(gcs) = gcs_env() else { return };
    let svc = Service::start().await;
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
    upload(&svc, &gcs, &objects).await;

    // A prefix is a folder: `img` lists img/ only, never `imgx/`; folder placeholders are skipped.
    let project = svc.project("<View></View>").await;
    let mut fields = gcs.fields(&gcs.bucket, &k("img"));
    fields["use_blob_urls"] = json!(true);
    let flat = create(&svc, project, fields).await;
    assert_eq!(sync(&svc, flat).await.0, "completed");
    assert_eq!(raw_data(&svc, project).await, gs_uris(&gcs, &[k("img/a.jpg"), k("img/b.png")]));
    let (status, count, body) = sync(&svc, flat).await;
    assert_eq!((status.as_str(), count, body["meta"]["tasks_existed"].as_i64()), ("completed", 0, Some(2)));

    // A trailing slash is the same prefix; recursion descends; the regex is matched against the
    // full key from its start (Python `re.match`).
    let project = svc.project("<View></View>").await;
    let mut fields = gcs.fields(&gcs.bucket, &format!("{}/", k("img")));
    fields["use_blob_urls"] = json!(true);
    fields["recursive_scan"] = json!(true);
    fields["regex_filter"] = json!(format!("{p}/img/(sub/)?[ac]"));
    let deep = create(&svc, project, fields.clone()).await;
    assert_eq!(sync(&svc, deep).await.1, 2);
    assert_eq!(raw_data(&svc, project).await, gs_uris(&gcs, &[k("img/a.jpg"), k("img/sub/c.jpg")]));
    assert_eq!(sync(&svc, deep).await.1, 0, "a re-sync creates nothing");
    fields["regex_filter"] = json!("img/a");
    let anchored = create(&svc, project, fields).await;
    assert_eq!(sync(&svc, anchored).await.1, 0, "a regex matching mid-key only imports nothing");

    // JSON mode (prefix with and without the trailing slash): tasks from .json and .jsonl; a broken
    // file is reported, the rest imports; not recursive, so deeper/4.json is not read.
    for prefix in [k("json"), format!("{}/", k("json"))] {
        let project = svc.project("<View></View>").await;
        let json_storage = create(&svc, project, gcs.fields(&gcs.bucket, &prefix)).await;
        let (status, count, body) = sync(&svc, json_storage).await;
        assert_eq!((status.as_str(), count), ("completed_with_errors", 3), "{prefix}");
        assert_eq!(
            body["traceback"],
            format!("{}: invalid JSON: key must be a string at line 1 column 2", k("json/3.json"))
        );
        let texts: Vec<Value> = raw_data(&svc, project).await.iter().map(|d| d["text"].clone()).collect();
        assert_eq!(texts, ["one", "two", "three"], "{prefix}");
        assert_eq!(sync(&svc, json_storage).await.1, 0, "a re-sync creates nothing");
    }

    // Recursive JSON import reads deeper/ too.
    let project = svc.project("<View></View>").await;
    let mut fields = gcs.fields(&gcs.bucket, &k("json"));
    fields["recursive_scan"] = json!(true);
    fields["regex_filter"] = json!(r".*\.json$");
    let id = create(&svc, project, fields).await;
    let (status, count, _) = sync(&svc, id).await;
    assert_eq!((status.as_str(), count), ("completed_with_errors", 2));
    let texts: Vec<Value> = raw_data(&svc, project).await.iter().map(|d| d["text"].clone()).collect();
    assert_eq!(texts, ["one", "four"]);
}

#[tokio::test]
async fn import_of_1200_objects_spans_several_list_pages() {
    let Some(gcs) = gcs_env() else { return };
    let svc = Service::start().await;
    let p = unique_prefix("many");
    let keys: Vec<String> = (0..1200).map(|i| format!("{p}/{i:04}.txt")).collect();
    upload_many(&gcs, &keys).await;

    // The adapter honours the page size and hands out a cursor until the last page.
    let mut session = stowage::sync::connect(&svc.app, &gcs.storage(Direction::Import, &gcs.bucket)).unwrap();
    let (mut cursor, mut pages, mut listed) = (None, vec![], vec![]);
    loop {
        let page = session.list(&p, cursor.as_deref(), 500, false).await.unwrap();
        pages.push(page.entries.len());
        listed.extend(page.entries.into_iter().map(|e| e.key));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, [500, 500, 200]);
    assert_eq!(listed, keys);

    let project = svc.project("<View></View>").await;
    let mut fields = gcs.fields(&gcs.bucket, &p);
    fields["use_blob_urls"] = json!(true);
    let id = create(&svc, project, fields).await;
    assert_eq!(sync(&svc, id).await.1, 1200);
    assert_eq!(raw_data(&svc, project).await, gs_uris(&gcs, &keys));
    assert_eq!(sync(&svc, id).await.1, 0);
}

#[tokio::test]
async fn signed_and_proxied_uris_return_the_right_bytes_for_special_keys() {
    let Some(gcs) = gcs_env() else { return };
    let svc = Service::start().await;
    let p = unique_prefix("special");
    let names =
        ["sp ace.txt", "plus+sign.txt", "per%25cent%.txt", "ünïcödé 日本.txt", "hash#tag.txt", "q?mark&x=1.txt"];
    let objects: Vec<(String, Vec<u8>)> =
        names.iter().map(|n| (format!("{p}/{n}"), format!("bytes of {n}").into_bytes())).collect();
    upload(&svc, &gcs, &objects).await;
    let project = svc.project(r#"<View><Text name="t" value="$doc"/></View>"#).await;
    let mut fields = gcs.fields(&gcs.bucket, &p);
    fields["use_blob_urls"] = json!(true);
    fields["presign_ttl"] = json!(2);
    fields["google_application_credentials"] = json!(TEST_KEY);
    let id = create(&svc, project, fields).await;
    let r = svc.get(&format!("/api/storages/gcs/{id}")).await;
    assert!(r.body.get("google_application_credentials").is_none(), "secrets are write-only");
    assert_eq!(sync(&svc, id).await.1, names.len() as i64);

    let r = svc.get(&format!("/api/tasks/?project={project}")).await;
    let tasks = r.body["tasks"].as_array().unwrap().clone();
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let auth = format!("Token {}", stowage_tests::TOKEN);
    let mut by_key = std::collections::HashMap::new();
    for t in &tasks {
        let id = t["id"].as_i64().unwrap();
        let key = t["storage_filename"].as_str().unwrap().to_string();
        let uri = format!("gs://{}/{key}", gcs.bucket);
        assert_eq!(t["data"], json!({"doc": resolver_url(id, &uri)}));
        by_key.insert(key, resolver_url(id, &uri));
    }
    for (key, body) in &objects {
        let link = format!("{}{}", svc.url, by_key[key]);
        let resp = no_redirect.get(&link).header("Authorization", &auth).send().await.unwrap();
        assert_eq!(resp.status(), 303, "{key}");
        assert_eq!(resp.headers()["cache-control"], "no-store, max-age=120");
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        // Path-style on the endpoint, V4-signed by the service account, for 2 minutes.
        let path = encode_key(key);
        assert!(
            location.starts_with(&format!(
                "{}/{}/{path}?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=test-iam-credentials%40dummy-project-id.iam.gserviceaccount.com%2F",
                gcs.endpoint, gcs.bucket
            )),
            "{location}"
        );
        assert!(location.contains("&X-Goog-Expires=120&X-Goog-SignedHeaders=host&X-Goog-Signature="), "{location}");
        let fetched = reqwest::get(&location).await.unwrap();
        assert_eq!(fetched.status(), 200, "{key}: {location}");
        assert_eq!(fetched.bytes().await.unwrap().as_ref(), body.as_slice(), "{key}");
    }

    // presign=false: the service streams the bytes itself, with Range, ETag and 304.
    let r = svc.patch(&format!("/api/storages/gcs/{id}"), json!({"presign": false})).await;
    assert_eq!((r.status, r.body["presign"].as_bool()), (200, Some(false)));
    for (key, body) in &objects {
        let link = format!("{}{}", svc.url, by_key[key]);
        let resp = no_redirect.get(&link).header("Authorization", &auth).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{key}");
        let etag = resp.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(resp.bytes().await.unwrap().as_ref(), body.as_slice(), "{key}");
        let resp =
            no_redirect.get(&link).header("Authorization", &auth).header("Range", "bytes=2-5").send().await.unwrap();
        assert_eq!(resp.status(), 206);
        assert_eq!(resp.headers()["content-range"], format!("bytes 2-5/{}", body.len()).as_str());
        assert_eq!(resp.bytes().await.unwrap().as_ref(), &body[2..=5]);
        let resp =
            no_redirect.get(&link).header("Authorization", &auth).header("If-None-Match", &etag).send().await.unwrap();
        assert_eq!(resp.status(), 304);
    }

    // Without a key, a "signed" URL is the plain object URL (public objects).
    let mut session = stowage::sync::connect(&svc.app, &gcs.storage(Direction::Import, &gcs.bucket)).unwrap();
    let plain = session.presign_get(&objects[0].0, 60).await.unwrap();
    assert_eq!(plain, format!("{}/{}/{p}/sp%20ace.txt", gcs.endpoint, gcs.bucket));
    assert_eq!(reqwest::get(&plain).await.unwrap().bytes().await.unwrap().as_ref(), objects[0].1.as_slice());
    // Stat, ranged reads past the end and missing objects.
    let entry = session.stat(&objects[0].0).await.unwrap();
    assert_eq!((entry.key.as_str(), entry.size), (objects[0].0.as_str(), objects[0].1.len() as u64));
    assert!(entry.etag.is_some() && entry.last_modified.is_some());
    let past = session.get(&objects[0].0, Some((100, None))).await.unwrap();
    assert_eq!((past.body.len(), past.total_size), (0, objects[0].1.len() as u64));
    let missing = session.get(&format!("{p}/nope.txt"), None).await.unwrap_err();
    assert_eq!(missing.kind, stowage::error::ErrorKind::NotFound);
    // A URI no storage of the project serves is 404.
    let foreign = resolver_url(tasks[0]["id"].as_i64().unwrap(), "gs://another-bucket/x.txt");
    assert_eq!(svc.get(&foreign).await.status, 404);
}

#[tokio::test]
async fn annotations_are_exported_under_the_prefix_and_deleted_when_allowed() {
    let Some(gcs) = gcs_env() else { return };
    let svc = Service::start().await;
    let p = unique_prefix("export");
    let project = svc.project("<View></View>").await;
    let r = svc.post(&format!("/api/projects/{project}/import"), json!([{"text": "t"}])).await;
    let task = r.body["task_ids"][0].as_i64().unwrap();
    let mut fields = gcs.fields(&gcs.bucket, &format!("{p}/ann/"));
    fields["project"] = json!(project);
    fields["can_delete_objects"] = json!(true);
    let r = svc.post("/api/storages/export/gcs", fields).await;
    assert_eq!((r.status, r.body["status"].as_str()), (201, Some("completed")), "{:?}", r.body);
    let export_id = r.body["id"].as_i64().unwrap();
    let mut kept = gcs.fields(&gcs.bucket, &format!("{p}/kept"));
    kept["project"] = json!(project);
    assert_eq!(svc.post("/api/storages/export/gcs", kept).await.status, 201);
    let result = json!([{"from_name": "c", "to_name": "t", "type": "choices", "value": {"choices": ["x"]}}]);
    let ann = svc.post(&format!("/api/tasks/{task}/annotations"), json!({"result": result})).await.body["id"]
        .as_i64()
        .unwrap();

    // One JSON object per annotation at `{prefix}/{id}` (prefix without its trailing slash).
    let key = format!("{p}/ann/{ann}");
    assert_eq!(keys_under(&gcs, &format!("{p}/")).await, [key.clone(), format!("{p}/kept/{ann}")]);
    let mut session = stowage::sync::connect(&svc.app, &gcs.storage(Direction::Import, &gcs.bucket)).unwrap();
    let object = session.get(&key, None).await.unwrap();
    assert_eq!(object.content_type.as_deref(), Some("application/json"));
    let doc: Value = serde_json::from_slice(&object.body).unwrap();
    let stored = svc.get(&format!("/api/annotations/{ann}")).await.body;
    assert_eq!((doc["id"].as_i64(), &doc["result"], doc["task"]["id"].as_i64()), (Some(ann), &result, Some(task)));
    assert_eq!(
        (&doc["task"]["data"], &doc["project"], &doc["was_cancelled"]),
        (&json!({"text": "t"}), &json!(project), &json!(false))
    );
    assert_eq!((&doc["created_at"], &doc["updated_at"]), (&stored["created_at"], &stored["updated_at"]));

    let r = svc.post(&format!("/api/storages/export/gcs/{export_id}/sync"), Value::Null).await;
    assert_eq!((r.body["status"].as_str(), r.body["last_sync_count"].as_i64()), (Some("completed"), Some(1)));
    assert_eq!(svc.delete(&format!("/api/annotations/{ann}")).await.status, 204);
    let gone = session.get(&key, None).await.unwrap_err();
    assert_eq!(gone.kind, stowage::error::ErrorKind::NotFound);
    // Only where can_delete_objects allows it.
    assert_eq!(keys_under(&gcs, &format!("{p}/")).await, [format!("{p}/kept/{ann}")]);
}

#[tokio::test]
async fn connection_checks_use_label_studio_messages() {
    let Some(gcs) = gcs_env() else { return };
    let svc = Service::start().await;
    let p = unique_prefix("check");
    upload(&svc, &gcs, &[(format!("{p}/x.json"), b"{}".to_vec())]).await;
    let project = svc.project("<View></View>").await;
    let message =
        |r: &stowage_tests::Reply| r.body["validation_errors"]["non_field_errors"][0].as_str().unwrap().to_string();

    let mut fields = gcs.fields("no-such-bucket", "");
    fields["project"] = json!(project);
    let r = svc.post("/api/storages/gcs", fields.clone()).await;
    assert_eq!((r.status, message(&r)), (400, "Cannot find bucket no-such-bucket in GCS".to_string()));
    assert_eq!(svc.post("/api/storages/gcs/validate", fields).await.status, 400);

    let mut fields = gcs.fields(&gcs.bucket, &format!("{p}-nothing"));
    fields["project"] = json!(project);
    let r = svc.post("/api/storages/gcs", fields.clone()).await;
    assert_eq!(
        (r.status, message(&r)),
        (400, format!("No blobs found in {}/{p}-nothing or prefix doesn't exist", gcs.bucket))
    );
    // An export target may be empty; an import storage with objects under its prefix is fine.
    assert_eq!(svc.post("/api/storages/export/gcs", fields).await.status, 201);
    let mut fields = gcs.fields(&gcs.bucket, &p);
    fields["project"] = json!(project);
    assert_eq!(svc.post("/api/storages/gcs/validate", fields).await.status, 200);
}

#[tokio::test]
async fn malformed_credentials_are_refused_without_echoing_the_key() {
    let Some(gcs) = gcs_env() else { return };
    let svc = Service::start().await;
    let project = svc.project("<View></View>").await;
    let cut = TEST_KEY.find("BEGIN PRIVATE KEY").unwrap() + 300;
    let key_body: Vec<String> = serde_json::from_str::<Value>(TEST_KEY).unwrap()["private_key"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_string)
        .collect();
    for (broken, expected) in [
        (
            TEST_KEY[..cut].to_string(),
            "Google Application Credentials must be valid JSON string. unexpected end of input at line 5 column ",
        ),
        (
            TEST_KEY.replace("MIIEvAIBADAN", "MIIEvAIBADAM"),
            "google_application_credentials: \"private_key\" is not a PEM-encoded RSA private key",
        ),
        (TEST_KEY.replace("client_email", "email"), "google_application_credentials: \"client_email\" is missing"),
    ] {
        let mut fields = gcs.fields(&gcs.bucket, "");
        fields["project"] = json!(project);
        fields["google_application_credentials"] = json!(broken);
        for path in ["/api/storages/gcs", "/api/storages/gcs/validate", "/api/storages/export/gcs"] {
            let r = svc.post(path, fields.clone()).await;
            assert_eq!(r.status, 400, "{path}: {:?}", r.body);
            let m = r.body["validation_errors"]["non_field_errors"][0].as_str().unwrap();
            assert!(m.starts_with(expected), "{path}: {m}");
            let text = r.body.to_string();
            assert!(!text.contains("PRIVATE KEY"), "{text}");
            for line in &key_body {
                assert!(!text.contains(&line[..16]), "the response repeats the key: {text}");
            }
        }
    }
    let r = svc.get(&format!("/api/storages/gcs?project={project}")).await;
    assert_eq!(r.body, json!([]));
}

#[tokio::test]
async fn the_default_policy_refuses_the_loopback_emulator() {
    let Some(gcs) = gcs_env() else { return };
    let svc = Service::start_with_policy(10_000, false).await;
    let project = svc.project("<View></View>").await;
    let mut fields = gcs.fields(&gcs.bucket, "");
    fields["project"] = json!(project);
    let r = svc.post("/api/storages/gcs", fields).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let message = r.body["validation_errors"]["non_field_errors"][0].as_str().unwrap();
    let authority = gcs.endpoint.trim_start_matches("http://");
    assert_eq!(message, format!("the stowage host refused the connection to {authority} (address policy)"));
}

/// One request the mock server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
    body: String,
}

/// A minimal GCS + OAuth2 token endpoint on loopback: `POST /token` grants `ya29.stowage-test`,
/// `POST /token-refused` answers `invalid_grant`, bucket and listing requests need the token.
/// Every request is recorded; each connection serves one request (`Connection: close`).
async fn mock_google() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                    })
                };
                let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                while buf.len() < head_end + length {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let mut first = head.lines().next().unwrap_or("").split(' ');
                let (method, path) = (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
                let authorization = header("authorization");
                let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                let authorized = authorization.as_deref() == Some("Bearer ya29.stowage-test");
                let (status, reply) = match (method.as_str(), path.split('?').next().unwrap_or("")) {
                    ("POST", "/token") => {
                        (200, r#"{"access_token":"ya29.stowage-test","expires_in":3599,"token_type":"Bearer"}"#)
                    }
                    ("POST", "/token-refused") => {
                        (400, r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#)
                    }
                    (_, _) if !authorized => (
                        401,
                        r#"{"error":{"code":401,"message":"Invalid Credentials","errors":[{"reason":"authError"}]}}"#,
                    ),
                    ("GET", "/storage/v1/b/private") => (200, r#"{"kind":"storage#bucket","name":"private"}"#),
                    ("GET", "/storage/v1/b/private/o") => {
                        (200, r#"{"kind":"storage#objects","items":[{"name":"a.txt","size":"1"}]}"#)
                    }
                    _ => (404, r#"{"error":{"code":404,"message":"Not Found","errors":[{"reason":"notFound"}]}}"#),
                };
                log.lock().unwrap().push(Seen { method, path, authorization, body });
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (url, seen)
}

/// base64url (no padding) decoding, for reading the JWT the adapter sent.
fn b64url(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => panic!("not base64url: {c}"),
    };
    let bits: Vec<u8> = text.bytes().map(value).collect();
    bits.chunks(4)
        .flat_map(|c| {
            let n = c.iter().enumerate().fold(0u32, |n, (i, v)| n | (u32::from(*v) << (18 - 6 * i)));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            bytes[..c.len() - 1].to_vec()
        })
        .collect()
}

/// With a key whose `token_uri` is on the endpoint's host, requests carry an OAuth2 token from the
/// JWT-bearer flow, fetched once and reused across calls of the instance.
#[tokio::test]
async fn service_account_tokens_come_from_the_jwt_bearer_flow_and_are_reused() {
    let (url, seen) = mock_google().await;
    let svc = Service::start().await;
    let key = |token_path: &str| TEST_KEY.replace("https://oauth2.googleapis.com/token", &format!("{url}{token_path}"));
    let mut fields = serde_json::Map::new();
    fields.insert("bucket".into(), json!("private"));
    fields.insert("gcs_endpoint".into(), json!(url));
    let mut storage = stowage::domain::Storage::new(Direction::Import, "gcs", 0, fields.clone());
    storage.secrets.insert("google_application_credentials".into(), json!(key("/token")));

    let mut session = stowage::sync::connect(&svc.app, &storage).unwrap();
    session.check(Direction::Import).await.unwrap();
    let page = session.list("", None, 10, true).await.unwrap();
    assert_eq!(page.entries.iter().map(|e| (e.key.as_str(), e.size)).collect::<Vec<_>>(), [("a.txt", 1)]);
    session.check(Direction::Import).await.unwrap();
    let missing = session.stat("nope.txt").await.unwrap_err();
    assert_eq!(missing.kind, stowage::error::ErrorKind::NotFound);

    let seen = seen.lock().unwrap().clone();
    let paths: Vec<(&str, &str)> =
        seen.iter().map(|s| (s.method.as_str(), s.path.split('?').next().unwrap())).collect();
    assert_eq!(
        paths,
        [
            ("POST", "/token"),
            ("GET", "/storage/v1/b/private"),
            ("GET", "/storage/v1/b/private/o"),
            ("GET", "/storage/v1/b/private"),
            ("GET", "/storage/v1/b/private/o/nope.txt"),
        ]
    );
    assert!(seen[1..].iter().all(|s| s.authorization.as_deref() == Some("Bearer ya29.stowage-test")), "{seen:?}");
    // The token request: a form with the JWT-bearer grant and an RS256 assertion for the account.
    let (grant, assertion) = seen[0].body.split_once('&').unwrap();
    assert_eq!(grant, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer");
    let jwt: Vec<&str> = assertion.strip_prefix("assertion=").unwrap().split('.').collect();
    assert_eq!(jwt.len(), 3);
    let header: Value = serde_json::from_slice(&b64url(jwt[0])).unwrap();
    let claims: Value = serde_json::from_slice(&b64url(jwt[1])).unwrap();
    assert_eq!(header, json!({"alg": "RS256", "typ": "JWT", "kid": "ffffffffffffffffffffffffffffffffffffffff"}));
    assert_eq!(claims["iss"], "test-iam-credentials@dummy-project-id.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], format!("{url}/token"));
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/devstorage.read_write");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 3600);
    assert_eq!(b64url(jwt[2]).len(), 256, "a 2048-bit RSA signature");

    // A refused assertion fails storage creation with the account and the OAuth error only.
    let project = svc.project("<View></View>").await;
    let mut body = Value::Object(fields);
    body["project"] = json!(project);
    body["google_application_credentials"] = json!(key("/token-refused"));
    let r = svc.post("/api/storages/gcs", body).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(
        r.body["validation_errors"]["non_field_errors"][0],
        "Google refused the service account credentials of test-iam-credentials@dummy-project-id.iam.gserviceaccount.com (invalid_grant, HTTP 400); check google_application_credentials"
    );
}
