//! Adapters added at runtime: `POST /api/adapters` with a `.wasm` body registers a new storage
//! type without a restart; a corrupt or foreign component is refused and changes nothing.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stowage_tests::{Process, Service, adapters_dir, free_port, settings};

async fn upload(svc: &Service, bytes: Vec<u8>) -> (u16, Value) {
    let r = svc.upload_adapter(bytes).await;
    (r.status, r.body)
}

fn types(body: &Value) -> Vec<String> {
    body.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn an_uploaded_adapter_serves_its_storage_type_without_a_restart() {
    // A service that starts with the local-files adapter only.
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
    assert_eq!(types(&svc.get("/api/storages/types").await.body), ["localfiles"]);

    // Only administrators install adapters.
    svc.app.store.create_user("annotator@example.com", "annotator", "annotator-token").unwrap();
    let resp = svc
        .http
        .post(format!("{}/api/adapters", svc.url))
        .header("Authorization", "Token annotator-token")
        .body(std::fs::read(adapters_dir().join("stowage_test_misbehave.wasm")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["detail"].as_str(),
        Some("You do not have permission to perform this action.")
    );
    assert_eq!(types(&svc.get("/api/storages/types").await.body), ["localfiles"]);

    // Refused uploads leave the loaded adapters as they were.
    let (status, body) = upload(&svc, b"\0asm not really".to_vec()).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().starts_with("Adapter refused: not a valid WebAssembly component"),
        "{body:?}"
    );
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let (status, body) = upload(&svc, core_module).await;
    assert_eq!(status, 400, "{body:?}");
    assert_eq!(types(&svc.get("/api/storages/types").await.body), ["localfiles"]);

    // Upload to availability, then a storage of the new type syncs.
    let started = Instant::now();
    let (status, body) = upload(&svc, std::fs::read(adapters_dir().join("stowage_test_misbehave.wasm")).unwrap()).await;
    assert_eq!(
        (status, body["type"].as_str(), body["file"].as_str()),
        (201, Some("misbehave"), Some("misbehave.wasm"))
    );
    assert_eq!(types(&svc.get("/api/storages/types").await.body), ["localfiles", "misbehave"]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "upload to availability took {took:?}");
    assert!(only_localfs.path().join("misbehave.wasm").exists(), "saved for the next start");

    let project = svc.project("<View></View>").await;
    let r = svc.post("/api/storages/misbehave", json!({"project": project, "mode": "ok", "use_blob_urls": true})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = svc.sync(&format!("/api/storages/misbehave/{}", r.body["id"])).await;
    assert_eq!((r.body["status"].as_str(), r.body["last_sync_count"].as_i64()), (Some("completed"), Some(1)));

    // Replacing a type's adapter keeps serving it.
    let (status, _) = upload(&svc, std::fs::read(adapters_dir().join("stowage_adapter_localfs.wasm")).unwrap()).await;
    assert_eq!(status, 201);
    assert_eq!(types(&svc.get("/api/storages/types").await.body), ["localfiles", "misbehave"]);
    assert!(!only_localfs.path().join("localfs.wasm").exists() && only_localfs.path().join("localfiles.wasm").exists());
}

/// The storage form of a type is its manifest's settings plus Label Studio's common fields:
/// unknown settings and missing required ones are refused with Label Studio's validation shape.
#[tokio::test]
async fn the_manifest_describes_the_storage_form() {
    let svc = Service::start().await;
    let project = svc.project("<View></View>").await;
    let r = svc.post("/api/storages/misbehave", json!({"project": project, "mode": "ok", "bucket_name": "b"})).await;
    assert_eq!(
        (r.status, &r.body["validation_errors"]),
        (400, &json!({"bucket_name": ["Unknown field: misbehave storage has no setting \"bucket_name\"."]}))
    );
    let r = svc.post("/api/storages/misbehave", json!({"project": project, "port": 5})).await;
    assert_eq!((r.status, &r.body["validation_errors"]), (400, &json!({"mode": ["This field is required."]})));
    // Fields read from the API may be sent back unchanged.
    let r = svc.post("/api/storages/misbehave", json!({"project": project, "mode": "ok"})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let mut echoed = r.body.clone();
    echoed["title"] = json!("renamed");
    let r = svc.patch(&format!("/api/storages/misbehave/{}", r.body["id"]), echoed).await;
    assert_eq!((r.status, r.body["title"].as_str(), r.body["mode"].as_str()), (200, Some("renamed"), Some("ok")));

    let adapters = svc.get("/api/adapters").await.body;
    let misbehave = adapters.as_array().unwrap().iter().find(|a| a["type"] == "misbehave").unwrap();
    let names: Vec<&str> =
        misbehave["manifest"]["settings"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["mode", "host", "port"]);
    assert_eq!(misbehave["manifest"]["settings"][0]["required"], true);
}

/// `bytes` with every `from` rewritten to `to` (same length, so the
/// component stays well-formed): an adapter built for a WIT version this host does not know.
fn retarget(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let (from, to) = (from.as_bytes(), to.as_bytes());
    assert_eq!(from.len(), to.len());
    let mut i = 0;
    let mut replaced = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            replaced += 1;
        }
        i += 1;
    }
    assert!(replaced > 0, "nothing to retarget");
    out
}

/// The host loads adapters of every supported WIT version side by side (0.1.0; 0.2.0, whose
/// `host-cache` import keeps values per storage across instances; 0.3.0, the SDK's), and refuses
/// another version with a message naming it while the loaded adapters keep working.
#[tokio::test]
async fn adapters_of_every_wit_version_load_and_others_are_refused() {
    let own = tempfile::tempdir().unwrap();
    std::fs::copy(adapters_dir().join("stowage_test_misbehave.wasm"), own.path().join("misbehave.wasm")).unwrap();
    let dir = own.path().to_path_buf();
    let svc = Service::start_with(|tmp| {
        let mut s = settings(tmp, 10_000, true);
        s.adapters_dir = dir;
        s
    })
    .await;

    let probe = std::fs::read(adapters_dir().join("stowage_test_cacheprobe.wasm")).unwrap();
    let (status, body) = upload(&svc, probe).await;
    assert_eq!((status, body["type"].as_str(), body["wit_version"].as_str()), (201, Some("cacheprobe"), Some("0.2.0")));
    let legacy = std::fs::read(adapters_dir().join("stowage_test_legacy.wasm")).unwrap();
    let (status, body) = upload(&svc, legacy).await;
    assert_eq!((status, body["type"].as_str(), body["wit_version"].as_str()), (201, Some("legacy"), Some("0.1.0")));
    let listed = svc.get("/api/adapters").await.body;
    let versions: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["type"].as_str().unwrap(), a["wit_version"].as_str().unwrap()))
        .collect();
    assert_eq!(versions, [("cacheprobe", "0.2.0"), ("legacy", "0.1.0"), ("misbehave", "0.3.0")]);

    // Each sync opens a new instance; the count lives in the host cache, per storage.
    let project = svc.project("<View></View>").await;
    let create = |name: &str| json!({"project": project, "name": name, "use_blob_urls": true});
    let a = svc.post("/api/storages/cacheprobe", create("a")).await.body["id"].as_i64().unwrap();
    let b = svc.post("/api/storages/cacheprobe", create("b")).await.body["id"].as_i64().unwrap();
    for storage in [a, a, b] {
        let r = svc.sync(&format!("/api/storages/cacheprobe/{storage}")).await;
        assert_eq!((r.body["status"].as_str(), r.body["last_sync_count"].as_i64()), (Some("completed"), Some(1)));
    }
    let mut data: Vec<String> =
        svc.task_data(project).await.iter().map(|t| t["$undefined$"].as_str().unwrap().to_string()).collect();
    data.sort();
    assert_eq!(data, ["cacheprobe://call-1.json", "cacheprobe://call-1.json", "cacheprobe://call-2.json"]);
    let r = svc.post("/api/storages/legacy", create("l")).await;
    let r = svc.sync(&format!("/api/storages/legacy/{}", r.body["id"])).await;
    assert_eq!((r.body["status"].as_str(), r.body["last_sync_count"].as_i64()), (Some("completed"), Some(1)));

    // A 0.3.0 adapter retargeted to an unknown version is refused by name.
    let misbehave = std::fs::read(adapters_dir().join("stowage_test_misbehave.wasm")).unwrap();
    let (status, body) =
        upload(&svc, retarget(&misbehave, "stowage:storage/backend-api@0.3.0", "stowage:storage/backend-api@9.9.9"))
            .await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (
            400,
            Some(
                "Adapter refused: built for stowage:storage@9.9.9, which this host does not support (it loads 0.1.0, 0.2.0 and 0.3.0)"
            )
        )
    );
    // The loaded adapter of that type keeps working.
    let r = svc.post("/api/storages/misbehave", json!({"project": project, "mode": "ok", "use_blob_urls": true})).await;
    let r = svc.sync(&format!("/api/storages/misbehave/{}", r.body["id"])).await;
    assert_eq!((r.body["status"].as_str(), r.body["last_sync_count"].as_i64()), (Some("completed"), Some(1)));
    assert_eq!(types(&svc.get("/api/storages/types").await.body), ["cacheprobe", "legacy", "misbehave"]);
}

