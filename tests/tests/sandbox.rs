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

    let mut import = svc.app.sessions.open(&local_storage(&ds, Direction::Import)).unwrap();
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

    let mut export = svc.app.sessions.open(&local_storage(&ds, Direction::Export)).unwrap();
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
    let r = svc.sync(&format!("/api/storages/misbehave/{id}")).await;
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
    let s = svc.sync(&format!("/api/storages/misbehave/{}", r.body["id"])).await.body;
    assert_eq!(s["traceback"].as_str(), Some("list: adapter failed: the adapter did not answer within 1000 ms"));
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

    // A well-behaved storage of the same adapter still works afterwards.
    let (s, _) = sync_misbehaving(&svc, project, "ok").await;
    assert_eq!((s["status"].as_str(), s["last_sync_count"].as_i64()), (Some("completed"), Some(1)));
    assert_eq!(svc.task_data(project).await, [json!({"$undefined$": "misbehave://ok.json"})]);
}

/// Creates a `misbehave` storage with `fields` (blob mode unless `use_blob_urls` is given) and
/// syncs it; returns the storage after the sync.
async fn sync_with(svc: &Service, project: i64, fields: Value) -> Value {
    let mut body = json!({"project": project, "use_blob_urls": true});
    body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    let r = svc.post("/api/storages/misbehave", body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = svc.sync(&format!("/api/storages/misbehave/{}", r.body["id"])).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

fn outcome(s: &Value) -> (&str, &str) {
    (s["status"].as_str().unwrap(), s["traceback"].as_str().unwrap_or(""))
}

/// Every way out of the sandbox is refused with a clear error, under the default address policy,
/// and the service keeps serving: network outside the grant, loopback and the metadata service,
/// a name that resolves to loopback, files, environment, CPU, memory and answer size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_escapes_are_refused() {
    let svc = Service::start_with(|tmp| {
        let mut s = stowage_tests::settings(tmp, 1_000, false);
        // Room for a 100 MiB answer, so the answer bound (64 MiB) is what stops it.
        s.adapter_memory_mib = 256;
        s
    })
    .await;
    let project = svc.project("<View></View>").await;
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();

    // HTTP: the adapter has no HTTP grant at all.
    let s = sync_with(&svc, project, json!({"mode": format!("http:http://127.0.0.1:{port}/")})).await;
    assert_eq!(
        outcome(&s),
        (
            "failed",
            format!(
                "list: access denied: the stowage host refused the connection to 127.0.0.1:{port} (address policy)"
            )
            .as_str()
        )
    );
    // TCP to a host that is not the granted one.
    let s =
        sync_with(&svc, project, json!({"mode": "connect:10.0.0.1:6379", "host": "127.0.0.1", "port": "6379"})).await;
    assert_eq!(
        outcome(&s),
        ("failed", "list: access denied: connect to 10.0.0.1:6379: Permission denied (os error 2)")
    );
    // Granted, but loopback, the cloud metadata address, and a name resolving to loopback are
    // refused under the default policy.
    for (host, p) in [("127.0.0.1", port), ("169.254.169.254", 80), ("localhost", port)] {
        let addr = format!("{host}:{p}");
        let s =
            sync_with(&svc, project, json!({"mode": format!("connect:{addr}"), "host": host, "port": p.to_string()}))
                .await;
        assert_eq!(
            outcome(&s),
            ("failed", format!("list: access denied: connect to {addr}: Permission denied (os error 2)").as_str()),
            "{addr}"
        );
    }
    // Files: no directory is granted, so no path opens.
    let s = sync_with(&svc, project, json!({"mode": "file:/etc/passwd"})).await;
    assert_eq!(outcome(&s).0, "failed");
    assert!(outcome(&s).1.starts_with("list: access denied: read /etc/passwd: "), "{s:?}");
    // Environment: empty (a sync of its variable names imports nothing).
    let s = sync_with(&svc, project, json!({"mode": "env"})).await;
    assert_eq!((outcome(&s), s["last_sync_count"].as_i64()), (("completed", ""), Some(0)));
    // CPU, memory and answer size.
    let s = sync_with(&svc, project, json!({"mode": "loop"})).await;
    assert_eq!(outcome(&s), ("failed", "list: adapter failed: the adapter did not answer within 1000 ms"));
    let s = sync_with(&svc, project, json!({"mode": "alloc1g"})).await;
    assert_eq!(outcome(&s), ("failed", "list: adapter failed: the adapter exceeded its memory limit of 256 MiB"));
    let s = sync_with(&svc, project, json!({"mode": "big:100", "use_blob_urls": false})).await;
    assert_eq!(
        outcome(&s),
        (
            "completed_with_errors",
            "ok.json: get: adapter failed: the adapter answered 100 MiB, more than the 64 MiB limit"
        )
    );

    // The host is unharmed: the API answers and a healthy storage of the same adapter syncs.
    assert_eq!(svc.get("/api/projects/").await.status, 200);
    let s = sync_with(&svc, project, json!({"mode": "ok"})).await;
    assert_eq!((outcome(&s), s["last_sync_count"].as_i64()), (("completed", ""), Some(1)));
    drop(server);
}

/// A storage whose adapter keeps failing is quarantined: its calls are refused at once while the
/// adapter's other storages go on, `GET /api/adapters` reports it, and installing a new version
/// lifts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeatedly_failing_adapter_is_quarantined() {
    // Its own adapters directory: installing writes there.
    let own = tempfile::tempdir().unwrap();
    let wasm = std::fs::read(stowage_tests::adapters_dir().join("stowage_test_misbehave.wasm")).unwrap();
    std::fs::write(own.path().join("misbehave.wasm"), &wasm).unwrap();
    let dir = own.path().to_path_buf();
    let svc = Service::start_with(|tmp| {
        let mut s = stowage_tests::settings(tmp, 1_000, true);
        s.adapters_dir = dir;
        s.quarantine_after = 3;
        s
    })
    .await;
    let project = svc.project("<View></View>").await;
    let r = svc.post("/api/storages/misbehave", json!({"project": project, "mode": "ok", "use_blob_urls": true})).await;
    let healthy = format!("/api/storages/misbehave/{}/sync", r.body["id"]);
    for _ in 0..3 {
        let s = sync_with(&svc, project, json!({"mode": "trap"})).await;
        assert_eq!(outcome(&s), ("failed", "list: adapter failed: the adapter crashed (wasm trap)"));
    }
    let quarantined = "this storage is quarantined: the misbehave adapter failed 3 of its calls (crash or deadline) within 5 minutes; it is retried when they age out, when its settings change or when a fixed adapter is installed";
    let r =
        svc.post("/api/storages/misbehave", json!({"project": project, "mode": "trap", "use_blob_urls": true})).await;
    assert_eq!((r.status, &r.body["validation_errors"]), (400, &json!({"non_field_errors": [quarantined]})));
    // The adapter's other storages are not held: a storage's data must not stop everyone's.
    let s = svc.sync(healthy.trim_end_matches("/sync")).await.body;
    assert_eq!((outcome(&s), s["last_sync_count"].as_i64()), (("completed", ""), Some(1)));
    let r = svc.post("/api/storages/misbehave", json!({"project": project, "mode": "ok"})).await;
    assert_eq!(r.status, 201);
    let listed = svc.get("/api/adapters").await.body;
    let misbehave = &listed[0];
    assert_eq!(
        (
            &misbehave["status"],
            &misbehave["quarantined_storages"],
            &misbehave["failures_recent"],
            &misbehave["failures_total"]
        ),
        (&json!("quarantined"), &json!(1), &json!(3), &json!(3))
    );

    let r = svc.upload_adapter(wasm).await;
    assert_eq!((r.status, &r.body["status"], &r.body["quarantined_storages"]), (201, &json!("active"), &json!(0)));
    let s = sync_with(&svc, project, json!({"mode": "trap"})).await;
    assert_eq!(outcome(&s), ("failed", "list: adapter failed: the adapter crashed (wasm trap)"));
}

