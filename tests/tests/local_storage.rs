//! Local-files import and export storages through the REST API: blob and JSON mode, regex_filter
//! and recursive_scan with Label Studio's semantics, bad task files, path refusals, file serving
//! and annotation export.

use serde_json::{Value, json};
use stowage_tests::Service;

const IMAGE_CONFIG: &str =
    r#"<View><Image name="img" value="$image"/><Choices name="c" toName="img"><Choice value="cat"/></Choices></View>"#;

async fn create(svc: &Service, body: Value) -> i64 {
    let r = svc.post("/api/storages/localfiles/", body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

async fn sync(svc: &Service, id: i64) -> Value {
    let r = svc.sync(&format!("/api/storages/localfiles/{id}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

fn summary(s: &Value) -> (String, i64) {
    (s["status"].as_str().unwrap().to_string(), s["last_sync_count"].as_i64().unwrap())
}

#[tokio::test]
async fn blob_mode_with_regex_filter_and_recursive_scan() {
    let svc = Service::start().await;
    let files: [(&str, &[u8]); 5] =
        [("a.jpg", b"A"), ("b c.png", b"BC"), ("sub/d.jpg", b"D"), ("sub/deeper/e.jpg", b"E"), ("notes.txt", b"N")];
    let dir = svc.dir("images", &files);
    let project = svc.project(IMAGE_CONFIG).await;

    // regex_filter matches the basename, anchored at the start only (Python `re.match`).
    let flat =
        create(&svc, json!({"project": project, "path": dir, "use_blob_urls": true, "regex_filter": r".*\.(jpg|png)"}))
            .await;
    let s = sync(&svc, flat).await;
    assert_eq!(summary(&s), ("completed".into(), 2));
    assert_eq!(s["meta"]["tasks_existed"], 0);
    assert_eq!(s["traceback"], Value::Null);
    assert_eq!(
        svc.task_data(project).await,
        [
            json!({"image": "/data/local-files/?d=images/a.jpg"}),
            json!({"image": "/data/local-files/?d=images/b%20c.png"})
        ]
    );
    // Re-sync creates nothing.
    let s = sync(&svc, flat).await;
    assert_eq!(summary(&s), ("completed".into(), 0));
    assert_eq!(s["meta"]["tasks_existed"], 2);
    assert_eq!(s["meta"]["attempts"], 2);

    let deep = create(
        &svc,
        json!({"project": project, "path": dir, "use_blob_urls": true, "recursive_scan": true, "regex_filter": "[de]"}),
    )
    .await;
    assert_eq!(summary(&sync(&svc, deep).await), ("completed".into(), 2));
    let data = svc.task_data(project).await;
    assert_eq!(
        data[2..],
        [
            json!({"image": "/data/local-files/?d=images/sub/d.jpg"}),
            json!({"image": "/data/local-files/?d=images/sub/deeper/e.jpg"})
        ]
    );

    // Task listing keeps `$undefined$` in the database but shows it renamed; `storage_filename` is
    // the file's absolute path, as Label Studio keys local files.
    let r = svc.get(&format!("/api/tasks?project={project}&page=1&page_size=1")).await;
    let a = dir.join("a.jpg");
    assert_eq!((r.body["total"].as_i64(), r.body["tasks"][0]["storage_filename"].as_str()), (Some(4), a.to_str()));
    let id = r.body["tasks"][0]["id"].as_i64().unwrap();
    assert_eq!(svc.get(&format!("/api/tasks/{id}")).await.body["storage_filename"].as_str(), a.to_str());
    assert_eq!(svc.get(&format!("/api/tasks?project={project}&page=5&page_size=1")).await.status, 404);

    // The URL serves the file's bytes, with Range and a weak ETag.
    let url = format!("{}/data/local-files/?d=images/b%20c.png", svc.url);
    let auth = format!("Token {}", stowage_tests::TOKEN);
    let resp = svc.http.get(&url).header("Authorization", &auth).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let etag = resp.headers()["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with("W/\""), "{etag}");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"BC");
    let resp = svc.http.get(&url).header("Authorization", &auth).header("Range", "bytes=1-").send().await.unwrap();
    assert_eq!((resp.status().as_u16(), resp.bytes().await.unwrap().as_ref()), (206, &b"C"[..]));
    let resp = svc.http.get(&url).header("Authorization", &auth).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(resp.status(), 304);
    assert_eq!(svc.http.get(&url).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn json_mode_reports_bad_files_keeps_the_rest_and_imports_them_once_fixed() {
    let svc = Service::start().await;
    let files: [(&str, &[u8]); 7] = [
        ("1-dict.json", br#"{"text": "one"}"#),
        ("2-full.json", br#"{"data": {"text": "two"}, "predictions": [{"result": [], "score": 0.5}], "annotations": [{"result": [{"v": 1}]}]}"#),
        ("3-array.json", br#"[{"text": "three"}, {"text": "four"}]"#),
        ("4-lines.jsonl", b"{\"text\": \"five\"}\n{\"text\": \"six\"}\n"),
        ("5-bad.json", b"{\"text\": "),
        ("6-empty.json", b""),
        ("7-notes.txt", b"hello"),
    ];
    let dir = svc.dir("tasks", &files);
    let project = svc.project("<View><Text name=\"t\" value=\"$text\"/></View>").await;
    let id = create(&svc, json!({"project": project, "path": dir.to_str().unwrap(), "use_blob_urls": false})).await;

    let s = sync(&svc, id).await;
    assert_eq!(summary(&s), ("completed_with_errors".into(), 6));
    assert_eq!(
        s["traceback"].as_str().unwrap(),
        "5-bad.json: invalid JSON: EOF while parsing a value at line 1 column 9\n\
         6-empty.json: the file is empty\n\
         7-notes.txt: \".txt\" is not a task file extension (expected .json or .jsonl); turn on \"Treat every object as a source file\" (use_blob_urls) to import files"
    );
    assert!(!s["traceback"].as_str().unwrap().contains(svc.root.to_str().unwrap()), "no server paths");
    assert_eq!(s["meta"]["objects_failed"], 3);
    let texts: Vec<Value> = svc.task_data(project).await.into_iter().map(|d| d["text"].clone()).collect();
    assert_eq!(texts, ["one", "two", "three", "four", "five", "six"]);
    let r = svc.get(&format!("/api/tasks?project={project}")).await;
    assert_eq!(
        (r.body["total"].as_i64(), r.body["total_annotations"].as_i64(), r.body["total_predictions"].as_i64()),
        (Some(6), Some(1), Some(1))
    );

    // Fixing the file imports it on the next sync; nothing else is duplicated.
    std::fs::write(dir.join("5-bad.json"), br#"{"text": "seven"}"#).unwrap();
    std::fs::remove_file(dir.join("6-empty.json")).unwrap();
    std::fs::remove_file(dir.join("7-notes.txt")).unwrap();
    let s = sync(&svc, id).await;
    assert_eq!(summary(&s), ("completed".into(), 1));
    assert_eq!(s["traceback"], Value::Null);
    assert_eq!(svc.task_data(project).await.len(), 7);

    // Deleting the storage keeps its tasks (as in Label Studio).
    assert_eq!(svc.delete(&format!("/api/storages/localfiles/{id}")).await.status, 204);
    assert_eq!(svc.get(&format!("/api/storages/localfiles/{id}")).await.status, 404);
    assert_eq!(svc.task_data(project).await.len(), 7);
}

#[tokio::test]
async fn paths_outside_the_document_root_are_refused() {
    let svc = Service::start().await;
    let project = svc.project(IMAGE_CONFIG).await;
    svc.dir("ds", &[("a.jpg", b"A")]);
    svc.dir("ds-private", &[("secret.jpg", b"S")]);
    std::fs::write(svc.root.join("top.jpg"), b"T").unwrap();
    let outside = tempfile::tempdir().unwrap();
    for path in [
        outside.path().to_str().unwrap().to_string(),
        svc.root.to_str().unwrap().into(),
        "ds".into(),
        format!("{}/ds/../..", svc.root.display()),
    ] {
        let r = svc.post("/api/storages/localfiles", json!({"project": project, "path": path})).await;
        assert_eq!(r.status, 400, "{path}: {:?}", r.body);
        assert_eq!(r.body["detail"], "Validation error");
        assert!(r.body["validation_errors"]["path"][0].as_str().unwrap().contains("must be a child"), "{:?}", r.body);
    }
    let r = svc.post("/api/storages/localfiles", json!({"project": project})).await;
    assert_eq!((r.status, &r.body["validation_errors"]["path"][0]), (400, &json!("This field is required.")));
    let r =
        svc.post("/api/storages/localfiles/validate", json!({"project": project, "path": svc.root.join("ds")})).await;
    assert_eq!((r.status, &r.body), (200, &Value::Null));

    create(&svc, json!({"project": project, "path": svc.root.join("ds"), "use_blob_urls": true})).await;
    for (d, status) in [
        ("ds/a.jpg", 200),
        ("ds/../ds/a.jpg", 200),
        ("../..", 400),
        ("ds/../../../etc/passwd", 400),
        ("/etc/passwd", 404),
        ("top.jpg", 404),
        ("ds-private/secret.jpg", 404),
        ("ds/missing.jpg", 404),
    ] {
        assert_eq!(svc.get(&format!("/data/local-files/?d={d}")).await.status, status, "d={d}");
    }
}

#[tokio::test]
async fn annotations_are_exported_on_save_and_on_sync_and_deleted_when_allowed() {
    let svc = Service::start().await;
    let project = svc.project(IMAGE_CONFIG).await;
    let r = svc
        .post(&format!("/api/projects/{project}/import"), json!([{"image": "a.jpg"}, {"data": {"image": "b.jpg"}}]))
        .await;
    assert_eq!((r.status, r.body["task_count"].as_i64()), (201, Some(2)));
    let tasks: Vec<i64> = r.body["task_ids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    let result = json!([{"from_name": "c", "to_name": "img", "type": "choices", "value": {"choices": ["cat"]}}]);
    let first = svc.post(&format!("/api/tasks/{}/annotations/", tasks[0]), json!({"result": result})).await.body["id"]
        .as_i64()
        .unwrap();

    // Creating a target storage exports what exists.
    let out = svc.dir("out", &[]);
    let r = svc
        .post("/api/storages/export/localfiles", json!({"project": project, "path": out, "can_delete_objects": true}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let export_id = r.body["id"].as_i64().unwrap();
    // ... in the background: the storage answers queued, and its first run writes the annotation.
    assert_eq!(r.body["status"], "queued");
    let r = svc.wait_sync(&format!("/api/storages/export/localfiles/{export_id}")).await;
    assert_eq!(summary(&r.body), ("completed".into(), 1));
    let keep = svc.dir("keep", &[]);
    let r = svc.post("/api/storages/export/localfiles", json!({"project": project, "path": keep})).await;
    assert_eq!((r.status, r.body["can_delete_objects"].clone()), (201, Value::Null));
    svc.wait_sync(&format!("/api/storages/export/localfiles/{}", r.body["id"])).await;

    // Every save is written at once, named by the annotation id.
    let second = svc
        .post(&format!("/api/tasks/{}/annotations/", tasks[1]), json!({"result": [], "was_cancelled": true}))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let mut names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, [first.to_string(), second.to_string()]);
    let doc: Value = serde_json::from_slice(&std::fs::read(out.join(first.to_string())).unwrap()).unwrap();
    assert_eq!(
        (doc["id"].as_i64(), &doc["result"], doc["task"]["id"].as_i64()),
        (Some(first), &result, Some(tasks[0]))
    );
    assert_eq!(doc["task"]["data"], json!({"image": "a.jpg"}));
    assert_eq!(doc["completed_by"]["email"], "admin@stowage.local");

    let changed = json!([{"from_name": "c", "to_name": "img", "type": "choices", "value": {"choices": []}}]);
    assert_eq!(svc.patch(&format!("/api/annotations/{first}"), json!({"result": changed})).await.status, 200);
    let doc: Value = serde_json::from_slice(&std::fs::read(out.join(first.to_string())).unwrap()).unwrap();
    assert_eq!(doc["result"], changed);

    // Export sync is incremental: both annotations were written when saved, so nothing is left.
    let r = svc.sync(&format!("/api/storages/export/localfiles/{export_id}")).await;
    assert_eq!(summary(&r.body), ("completed".into(), 0));
    assert_eq!(r.body["meta"]["total_annotations"], 2);

    // Deleting removes the object only where the storage allows it.
    assert_eq!(svc.delete(&format!("/api/annotations/{first}")).await.status, 204);
    assert!(!out.join(first.to_string()).exists());
    assert!(keep.join(first.to_string()).exists());
}

/// An export sync writes in batches of 512 over 16 sessions at once: 1,500 annotations land once
/// each, a put that fails costs only its annotation, and the next sync writes just that one.
#[tokio::test]
async fn export_sync_writes_every_annotation_once_and_retries_only_the_failed() {
    let svc = Service::start().await;
    let project = svc.project(IMAGE_CONFIG).await;
    let tasks: Vec<Value> = (0..1500)
        .map(|i| json!({"data": {"image": format!("{i}.jpg")}, "annotations": [{"result": [{"n": i}]}]}))
        .collect();
    let r = svc.post(&format!("/api/projects/{project}/import"), Value::Array(tasks)).await;
    assert_eq!(
        (r.status, r.body["task_count"].as_i64(), r.body["annotation_count"].as_i64()),
        (201, Some(1500), Some(1500))
    );
    let mut annotations = Vec::new();
    for task in r.body["task_ids"].as_array().unwrap() {
        let a = svc.get(&format!("/api/tasks/{task}/annotations/")).await;
        annotations.push((a.body[0]["id"].as_i64().unwrap(), task.as_i64().unwrap()));
    }
    // A directory where one annotation's file goes: that put fails, the others do not.
    let out = svc.dir("out", &[]);
    let blocked = annotations[700].0;
    std::fs::create_dir(out.join(blocked.to_string())).unwrap();

    let r = svc.post("/api/storages/export/localfiles", json!({"project": project, "path": out})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let path = format!("/api/storages/export/localfiles/{}", r.body["id"]);
    let r = svc.wait_sync(&path).await;
    assert_eq!(summary(&r.body), ("completed_with_errors".into(), 1499), "{:?}", r.body);
    assert_eq!(r.body["meta"]["objects_listed"], 1500);
    let traceback = r.body["traceback"].as_str().unwrap();
    assert!(traceback.contains(&format!("annotation {blocked}")), "{traceback}");
    let mut written: Vec<i64> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().into_string().unwrap().parse().unwrap())
        .collect();
    written.sort();
    let want: Vec<i64> = annotations.iter().map(|a| a.0).filter(|&id| id != blocked).collect();
    assert_eq!(written, want);
    for (n, &(id, task)) in annotations.iter().enumerate().filter(|(_, a)| a.0 != blocked).step_by(97) {
        let doc: Value = serde_json::from_slice(&std::fs::read(out.join(id.to_string())).unwrap()).unwrap();
        assert_eq!((doc["id"].as_i64(), doc["task"]["id"].as_i64()), (Some(id), Some(task)));
        assert_eq!((&doc["result"], &doc["task"]["data"]["image"]), (&json!([{"n": n}]), &json!(format!("{n}.jpg"))));
    }

    std::fs::remove_dir(out.join(blocked.to_string())).unwrap();
    let r = svc.sync(&path).await;
    assert_eq!((summary(&r.body), &r.body["traceback"]), (("completed".into(), 1), &Value::Null), "{:?}", r.body);
    let doc: Value = serde_json::from_slice(&std::fs::read(out.join(blocked.to_string())).unwrap()).unwrap();
    assert_eq!(doc["result"], json!([{"n": 700}]));
    let r = svc.sync(&path).await;
    assert_eq!(summary(&r.body), ("completed".into(), 0));
}

#[tokio::test]
async fn storage_api_shapes_and_errors() {
    let svc = Service::start().await;
    let project = svc.project(IMAGE_CONFIG).await;
    let r = svc.get("/api/storages/types").await;
    // Types come from the loaded adapters, in name order; export needs a writable adapter.
    assert_eq!(
        r.body,
        json!([
            {"name": "azure", "title": "Microsoft Azure"},
            {"name": "cacheprobe", "title": "Host cache probe (WIT 0.2.0)"},
            {"name": "gcs", "title": "Google Cloud Storage"},
            {"name": "legacy", "title": "First WIT version (0.1.0)"},
            {"name": "localfiles", "title": "Local files"},
            {"name": "misbehave", "title": "Misbehaving test adapter"},
            {"name": "redis", "title": "Redis"},
            {"name": "s3", "title": "AWS S3"}
        ])
    );
    assert_eq!(
        svc.get("/api/storages/export/types").await.body,
        json!([
            {"name": "azure", "title": "Microsoft Azure"},
            {"name": "gcs", "title": "Google Cloud Storage"},
            {"name": "localfiles", "title": "Local files"},
            {"name": "redis", "title": "Redis"},
            {"name": "s3", "title": "AWS S3"}
        ])
    );
    let r = svc.get("/api/storages/localfiles/").await;
    assert_eq!(
        (r.status, &r.body["validation_errors"]),
        (400, &json!({"non_field_errors": ["query parameter \"project\" is required"]}))
    );
    assert_eq!(svc.get("/api/storages/").await.body, json!([]));

    let dir = svc.dir("ds", &[]);
    let id = create(&svc, json!({"project": project, "path": dir, "title": "mine", "presign": false})).await;
    let r = svc.get(&format!("/api/storages/localfiles/{id}")).await;
    let mut body = r.body.clone();
    body.as_object_mut().unwrap().remove("created_at");
    assert_eq!(
        body,
        json!({"id": id, "type": "localfiles", "project": project, "title": "mine", "description": null,
               "synchronizable": true, "last_sync": null, "last_sync_count": null, "last_sync_job": null,
               "status": "initialized", "traceback": null, "meta": {}, "path": dir.to_str().unwrap(),
               "regex_filter": null, "use_blob_urls": false, "recursive_scan": false,
               "sync_on_change": "keep", "sync_on_delete": "keep", "max_delete_percent": 50})
    );
    let r = svc.patch(&format!("/api/storages/localfiles/{id}"), json!({"title": "renamed"})).await;
    assert_eq!((r.status, r.body["title"].as_str(), r.body["path"].as_str()), (200, Some("renamed"), dir.to_str()));
    let r = svc.patch(&format!("/api/storages/localfiles/{id}"), json!({"path": "/"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(svc.get(&format!("/api/storages/?project={project}")).await.body[0]["title"], "renamed");
    assert_eq!(svc.get(&format!("/api/storages/export/localfiles/{id}")).await.status, 404);
    let r = svc.patch(&format!("/api/storages/localfiles/{id}"), json!({"synchronizable": false})).await;
    assert_eq!(r.status, 200);
    let r = svc.sync(&format!("/api/storages/localfiles/{id}")).await;
    assert_eq!((r.status, r.body.clone()), (400, json!({"message": format!("Storage {id} is not synchronizable")})));

    let r =
        svc.http.get(format!("{}/api/projects/", svc.url)).header("Authorization", "Token wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!((body["status_code"].as_i64(), body["detail"].as_str()), (Some(401), Some("Invalid token.")));
}

/// Task files larger than a commit or one adapter answer: a JSONL of 30,000 tasks with two bad
/// lines imports the other 29,998 and names the bad lines; a 12 MiB JSON array (read in ranged
/// parts) imports whole; a syntax error inside an array keeps the elements before it.
#[tokio::test]
async fn large_task_files_import_in_parts_and_bad_tasks_are_named_and_skipped() {
    let svc = Service::start().await;
    let mut lines: Vec<String> = (0..30_000).map(|i| format!("{{\"text\": \"line {i}\"}}")).collect();
    lines[1] = "{not json".into();
    lines[29_998] = "[\"not a task\"]".into();
    let array = format!(
        "[{}]",
        (0..100_000)
            .map(|i| format!("{{\"text\": \"element {i} {}\"}}", "z".repeat(100)))
            .collect::<Vec<_>>()
            .join(",")
    );
    assert!(array.len() > 12 << 20);
    let jsonl = lines.join("\n");
    let files: [(&str, &[u8]); 3] = [
        ("a.jsonl", jsonl.as_bytes()),
        ("b.json", array.as_bytes()),
        ("c.json", br#"[{"text": "c0"}, {"text": "c1"}, {"text": oops}, {"text": "c3"}]"#),
    ];
    let dir = svc.dir("large", &files);
    let project = svc.project("<View><Text name=\"t\" value=\"$text\"/></View>").await;
    let id = create(&svc, json!({"project": project, "path": dir.to_str().unwrap()})).await;
    let s = sync(&svc, id).await;
    assert_eq!(summary(&s), ("completed_with_errors".into(), 29_998 + 100_000 + 2));
    let traceback: Vec<&str> = s["traceback"].as_str().unwrap().lines().collect();
    assert_eq!(traceback.len(), 3, "{traceback:?}");
    assert!(traceback[0].starts_with("a.jsonl: line 2: invalid JSON: key must be a string"), "{traceback:?}");
    assert_eq!(traceback[1], "a.jsonl: line 29999: a task must be a JSON object");
    assert!(
        traceback[2].starts_with("c.json: invalid JSON array: element 2 (line 1): expected value"),
        "{traceback:?}"
    );
    assert_eq!((s["meta"]["tasks_skipped"].as_i64(), s["meta"]["objects_failed"].as_i64()), (Some(2), Some(1)));
    let r = svc.get(&format!("/api/tasks?project={project}&page_size=3&page=1")).await;
    let texts: Vec<&str> =
        r.body["tasks"].as_array().unwrap().iter().map(|t| t["data"]["text"].as_str().unwrap()).collect();
    assert_eq!((r.body["total"].as_i64(), texts), (Some(130_000), vec!["line 0", "line 2", "line 3"]));
    let r = svc.get(&format!("/api/tasks?project={project}&page_size=1&page=130000")).await;
    assert_eq!(r.body["tasks"][0]["data"]["text"], "c1");
    // Nothing is imported twice on the next sync.
    assert_eq!(summary(&sync(&svc, id).await), ("completed".into(), 0));
}
