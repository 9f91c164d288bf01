//! A service killed (SIGKILL) in the middle of a sync leaves a consistent database: every task
//! has its link, the interrupted sync is reported `failed` after the restart, and the next sync
//! imports exactly the rest.

use std::time::Duration;

use serde_json::{Value, json};
use stowage_tests::{Process, free_port};

async fn call(method: reqwest::Method, url: String, body: Value) -> Value {
    let resp = reqwest::Client::new()
        .request(method, url)
        .header("Authorization", format!("Token {}", stowage_tests::TOKEN))
        .json(&body)
        .send()
        .await
        .unwrap();
    resp.json().await.unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_sync_keeps_a_consistent_database_and_resumes() {
    const FILES: usize = 30_000;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("root/many");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..FILES {
        std::fs::write(dir.join(format!("{i:05}.txt")), b"x").unwrap();
    }
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let service = Process::start(tmp.path(), port, &[]).await;
    let project = call(reqwest::Method::POST, format!("{base}/api/projects"), json!({"title": "restart"})).await["id"]
        .as_i64()
        .unwrap();
    let storage = call(
        reqwest::Method::POST,
        format!("{base}/api/storages/localfiles"),
        json!({"project": project, "path": dir, "use_blob_urls": true}),
    )
    .await;
    let id = storage["id"].as_i64().unwrap();

    // Start the sync, kill the process while it runs.
    let sync =
        tokio::spawn(call(reqwest::Method::POST, format!("{base}/api/storages/localfiles/{id}/sync"), Value::Null));
    tokio::time::sleep(Duration::from_millis(250)).await;
    drop(service);
    let _ = sync.await;

    let _service = Process::start(tmp.path(), port, &[]).await;
    let s = call(reqwest::Method::GET, format!("{base}/api/storages/localfiles/{id}"), Value::Null).await;
    let tasks =
        call(reqwest::Method::GET, format!("{base}/api/tasks?project={project}&page_size=1"), Value::Null).await;
    let imported = tasks["total"].as_i64().unwrap();
    eprintln!("after the kill: status {}, {imported} tasks", s["status"]);
    if s["status"] == "completed" {
        // The machine was fast enough to finish before the kill: still consistent.
        assert_eq!(imported, FILES as i64);
    } else {
        assert_eq!(s["status"], "failed");
        assert_eq!(s["traceback"], "The sync was interrupted by a restart of the service; sync again to resume.");
        // Pages are committed whole (5,000 objects): never a task without its link.
        assert_eq!(imported % 5_000, 0, "{imported} tasks after the kill");
    }
    let s = call(reqwest::Method::POST, format!("{base}/api/storages/localfiles/{id}/sync"), Value::Null).await;
    assert_eq!(
        (s["status"].as_str(), s["last_sync_count"].as_i64()),
        (Some("completed"), Some(FILES as i64 - imported))
    );
    assert_eq!(s["meta"]["tasks_existed"].as_i64(), Some(imported));
    let tasks =
        call(reqwest::Method::GET, format!("{base}/api/tasks?project={project}&page_size=1"), Value::Null).await;
    assert_eq!(tasks["total"].as_i64(), Some(FILES as i64));
}
