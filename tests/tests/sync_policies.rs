//! Edits and deletions by policy (`sync_on_change`, `sync_on_delete`), the deletion brakes
//! (`max_delete_percent`, empty and failing listings) and the one-run-per-storage guard, over
//! local directories (and the `misbehave` test adapter for a listing that fails part-way).
//! Annotated tasks are never changed or removed.

use serde_json::{Value, json};
use stowage_tests::Service;

const TEXT_CONFIG: &str = r#"<View><Text name="t" value="$text"/></View>"#;

/// Creates a local-files import storage of `project` over `dir` with extra `fields`.
async fn local(svc: &Service, project: i64, dir: &std::path::Path, fields: Value) -> String {
    let mut body = json!({"project": project, "path": dir});
    body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    let r = svc.post("/api/storages/localfiles/", body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    format!("/api/storages/localfiles/{}", r.body["id"])
}

/// Syncs and returns the final storage.
async fn sync(svc: &Service, storage: &str) -> Value {
    let r = svc.sync(storage).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

/// The run's counters: (created, updated, removed, marked).
fn counts(s: &Value) -> (i64, i64, i64, i64) {
    let m = &s["meta"];
    let n = |k: &str| m[k].as_i64().unwrap_or_else(|| panic!("meta.{k} missing: {m}"));
    (n("tasks_created"), n("tasks_updated"), n("tasks_removed"), n("tasks_marked"))
}

/// The key of a task's file: its `storage_filename` (the file's absolute path, as in Label
/// Studio) relative to the storage's folder (`{document root}/{folder}/`).
fn key_of(svc: &Service, t: &Value) -> String {
    let path = t["storage_filename"].as_str().unwrap_or("");
    let rel = path.strip_prefix(&format!("{}/", svc.root.display())).unwrap_or(path);
    rel.split_once('/').map_or(rel, |(_, key)| key).to_string()
}

/// Every task of the project, in id order: (key, data, meta).
async fn tasks(svc: &Service, project: i64) -> Vec<(String, Value, Value)> {
    let r = svc.get(&format!("/api/tasks?project={project}&page_size=10000")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["tasks"].as_array().unwrap().iter().map(|t| (key_of(svc, t), t["data"].clone(), t["meta"].clone())).collect()
}

/// The task id of the task imported from `key`.
async fn task_of(svc: &Service, project: i64, key: &str) -> i64 {
    let r = svc.get(&format!("/api/tasks?project={project}&page_size=10000")).await;
    let t = r.body["tasks"].as_array().unwrap().iter().find(|t| key_of(svc, t) == key).expect(key);
    t["id"].as_i64().unwrap()
}

async fn annotate(svc: &Service, task: i64) {
    let r = svc.post(&format!("/api/tasks/{task}/annotations/"), json!({"result": [{"v": 1}]})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

/// Writes a file with content of a different length than before, so the change shows in its
/// size whatever the clock's resolution.
fn write(dir: &std::path::Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

#[tokio::test]
async fn sync_on_change_update_rewrites_unannotated_json_tasks_and_marks_annotated_ones() {
    let svc = Service::start().await;
    let dir = svc.dir(
        "changing",
        &[
            ("a.json", br#"{"text": "a1"}"#),
            ("b.json", br#"{"text": "b1"}"#),
            ("c.json", br#"[{"text": "c1"}, {"text": "d1"}]"#),
            ("e.json", br#"{"text": "e1"}"#),
        ],
    );
    let project = svc.project(TEXT_CONFIG).await;
    let storage = local(&svc, project, &dir, json!({"use_blob_urls": false, "sync_on_change": "update"})).await;
    let s = sync(&svc, &storage).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed"), (5, 0, 0, 0)));
    annotate(&svc, task_of(&svc, project, "b.json").await).await;

    write(&dir, "a.json", r#"{"text": "a2 longer"}"#);
    write(&dir, "b.json", r#"{"text": "b2 longer"}"#);
    // A third row is new; the first two are rewritten.
    write(&dir, "c.json", r#"[{"text": "c2"}, {"text": "d2"}, {"text": "x2"}]"#);
    let s = sync(&svc, &storage).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed"), (1, 4, 0, 0)));
    assert_eq!(s["last_sync_count"], 1);
    assert_eq!(
        tasks(&svc, project).await,
        [
            ("a.json".into(), json!({"text": "a2 longer"}), json!({})),
            ("b.json".into(), json!({"text": "b1"}), json!({"storage_object_changed": true})),
            ("c.json".into(), json!({"text": "c2"}), json!({})),
            ("c.json".into(), json!({"text": "d2"}), json!({})),
            ("e.json".into(), json!({"text": "e1"}), json!({})),
            ("c.json".into(), json!({"text": "x2"}), json!({})),
        ]
    );

    // Nothing changed: nothing is rewritten.
    let s = sync(&svc, &storage).await;
    assert_eq!(counts(&s), (0, 0, 0, 0));
    assert_eq!(s["meta"]["tasks_existed"], 6);

    // A changed file that no longer parses keeps its tasks and says why; fixed, it is read again.
    write(&dir, "a.json", r#"{"text": "#);
    let s = sync(&svc, &storage).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed_with_errors"), (0, 0, 0, 0)));
    assert_eq!(s["traceback"], "a.json: invalid JSON: EOF while parsing a value at line 1 column 9");
    assert_eq!(tasks(&svc, project).await[0].1, json!({"text": "a2 longer"}));
    write(&dir, "a.json", r#"{"text": "a3 much longer"}"#);
    let s = sync(&svc, &storage).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed"), (0, 1, 0, 0)));
    assert_eq!(tasks(&svc, project).await[0].1, json!({"text": "a3 much longer"}));
}

#[tokio::test]
async fn sync_on_change_keep_leaves_tasks_as_imported() {
    let svc = Service::start().await;
    let dir = svc.dir("kept", &[("a.json", br#"{"text": "a1"}"#), ("b.png", b"B")]);
    let project = svc.project(TEXT_CONFIG).await;
    // Label Studio's behaviour is the default.
    let json_storage = local(&svc, project, &dir, json!({"use_blob_urls": false, "regex_filter": r".*\.json"})).await;
    let blob_storage = local(
        &svc,
        project,
        &dir,
        json!({"use_blob_urls": true, "regex_filter": r".*\.png", "sync_on_change": "update"}),
    )
    .await;
    assert_eq!(svc.get(&json_storage).await.body["sync_on_change"], "keep");
    assert_eq!(counts(&sync(&svc, &json_storage).await), (1, 0, 0, 0));
    assert_eq!(counts(&sync(&svc, &blob_storage).await), (1, 0, 0, 0));
    let before = tasks(&svc, project).await;

    write(&dir, "a.json", r#"{"text": "a2 longer"}"#);
    write(&dir, "b.png", "B2 longer");
    let s = sync(&svc, &json_storage).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed"), (0, 0, 0, 0)));
    assert_eq!(s["meta"]["tasks_existed"], 1);
    // Blob mode under `update`: the task stays as it is (its URI is the same); nothing to rewrite.
    let s = sync(&svc, &blob_storage).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed"), (0, 0, 0, 0)));
    assert_eq!(s["meta"]["tasks_existed"], 1);
    assert_eq!(tasks(&svc, project).await, before);
    assert_eq!(before[0].1, json!({"text": "a1"}));
}

#[tokio::test]
async fn sync_on_delete_mark_marks_and_unmarks_and_keep_does_nothing() {
    let svc = Service::start().await;
    let files: Vec<(String, Vec<u8>)> = (0..10).map(|i| (format!("f{i}.png"), vec![b'x'; i + 1])).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    let dir = svc.dir("marked", &refs);
    let project = svc.project(TEXT_CONFIG).await;
    // The two storages are in two projects: in one project the second would find every object
    // imported by the first and import none (README: the same folder connected twice).
    let kept_project = svc.project(TEXT_CONFIG).await;
    let mark = local(&svc, project, &dir, json!({"use_blob_urls": true, "sync_on_delete": "mark"})).await;
    let keep = local(&svc, kept_project, &dir, json!({"use_blob_urls": true})).await;
    assert_eq!(svc.get(&keep).await.body["sync_on_delete"], "keep");
    assert_eq!(counts(&sync(&svc, &mark).await), (10, 0, 0, 0));
    assert_eq!(counts(&sync(&svc, &keep).await), (10, 0, 0, 0));

    std::fs::remove_file(dir.join("f3.png")).unwrap();
    std::fs::remove_file(dir.join("f7.png")).unwrap();
    let s = sync(&svc, &mark).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed"), (0, 0, 0, 2)));
    let s = sync(&svc, &keep).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed"), (0, 0, 0, 0)));
    let kept = tasks(&svc, kept_project).await;
    assert_eq!(kept.len(), 10);
    assert!(kept.iter().all(|t| t.2 == json!({})), "the keep storage marks nothing: {kept:?}");
    let all = tasks(&svc, project).await;
    assert_eq!(all.len(), 10);
    let marked: Vec<(usize, &str)> = all
        .iter()
        .enumerate()
        .filter(|(_, t)| t.2 == json!({"storage_object_missing": true}))
        .map(|(i, t)| (i, t.0.as_str()))
        .collect();
    assert_eq!(marked, [(3, "f3.png"), (7, "f7.png")]);

    // Marks are not counted again; a key that comes back is unmarked and not imported twice.
    let s = sync(&svc, &mark).await;
    assert_eq!(counts(&s), (0, 0, 0, 0));
    write(&dir, "f3.png", "back");
    let s = sync(&svc, &mark).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed"), (0, 0, 0, 0)));
    let all = tasks(&svc, project).await;
    assert_eq!(all.len(), 10);
    let marked: Vec<&str> =
        all.iter().filter(|t| t.2 == json!({"storage_object_missing": true})).map(|t| t.0.as_str()).collect();
    assert_eq!(marked, ["f7.png"]);
    assert_eq!(all[3].2, json!({}));
}

#[tokio::test]
async fn sync_on_delete_delete_removes_unannotated_tasks_and_marks_annotated_ones() {
    let svc = Service::start().await;
    let files: Vec<(String, Vec<u8>)> =
        (0..10).map(|i| (format!("f{i}.json"), format!(r#"{{"text": "t{i}"}}"#).into_bytes())).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    let dir = svc.dir("deleted", &refs);
    let project = svc.project(TEXT_CONFIG).await;
    let storage = local(&svc, project, &dir, json!({"use_blob_urls": false, "sync_on_delete": "delete"})).await;
    assert_eq!(counts(&sync(&svc, &storage).await), (10, 0, 0, 0));
    annotate(&svc, task_of(&svc, project, "f2.json").await).await;

    for i in [1, 2, 5] {
        std::fs::remove_file(dir.join(format!("f{i}.json"))).unwrap();
    }
    let s = sync(&svc, &storage).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed"), (0, 0, 2, 1)));
    assert_eq!(s["traceback"], Value::Null);
    let all = tasks(&svc, project).await;
    let keys: Vec<&str> = all.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(keys, ["f0.json", "f2.json", "f3.json", "f4.json", "f6.json", "f7.json", "f8.json", "f9.json"]);
    assert_eq!(all[1].1, json!({"text": "t2"}), "annotated work is kept as it was");
    assert_eq!(all[1].2, json!({"storage_object_missing": true}));

    // The removed keys come back: the two removed are imported again, the marked one unmarked.
    for i in [1, 2, 5] {
        write(&dir, &format!("f{i}.json"), &format!(r#"{{"text": "t{i}"}}"#));
    }
    let s = sync(&svc, &storage).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed"), (2, 0, 0, 0)));
    let all = tasks(&svc, project).await;
    assert_eq!(all.len(), 10);
    assert!(all.iter().all(|t| t.2 == json!({})), "{all:?}");
}

#[tokio::test]
async fn deletion_brakes_hold_on_large_shares_and_empty_listings() {
    let svc = Service::start().await;
    let files: Vec<(String, Vec<u8>)> = (0..10).map(|i| (format!("f{i}.png"), vec![b'x'])).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    let dir = svc.dir("braked", &refs);
    let project = svc.project(TEXT_CONFIG).await;
    let storage = local(&svc, project, &dir, json!({"use_blob_urls": true, "sync_on_delete": "delete"})).await;
    assert_eq!(svc.get(&storage).await.body["max_delete_percent"], 50);
    assert_eq!(counts(&sync(&svc, &storage).await), (10, 0, 0, 0));

    // 6 of 10 gone (60%) with the default 50%: nothing removed, and the reason with the way out.
    for i in 0..6 {
        std::fs::remove_file(dir.join(format!("f{i}.png"))).unwrap();
    }
    let s = sync(&svc, &storage).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed_with_errors"), (0, 0, 0, 0)));
    assert_eq!(
        s["traceback"],
        "6 of 10 linked objects (60%) are gone from the storage, more than max_delete_percent (50%): \
         nothing was removed or marked. Set max_delete_percent to 60 or more to allow it."
    );
    assert_eq!(tasks(&svc, project).await.len(), 10);

    // Every object gone: an empty listing removes nothing, whatever the limit.
    for i in 6..10 {
        std::fs::remove_file(dir.join(format!("f{i}.png"))).unwrap();
    }
    assert_eq!(svc.patch(&storage, json!({"max_delete_percent": 100})).await.status, 200);
    let s = sync(&svc, &storage).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed_with_errors"), (0, 0, 0, 0)));
    assert_eq!(
        s["traceback"],
        "The listing returned no objects, so the 10 linked objects were not removed or marked \
         (an empty listing never removes anything; check the storage's prefix and filter)."
    );
    assert_eq!(tasks(&svc, project).await.len(), 10);

    // With the limit raised and objects listed, the removal goes through.
    write(&dir, "f9.png", "y");
    let s = sync(&svc, &storage).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed"), (0, 0, 9, 0)));
    assert_eq!(tasks(&svc, project).await.iter().map(|t| t.0.clone()).collect::<Vec<_>>(), ["f9.png"]);

    // Out-of-range and unknown values are refused with the field's name.
    let r = svc.patch(&storage, json!({"max_delete_percent": 101})).await;
    assert_eq!(r.status, 400);
    assert!(r.body["validation_errors"]["max_delete_percent"].is_array(), "{:?}", r.body);
    let r = svc.patch(&storage, json!({"sync_on_delete": "purge"})).await;
    assert_eq!(r.status, 400);
    assert!(r.body["validation_errors"]["sync_on_delete"].is_array(), "{:?}", r.body);
}

#[tokio::test]
async fn a_listing_that_fails_part_way_removes_nothing_and_the_next_run_continues() {
    let svc = Service::start().await;
    let project = svc.project(TEXT_CONFIG).await;
    let create = json!({"project": project, "mode": "pages:5", "use_blob_urls": true, "sync_on_delete": "delete",
                        "max_delete_percent": 100});
    let r = svc.post("/api/storages/misbehave", create).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let storage = format!("/api/storages/misbehave/{}", r.body["id"]);
    let s = sync(&svc, &storage).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed"), (5, 0, 0, 0)));

    // Pages 0-2 are listed, page 3 fails: p3 and p4 are unseen, yet nothing is removed.
    assert_eq!(svc.patch(&storage, json!({"mode": "pages:5:fail:3"})).await.status, 200);
    let s = sync(&svc, &storage).await;
    assert_eq!(s["status"], "failed");
    assert!(s["traceback"].as_str().unwrap().contains("misbehave: page 3 fails"), "{}", s["traceback"]);
    assert_eq!((s["meta"]["pages_done"].as_i64(), s["meta"]["tasks_removed"].as_i64()), (Some(3), Some(0)));
    assert_eq!(tasks(&svc, project).await.len(), 5);

    // Fixed, a new run lists everything and still removes nothing: all five are there.
    assert_eq!(svc.patch(&storage, json!({"mode": "pages:5"})).await.status, 200);
    let s = sync(&svc, &storage).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed"), (0, 0, 0, 0)));
    // Three pages now: p3 and p4 are gone, and removed.
    assert_eq!(svc.patch(&storage, json!({"mode": "pages:3"})).await.status, 200);
    let s = sync(&svc, &storage).await;
    assert_eq!((s["status"].as_str(), counts(&s)), (Some("completed"), (0, 0, 2, 0)));
    let keys: Vec<String> = tasks(&svc, project).await.into_iter().map(|t| t.0).collect();
    assert_eq!(keys, ["p0.json", "p1.json", "p2.json"]);
}

#[tokio::test]
async fn fifty_concurrent_sync_calls_make_one_run() {
    let svc = Service::start().await;
    // Enough files that the run (~1.5 s) outlasts the fifty calls (~0.3 s here): with 3,000 it
    // could finish first, and a later call rightly started a second run (2 of 5 runs failed so).
    let files: Vec<(String, Vec<u8>)> = (0..30_000).map(|i| (format!("f{i:05}.png"), vec![b'x'])).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    let dir = svc.dir("concurrent", &refs);
    let project = svc.project(TEXT_CONFIG).await;
    let storage = local(&svc, project, &dir, json!({"use_blob_urls": true})).await;
    let path = format!("{storage}/sync");
    let calls = (0..50).map(|_| svc.post(&path, Value::Null));
    let replies = futures_util::future::join_all(calls).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200; 50]);
    for r in &replies {
        let status = r.body["status"].as_str().unwrap();
        assert!(["queued", "in_progress", "completed"].contains(&status), "{status}");
    }
    let jobs: std::collections::BTreeSet<String> =
        replies.iter().map(|r| r.body["last_sync_job"].to_string()).collect();
    assert_eq!(jobs.len(), 1, "every call answers with the same run: {jobs:?}");
    assert!(jobs.first().unwrap().trim_matches('"').parse::<i64>().is_ok(), "{jobs:?}");
    let s = svc.wait_sync(&storage).await.body;
    assert_eq!((s["status"].as_str(), s["last_sync_count"].as_i64()), (Some("completed"), Some(30_000)));
    assert_eq!(svc.get(&format!("/api/projects/{project}")).await.body["task_number"], 30_000);
}
