//! Sandbox: the localfs adapter reaches nothing outside its directory, and a misbehaving adapter
//! (trap, endless loop, unbounded allocation) fails its own call within the deadline while the
//! service keeps answering.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use stowage::domain::{Direction, Storage};
use stowage::error::ErrorKind;
use stowage_tests::Service;

fn local_storage(dir: &std::path::Path, direction: Direction) -> Storage {
    let mut fields = Map::new();
    fields.insert("path".into(), Value::from(dir.to_str().unwrap()));
    Storage::new(direction, "localfiles", 0, fields)
}

#[tokio::test]
async fn localfs_cannot_leave_its_directory() {
    let svc = Service::start().await;
    let ds = svc.dir("ds", &[("inside.json", b"{}")]);
    std::fs::write(svc.root.join("secret.txt"), b"top secret").unwrap();
    std::os::unix::fs::symlink(svc.root.join("secret.txt"), ds.join("link-out.json")).unwrap();
    std::os::unix::fs::symlink("/etc", ds.join("etc-link")).unwrap();

    let mut import = stowage::sync::connect(&svc.app, &local_storage(&ds, Direction::Import)).unwrap();
    for key in ["../secret.txt", "/etc/passwd", "ds/../../secret.txt", "link-out.json", "etc-link/passwd"] {
        let err = import.get(key, None).await.expect_err(key);
        assert!(matches!(err.kind, ErrorKind::Denied | ErrorKind::NotFound), "{key}: {err}");
    }
    // The listing shows the regular file only: links pointing out cannot be followed.
    let page = import.list("", None, 100, true).await.unwrap();
    let keys: Vec<_> = page.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["inside.json"]);
    // An import storage is read-only.
    let err = import.put("new.json", b"{}", None).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Denied | ErrorKind::Transient), "{err}");
    assert!(!ds.join("new.json").exists());

    let mut export = stowage::sync::connect(&svc.app, &local_storage(&ds, Direction::Export)).unwrap();
    for key in ["../evil.json", "/tmp/evil.json", "link-out.json/../../evil.json"] {
        let err = export.put(key, b"{}", None).await.expect_err(key);
        assert_eq!(err.kind, ErrorKind::Denied, "{key}: {err}");
    }
    // Writing through a symlink that points out is refused by WASI itself.
    let err = export.put("link-out.json", b"overwritten", None).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Denied | ErrorKind::NotFound | ErrorKind::Transient), "{err}");
    assert_eq!(std::fs::read(svc.root.join("secret.txt")).unwrap(), b"top secret");
    assert!(!svc.root.join("evil.json").exists());
    assert!(!std::path::Path::new("/tmp/evil.json").exists());
}

/// Creates a `misbehave` storage in `mode` and syncs it; returns the storage after the sync and
/// how long the sync took.
async fn sync_misbehaving(svc: &Service, project: i64, mode: &str) -> (Value, Duration) {
    let r = svc.post("/api/storages/misbehave", json!({"project": project, "mode": mode, "use_blob_urls": true})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let started = Instant::now();
    let r = svc.post(&format!("/api/storages/misbehave/{id}/sync"), json!(null)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    (r.body, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_adapter_fails_its_call_and_the_service_keeps_serving() {
    let svc = std::sync::Arc::new(Service::start_with_timeout(1_000).await);
    let project = svc.project("<View></View>").await;

    let (s, took) = sync_misbehaving(&svc, project, "trap").await;
    assert_eq!(
        (s["status"].as_str(), s["traceback"].as_str()),
        (Some("failed"), Some("list: adapter failed: the adapter crashed (wasm trap)"))
    );
    assert!(took < Duration::from_secs(2), "{took:?}");

    let (s, took) = sync_misbehaving(&svc, project, "alloc").await;
    assert_eq!(s["traceback"].as_str(), Some("list: adapter failed: the adapter exceeded its memory limit of 64 MiB"));
    assert!(took < Duration::from_secs(3), "{took:?}");

    // While a spinning adapter holds a sync, other requests are answered promptly.
    let looping = {
        let svc = svc.clone();
        tokio::spawn(async move { sync_misbehaving(&svc, project, "loop").await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let r = svc.get("/api/projects/").await;
    assert_eq!(r.status, 200);
    assert!(started.elapsed() < Duration::from_millis(500), "answer took {:?}", started.elapsed());
    let (s, took) = looping.await.unwrap();
    assert_eq!(s["status"], "failed");
    assert_eq!(s["traceback"].as_str(), Some("list: adapter failed: the adapter did not answer within 1000 ms"));
    assert!(took >= Duration::from_millis(1_000) && took < Duration::from_secs(3), "{took:?}");

    // A call blocked on the network (a server that accepts and never answers) ends at the
    // deadline too.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let body = json!({"project": project, "mode": format!("read:{addr}"), "host": "127.0.0.1", "port": addr.port().to_string(), "use_blob_urls": true});
    let r = svc.post("/api/storages/misbehave", body).await;
    let started = Instant::now();
    let s = svc.post(&format!("/api/storages/misbehave/{}/sync", r.body["id"]), json!(null)).await.body;
    assert_eq!(s["traceback"].as_str(), Some("list: adapter failed: the adapter did not answer within 1000 ms"));
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

    // A well-behaved storage of the same adapter still works afterwards.
    let (s, _) = sync_misbehaving(&svc, project, "ok").await;
    assert_eq!((s["status"].as_str(), s["last_sync_count"].as_i64()), (Some("completed"), Some(1)));
    assert_eq!(svc.task_data(project).await, [json!({"$undefined$": "misbehave://ok.json"})]);
}