/// A `.wasm` file dropped into the watched adapters directory is loaded without a restart; a
/// corrupt one is refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_dropped_into_the_adapters_directory_is_loaded() {
    let own = tempfile::tempdir().unwrap();
    std::fs::copy(adapters_dir().join("stowage_test_misbehave.wasm"), own.path().join("misbehave.wasm")).unwrap();
    let dir = own.path().to_path_buf();
    let svc = Service::start_with(|tmp| {
        let mut s = settings(tmp, 10_000, true);
        s.adapters_dir = dir;
        s.watch_adapters = true;
        s
    })
    .await;
    assert_eq!(types(&svc.get("/api/storages/types").await.body), ["misbehave"]);

    // A corrupt file, then a good one written in place (not renamed): both settle and load.
    std::fs::write(own.path().join("broken.wasm"), b"\0asm garbage").unwrap();
    std::fs::copy(adapters_dir().join("stowage_test_cacheprobe.wasm"), own.path().join("probe.wasm")).unwrap();
    let started = Instant::now();
    while types(&svc.get("/api/storages/types").await.body).len() < 2 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(types(&svc.get("/api/storages/types").await.body), ["cacheprobe", "misbehave"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let files: Vec<String> = svc
        .get("/api/adapters")
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["file"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(files, ["probe.wasm", "misbehave.wasm"]);
}

/// A warm start finds every adapter's compiled code in the cache: nothing is recompiled, as the
/// log says per adapter.
#[tokio::test]
async fn a_warm_start_loads_every_adapter_from_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let cache = cache.to_str().unwrap();
    let n = std::fs::read_dir(adapters_dir())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "wasm"))
        .count();
    let log = tmp.path().join("service.log");
    let count = |what: &str| std::fs::read_to_string(&log).unwrap().matches(what).count();

    let cold = Process::start(tmp.path(), free_port(), &["--cache-dir", cache]).await;
    drop(cold);
    assert_eq!((count("adapter compiled"), count("adapter code loaded from cache")), (n, 0));
    std::fs::write(&log, "").unwrap();
    let _warm = Process::start(tmp.path(), free_port(), &["--cache-dir", cache]).await;
    assert_eq!((count("adapter compiled"), count("adapter code loaded from cache")), (0, n));
}
