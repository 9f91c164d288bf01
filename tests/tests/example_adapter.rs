//! The SDK's example out-of-tree adapter (`sdk/examples/http-index`, built from the published SDK
//! only, outside this workspace): uploaded to a running service, it serves its storage type at
//! once and imports from a plain `python3 -m http.server`, in blob mode (absolute file URLs) and
//! in JSON mode; and its one-command conformance run (`conformance.sh`) passes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stowage_tests::{Service, adapters_dir, settings};

/// The example's folder.
fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sdk/examples/http-index")
}

/// Builds the example with its own script (its own target dir) and returns the `.wasm` path.
/// Runs cargo: a no-op when nothing changed.
fn build_example() -> PathBuf {
    let out = Command::new(example_dir().join("build.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("sdk/examples/http-index/build.sh runs");
    assert!(out.status.success(), "building the example adapter failed");
    let wasm = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(wasm.exists(), "build.sh printed {}, which does not exist", wasm.display());
    wasm
}

/// `python3 -m http.server` on a free loopback port, serving `dir`; killed on drop.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    fn start(dir: &Path) -> HttpServer {
        // Port 0: the OS picks one, python prints it first ("Serving HTTP on 127.0.0.1 port N ...").
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs (it is needed by the tests, see tests/run.sh)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected http.server banner {line:?}"));
        HttpServer { child, port }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn upload(svc: &Service, bytes: Vec<u8>) -> (u16, Value) {
    let r = svc.upload_adapter(bytes).await;
    (r.status, r.body)
}

fn names(body: &Value) -> Vec<String> {
    body.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
}

async fn create(svc: &Service, fields: Value) -> i64 {
    let r = svc.post("/api/storages/httpindex", fields).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

/// (status, last_sync_count) of a sync run.
async fn sync(svc: &Service, id: i64) -> (String, i64) {
    let r = svc.sync(&format!("/api/storages/httpindex/{id}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    (r.body["status"].as_str().unwrap().to_string(), r.body["last_sync_count"].as_i64().unwrap())
}

#[tokio::test]
async fn the_example_adapter_uploads_and_imports_from_a_plain_http_server() {
    let wasm = build_example();

    // The served folder: blobs (a name with a space, a subfolder) and one JSON task file.
    let served = tempfile::tempdir().unwrap();
    let tasks_json = json!([{"text": "première tâche", "n": 1}, {"text": "second", "n": 2}]);
    for (path, bytes) in [
        ("data/blobs/a.jpg", b"A".to_vec()),
        ("data/blobs/with space.jpg", b"B".to_vec()),
        ("data/blobs/sub/deep.jpg", b"C".to_vec()),
        ("data/tasks/tasks.json", serde_json::to_vec(&tasks_json).unwrap()),
    ] {
        let path = served.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let server = HttpServer::start(served.path());
    let base = format!("http://127.0.0.1:{}/data/", server.port);

    // A service with the local-files adapter only (uploads are saved into its adapters dir, so
    // it is a private copy), allowed to reach the loopback http.server.
    let only_localfs = tempfile::tempdir().unwrap();
    std::fs::copy(adapters_dir().join("stowage_adapter_localfs.wasm"), only_localfs.path().join("localfs.wasm"))
        .unwrap();
    let dir = only_localfs.path().to_path_buf();
    let svc = Service::start_with(|tmp| {
        let mut s = settings(tmp, 10_000, true);
        s.adapters_dir = dir;
        s
    })
    .await;
    assert_eq!(names(&svc.get("/api/storages/types").await.body), ["localfiles"]);

    // Upload to availability in under a second. Read-only: no export type.
    let started = Instant::now();
    let (status, body) = upload(&svc, std::fs::read(&wasm).unwrap()).await;
    assert_eq!(
        (status, body["type"].as_str(), body["file"].as_str()),
        (201, Some("httpindex"), Some("httpindex.wasm"))
    );
    let import_types = svc.get("/api/storages/types").await.body;
    let took = started.elapsed();
    assert_eq!(names(&import_types), ["httpindex", "localfiles"]);
    assert_eq!(import_types[0]["title"], "HTTP directory index");
    assert!(took < Duration::from_secs(1), "upload to availability took {took:?}");
    assert_eq!(names(&svc.get("/api/storages/export/types").await.body), ["localfiles"]);
    assert_eq!(svc.post("/api/storages/export/httpindex", json!({"url": base})).await.status, 404);

    // The adapters list shows its manifest: WIT version, read only, HTTP to `url`'s host only.
    let adapters = svc.get("/api/adapters").await.body;
    let entry = adapters.as_array().unwrap().iter().find(|a| a["type"] == "httpindex").expect("listed");
    assert_eq!((entry["file"].as_str(), entry["wit_version"].as_str()), (Some("httpindex.wasm"), Some("0.3.0")));
    let manifest = &entry["manifest"];
    assert_eq!(manifest["capabilities"], json!({"read": true, "write": false, "delete": false, "presign": false}));
    assert_eq!(manifest["grants"], json!([{"http": {"endpoint_setting": "url", "default_hosts": []}}]));
    let settings: Vec<(&str, bool)> = manifest["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["required"].as_bool().unwrap()))
        .collect();
    assert_eq!(settings, [("url", true), ("prefix", false)]);

    // Blob mode, recursive: one task per file, holding the file's absolute URL (the browser
    // fetches it from the http.server itself), in key order.
    let project = svc.project("<View></View>").await;
    let blobs = create(
        &svc,
        json!({"project": project, "url": base, "prefix": "blobs", "use_blob_urls": true, "recursive_scan": true}),
    )
    .await;
    assert_eq!(sync(&svc, blobs).await, ("completed".to_string(), 3));
    assert_eq!(
        svc.task_data(project).await,
        [
            json!({"$undefined$": format!("{base}blobs/a.jpg")}),
            json!({"$undefined$": format!("{base}blobs/sub/deep.jpg")}),
            json!({"$undefined$": format!("{base}blobs/with%20space.jpg")}),
        ]
    );
    // Those URLs serve the files' bytes.
    let got = reqwest::get(format!("{base}blobs/with%20space.jpg")).await.unwrap().bytes().await.unwrap();
    assert_eq!(&got[..], b"B");
    // A re-sync imports nothing new.
    assert_eq!(sync(&svc, blobs).await, ("completed".to_string(), 0));
    assert_eq!(svc.task_data(project).await.len(), 3);

    // JSON mode: the task file's tasks, exactly.
    let project = svc.project("<View></View>").await;
    let tasks = create(&svc, json!({"project": project, "url": base, "prefix": "tasks"})).await;
    assert_eq!(sync(&svc, tasks).await, ("completed".to_string(), 2));
    assert_eq!(svc.task_data(project).await, tasks_json.as_array().unwrap().clone());
    assert_eq!(sync(&svc, tasks).await, ("completed".to_string(), 0));

    // A folder that does not exist is refused when the storage is created.
    let r = svc.post("/api/storages/httpindex", json!({"project": project, "url": base, "prefix": "nope"})).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(r.body["validation_errors"]["non_field_errors"], json!([format!("{base}nope/: not found")]));
}

/// `sdk/examples/http-index/conformance.sh`: builds the example, serves an empty folder with
/// `python3 -m http.server`, and runs `stowage conformance` on it, in one command.
#[test]
fn the_example_adapter_passes_the_conformance_suite_in_one_command() {
    build_example();
    let out = Command::new(example_dir().join("conformance.sh"))
        .env("STOWAGE_BIN", stowage_tests::binary())
        .output()
        .expect("conformance.sh runs");
    assert!(
        out.status.success(),
        "conformance.sh failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
