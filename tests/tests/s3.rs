//! S3 storages against a real S3 server (garage, started by tests/run.sh): imports with Label
//! Studio's prefix, regex and recursion rules across list pages, presigned and proxied URIs,
//! export, credential errors without leaks, and the SSRF policy.

use std::time::Duration;

use serde_json::{Value, json};
use stowage::domain::Direction;
use stowage::plugin::Session;
use stowage::tasks::uri::resolver_url;
use stowage_tests::{S3Env, Service, s3_env, unique_prefix};

/// Uploads objects through the S3 adapter itself.
async fn upload(svc: &Service, s3: &S3Env, objects: &[(String, Vec<u8>)]) {
    let mut session: Session = stowage::sync::connect(&svc.app, &s3.storage(Direction::Export, &s3.bucket)).unwrap();
    for (key, body) in objects {
        session.put(key, body, None).await.unwrap_or_else(|e| panic!("put {key}: {e}"));
    }
}

async fn create(svc: &Service, project: i64, fields: Value) -> i64 {
    let mut body = fields;
    body["project"] = json!(project);
    let r = svc.post("/api/storages/s3", body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

async fn sync(svc: &Service, id: i64) -> (String, i64, Value) {
    let r = svc.post(&format!("/api/storages/s3/{id}/sync"), Value::Null).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    (r.body["status"].as_str().unwrap().into(), r.body["last_sync_count"].as_i64().unwrap(), r.body)
}

/// Raw task data (`resolve_uri=false`) of a project.
async fn raw_data(svc: &Service, project: i64) -> Vec<Value> {
    let r = svc.get(&format!("/api/tasks/?project={project}&page_size=10000&resolve_uri=false")).await;
    r.body["tasks"].as_array().unwrap().iter().map(|t| t["data"].clone()).collect()
}

fn s3_uris(s3: &S3Env, keys: &[String]) -> Vec<Value> {
    keys.iter().map(|k| json!({"$undefined$": format!("s3://{}/{k}", s3.bucket)})).collect()
}

#[tokio::test]
async fn imports_follow_label_studio_prefix_regex_and_recursion_rules() {
    let Some(s3) = s3_env() else { return };
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
    ]
    .iter()
    .map(|(key, body)| (k(key), body.to_vec()))
    .collect();
    upload(&svc, &s3, &objects).await;

    // A prefix is a folder: `img` lists img/ only, never `imgx/`; folder markers are skipped.
    let project = svc.project("<View></View>").await;
    let mut fields = s3.fields(&s3.bucket, &k("img"));
    fields["use_blob_urls"] = json!(true);
    let flat = create(&svc, project, fields).await;
    assert_eq!(sync(&svc, flat).await.0, "completed");
    assert_eq!(raw_data(&svc, project).await, s3_uris(&s3, &[k("img/a.jpg"), k("img/b.png")]));
    let (status, count, body) = sync(&svc, flat).await;
    assert_eq!((status.as_str(), count, body["meta"]["tasks_existed"].as_i64()), ("completed", 0, Some(2)));

    // A trailing slash is the same prefix; recursion descends; the regex is matched against the
    // full key from its start (Python `re.match`).
    let project = svc.project("<View></View>").await;
    let mut fields = s3.fields(&s3.bucket, &format!("{}/", k("img")));
    fields["use_blob_urls"] = json!(true);
    fields["recursive_scan"] = json!(true);
    fields["regex_filter"] = json!(format!("{p}/img/(sub/)?[ac]"));
    let deep = create(&svc, project, fields.clone()).await;
    assert_eq!(sync(&svc, deep).await.1, 2);
    assert_eq!(raw_data(&svc, project).await, s3_uris(&s3, &[k("img/a.jpg"), k("img/sub/c.jpg")]));
    fields["regex_filter"] = json!("img/a");
    let anchored = create(&svc, project, fields).await;
    assert_eq!(sync(&svc, anchored).await.1, 0, "a regex matching mid-key only imports nothing");

    // JSON mode: tasks from .json and .jsonl; a broken file is reported, the rest imports.
    let project = svc.project("<View></View>").await;
    let json_storage = create(&svc, project, s3.fields(&s3.bucket, &k("json"))).await;
    let (status, count, body) = sync(&svc, json_storage).await;
    assert_eq!((status.as_str(), count), ("completed_with_errors", 3));
    assert_eq!(
        body["traceback"],
        format!("{}: invalid JSON: key must be a string at line 1 column 2", k("json/3.json"))
    );
    let texts: Vec<Value> = raw_data(&svc, project).await.iter().map(|d| d["text"].clone()).collect();
    assert_eq!(texts, ["one", "two", "three"]);
}

#[tokio::test]
async fn import_of_2500_objects_spans_three_list_pages() {
    let Some(s3) = s3_env() else { return };
    let svc = Service::start().await;
    let p = unique_prefix("many");
    let keys: Vec<String> = (0..2500).map(|i| format!("{p}/{i:04}.txt")).collect();
    upload(&svc, &s3, &keys.iter().map(|k| (k.clone(), b"x".to_vec())).collect::<Vec<_>>()).await;
    let project = svc.project("<View></View>").await;
    let mut fields = s3.fields(&s3.bucket, &p);
    fields["use_blob_urls"] = json!(true);
    let id = create(&svc, project, fields).await;
    assert_eq!(sync(&svc, id).await.1, 2500);
    assert_eq!(raw_data(&svc, project).await, s3_uris(&s3, &keys));
    assert_eq!(sync(&svc, id).await.1, 0);
}

#[tokio::test]
async fn presigned_and_proxied_uris_return_the_right_bytes_for_special_keys() {
    let Some(s3) = s3_env() else { return };
    let svc = Service::start().await;
    let p = unique_prefix("special");
    let names =
        ["sp ace.txt", "plus+sign.txt", "per%25cent%.txt", "ünïcödé 日本.txt", "hash#tag.txt", "q?mark&x=1.txt"];
    let objects: Vec<(String, Vec<u8>)> =
        names.iter().map(|n| (format!("{p}/{n}"), format!("bytes of {n}").into_bytes())).collect();
    upload(&svc, &s3, &objects).await;
    let project = svc.project(r#"<View><Text name="t" value="$doc"/></View>"#).await;
    let mut fields = s3.fields(&s3.bucket, &p);
    fields["use_blob_urls"] = json!(true);
    fields["presign_ttl"] = json!(2);
    let id = create(&svc, project, fields).await;
    assert_eq!(sync(&svc, id).await.1, names.len() as i64);

    let r = svc.get(&format!("/api/tasks/?project={project}")).await;
    let tasks = r.body["tasks"].as_array().unwrap().clone();
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let auth = format!("Token {}", stowage_tests::TOKEN);
    let mut by_key = std::collections::HashMap::new();
    for t in &tasks {
        let id = t["id"].as_i64().unwrap();
        let key = t["storage_filename"].as_str().unwrap().to_string();
        let uri = format!("s3://{}/{key}", s3.bucket);
        // The stored `s3://` URI is shown as the resolver link, under the label config's field.
        assert_eq!(t["data"], json!({"doc": resolver_url(id, &uri)}));
        by_key.insert(key, resolver_url(id, &uri));
    }
    for (key, body) in &objects {
        let link = format!("{}{}", svc.url, by_key[key]);
        let resp = no_redirect.get(&link).header("Authorization", &auth).send().await.unwrap();
        assert_eq!(resp.status(), 303, "{key}");
        assert_eq!(resp.headers()["cache-control"], "no-store, max-age=120");
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        assert!(location.contains("X-Amz-Expires=120&"), "{location}");
        let fetched = reqwest::get(&location).await.unwrap();
        assert_eq!(fetched.status(), 200, "{key}: {location}");
        assert_eq!(fetched.bytes().await.unwrap().as_ref(), body.as_slice(), "{key}");
        // A tampered signature is refused by the server.
        let tampered =
            format!("{}{}", &location[..location.len() - 1], if location.ends_with('0') { '1' } else { '0' });
        assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403, "{key}");
    }

    // An expired URL is refused too (garage answers 400 where AWS answers 403: emulators.md).
    let mut session = stowage::sync::connect(&svc.app, &s3.storage(Direction::Import, &s3.bucket)).unwrap();
    let short = session.presign_get(&objects[0].0, 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(reqwest::get(&short).await.unwrap().status(), 400);

    // presign=false: the service streams the bytes itself, with Range, ETag and 304.
    let r = svc.patch(&format!("/api/storages/s3/{id}"), json!({"presign": false})).await;
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
    // A URI no storage of the project serves is 404.
    let foreign = resolver_url(tasks[0]["id"].as_i64().unwrap(), "s3://another-bucket/x.txt");
    assert_eq!(svc.get(&foreign).await.status, 404);
    // Without resolving, the raw URI is returned.
    let r = svc.get(&format!("/api/tasks/{}?resolve_uri=false", tasks[0]["id"])).await;
    assert!(r.body["data"]["doc"].as_str().unwrap().starts_with(&format!("s3://{}/{p}/", s3.bucket)));
}

#[tokio::test]
async fn annotations_are_exported_under_the_prefix_and_deleted_when_allowed() {
    let Some(s3) = s3_env() else { return };
    let svc = Service::start().await;
    let p = unique_prefix("export");
    let project = svc.project("<View></View>").await;
    let r = svc.post(&format!("/api/projects/{project}/import"), json!([{"text": "t"}])).await;
    let task = r.body["task_ids"][0].as_i64().unwrap();
    let mut fields = s3.fields(&s3.bucket, &format!("{p}/ann/"));
    fields["project"] = json!(project);
    fields["can_delete_objects"] = json!(true);
    let r = svc.post("/api/storages/export/s3", fields).await;
    assert_eq!((r.status, r.body["status"].as_str()), (201, Some("completed")), "{:?}", r.body);
    let export_id = r.body["id"].as_i64().unwrap();
    let result = json!([{"from_name": "c", "to_name": "t", "type": "choices", "value": {"choices": ["x"]}}]);
    let ann = svc.post(&format!("/api/tasks/{task}/annotations"), json!({"result": result})).await.body["id"]
        .as_i64()
        .unwrap();

    let mut session = stowage::sync::connect(&svc.app, &s3.storage(Direction::Import, &s3.bucket)).unwrap();
    let key = format!("{p}/ann/{ann}");
    let object = session.get(&key, None).await.unwrap();
    assert_eq!(object.content_type.as_deref(), Some("application/json"));
    let doc: Value = serde_json::from_slice(&object.body).unwrap();
    assert_eq!((doc["id"].as_i64(), &doc["result"], doc["task"]["id"].as_i64()), (Some(ann), &result, Some(task)));

    let r = svc.post(&format!("/api/storages/export/s3/{export_id}/sync"), Value::Null).await;
    assert_eq!((r.body["status"].as_str(), r.body["last_sync_count"].as_i64()), (Some("completed"), Some(1)));
    assert_eq!(svc.delete(&format!("/api/annotations/{ann}")).await.status, 204);
    let gone = session.get(&key, None).await.unwrap_err();
    assert_eq!(gone.kind, stowage::error::ErrorKind::NotFound);
}

#[tokio::test]
async fn the_default_policy_refuses_loopback_private_and_metadata_endpoints() {
    let Some(s3) = s3_env() else { return };
    let svc = Service::start_with_policy(10_000, false).await;
    let project = svc.project("<View></View>").await;
    let port = s3.endpoint.rsplit(':').next().unwrap();
    for endpoint in [
        s3.endpoint.clone(),
        format!("http://localhost:{port}"),
        format!("http://[::1]:{port}"),
        "http://169.254.169.254".into(),
        "http://10.0.0.1:9000".into(),
    ] {
        let mut fields = s3.fields(&s3.bucket, "");
        fields["project"] = json!(project);
        fields["s3_endpoint"] = json!(endpoint);
        let r = svc.post("/api/storages/s3", fields.clone()).await;
        assert_eq!(r.status, 400, "{endpoint}: {:?}", r.body);
        let message = r.body["validation_errors"]["non_field_errors"][0].as_str().unwrap();
        assert!(message.starts_with("the stowage host refused the connection to "), "{endpoint}: {message}");
        assert_eq!(svc.post("/api/storages/s3/validate", fields).await.status, 400);
    }
    // Non-HTTP endpoints are refused before any connection.
    let mut fields = s3.fields(&s3.bucket, "");
    fields["project"] = json!(project);
    fields["s3_endpoint"] = json!("file:///etc/passwd");
    let r = svc.post("/api/storages/s3", fields).await;
    assert_eq!(
        r.body["validation_errors"]["s3_endpoint"][0],
        "file:///etc/passwd: only http:// and https:// endpoints are allowed"
    );
}