/// The operator's policy narrows what is loaded and reached: `--allowed-adapters` refuses other
/// storage types (at start and upload), `--allowed-hosts` refuses storages pointing elsewhere.
#[tokio::test]
async fn the_operator_policy_limits_adapters_and_hosts() {
    let svc = Service::start_with(|tmp| {
        let mut s = stowage_tests::settings(tmp, 1_000, true);
        s.allowed_adapters = vec!["localfiles".into(), "misbehave".into()];
        s.allowed_hosts = vec![stowage::plugin::grants::HostRule::pattern("*.example.com").unwrap()];
        s
    })
    .await;
    let names: Vec<Value> =
        svc.get("/api/storages/types").await.body.as_array().unwrap().iter().map(|t| t["name"].clone()).collect();
    assert_eq!(names, [json!("localfiles"), json!("misbehave")]);
    let probe = std::fs::read(stowage_tests::adapters_dir().join("stowage_test_cacheprobe.wasm")).unwrap();
    let r = svc.upload_adapter(probe).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["detail"],
        "Adapter refused: storage type \"cacheprobe\" is not among the adapters the operator allows (--allowed-adapters)"
    );

    let project = svc.project("<View></View>").await;
    let r = svc
        .post("/api/storages/misbehave", json!({"project": project, "mode": "ok", "host": "127.0.0.1", "port": "6379"}))
        .await;
    assert_eq!(
        (r.status, &r.body["validation_errors"]),
        (400, &json!({"host": ["127.0.0.1:6379 is not among the hosts the operator allows (--allowed-hosts)"]}))
    );
    let r = svc
        .post(
            "/api/storages/misbehave",
            json!({"project": project, "mode": "ok", "host": "redis.example.com", "port": "6379"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}

/// A task file larger than an adapter may answer is read in ranged parts of at most that size,
/// and nothing counts against the adapter.
#[tokio::test]
async fn task_files_over_the_answer_limit_are_read_in_parts() {
    let svc = Service::start_with(|tmp| {
        let mut s = stowage_tests::settings(tmp, 10_000, true);
        s.max_response_mib = 1;
        s
    })
    .await;
    let big = format!("[{}]", vec![r#"{"text": "0123456789abcdef"}"#; 60_000].join(","));
    assert!(big.len() > 1 << 20);
    let dir = svc.dir("large", &[("big.json", big.as_bytes()), ("small.json", br#"{"text": "small"}"#)]);
    let project = svc.project("<View></View>").await;
    let r =
        svc.post("/api/storages/localfiles", json!({"project": project, "path": dir, "use_blob_urls": false})).await;
    let s = svc.sync(&format!("/api/storages/localfiles/{}", r.body["id"])).await.body;
    assert_eq!((outcome(&s), s["last_sync_count"].as_i64()), (("completed", ""), Some(60_001)));
    let adapters = svc.get("/api/adapters").await.body;
    let localfs = adapters.as_array().unwrap().iter().find(|a| a["type"] == "localfiles").unwrap();
    assert_eq!((&localfs["status"], &localfs["failures_total"]), (&json!("active"), &json!(0)));
}
