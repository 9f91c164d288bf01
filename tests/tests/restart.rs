//! A service killed (SIGKILL) in the middle of a sync resumes the run by itself at its next
//! start, from the cursor committed with the last page: after ten kills at different points of a
//! 100,000-file sync, the run ends `completed` with exactly 100,000 tasks, no object linked twice,
//! and a database that passes `PRAGMA integrity_check`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stowage_tests::{Process, free_port};

async fn call(method: reqwest::Method, url: String, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .request(method, url)
        .header("Authorization", format!("Token {}", stowage_tests::TOKEN))
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

/// Files in the synced folder (`STOWAGE_RESTART_FILES` lowers it for a quick local run).
fn files() -> usize {
    std::env::var("STOWAGE_RESTART_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

/// `(links, distinct linked keys, integrity_check)` read from the database file.
fn database_facts(data: &Path) -> (i64, i64, String) {
    let db = rusqlite::Connection::open(data.join("stowage.sqlite3")).unwrap();
    let (links, keys) = db
        .query_row("SELECT COUNT(*), COUNT(DISTINCT key) FROM import_links", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    (links, keys, check)
}

/// Polls the storage until its run is no longer queued or in progress (at most 5 minutes).
async fn finished(storage_url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (_, s) = call(reqwest::Method::GET, storage_url.to_string(), Value::Null).await;
        if s["status"] != "queued" && s["status"] != "in_progress" {
            return s;
        }
        assert!(Instant::now() < deadline, "not finished after 5 minutes: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_ten_times_resumes_by_itself_and_imports_each_object_once() {
    let n = files();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("root/many");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("{i:06}.txt")), b"x").unwrap();
    }
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut service = Process::start(tmp.path(), port, &[]).await;
    let (_, project) = call(reqwest::Method::POST, format!("{base}/api/projects"), json!({"title": "restart"})).await;
    let project = project["id"].as_i64().unwrap();
    let (_, storage) = call(
        reqwest::Method::POST,
        format!("{base}/api/storages/localfiles"),
        json!({"project": project, "path": dir, "use_blob_urls": true}),
    )
    .await;
    let id = storage["id"].as_i64().unwrap();
    let storage_url = format!("{base}/api/storages/localfiles/{id}");

    let asked = Instant::now();
    let (status, s) = call(reqwest::Method::POST, format!("{storage_url}/sync"), Value::Null).await;
    assert!(asked.elapsed() < Duration::from_secs(1), "the sync request answers at once");
    assert_eq!(status, 200);
    assert!(["queued", "in_progress"].contains(&s["status"].as_str().unwrap()), "{s:?}");

    // Kill points: right after the request, then each time another tenth of the files is in and
    // the resumed run has committed at least one page since the last kill (so no two kills see the
    // same count), plus a few milliseconds so some kills land mid-page (between the listing and
    // the commit).
    let mut kills: Vec<i64> = Vec::new();
    for point in 0..10usize {
        let threshold = (point * n / 10) as i64;
        loop {
            let (_, s) = call(reqwest::Method::GET, storage_url.clone(), Value::Null).await;
            let created = s["meta"]["tasks_created"].as_i64().unwrap_or(0);
            assert_ne!(s["status"], "failed", "{s:?}");
            if created >= threshold && kills.last().is_none_or(|&last| created > last) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis((point as u64 * 7) % 40)).await;
        let (_, s) = call(reqwest::Method::GET, storage_url.clone(), Value::Null).await;
        if s["status"] == "completed" {
            break;
        }
        drop(service); // SIGKILL
        kills.push(s["meta"]["tasks_created"].as_i64().unwrap_or(0));
        let (links, keys, check) = database_facts(&tmp.path().join("data"));
        assert_eq!((links, check.as_str()), (keys, "ok"), "after kill {}: every object linked once", kills.len());
        service = Process::start(tmp.path(), port, &[]).await;
        let (_, s) = call(reqwest::Method::GET, storage_url.clone(), Value::Null).await;
        assert!(["queued", "in_progress"].contains(&s["status"].as_str().unwrap()), "resumed by itself: {s:?}");
    }
    eprintln!("killed at tasks_created = {kills:?}");
    assert_eq!(kills.len(), 10, "the sync ended before the tenth kill: {kills:?}");
    assert!(kills.windows(2).all(|w| w[0] < w[1]), "ten different points: {kills:?}");

    let s = finished(&storage_url).await;
    assert_eq!((s["status"].as_str(), s["last_sync_count"].as_i64()), (Some("completed"), Some(n as i64)), "{s:?}");
    assert_eq!(s["traceback"], Value::Null);
    assert_eq!(s["meta"]["tasks_existed"], 0);
    // Counters commit with their page: a page listed again after a kill is counted once.
    assert_eq!(
        (s["meta"]["objects_listed"].as_u64(), s["meta"]["objects_matched"].as_u64()),
        (Some(n as u64), Some(n as u64))
    );
    let (_, tasks) =
        call(reqwest::Method::GET, format!("{base}/api/tasks?project={project}&page_size=1"), Value::Null).await;
    assert_eq!(tasks["total"].as_i64(), Some(n as i64));
    drop(service);
    let (links, keys, check) = database_facts(&tmp.path().join("data"));
    assert_eq!((links, keys, check.as_str()), (n as i64, n as i64, "ok"));

    // A re-sync after all that imports nothing.
    let service = Process::start(tmp.path(), port, &[]).await;
    call(reqwest::Method::POST, format!("{storage_url}/sync"), Value::Null).await;
    let s = finished(&storage_url).await;
    assert_eq!((s["status"].as_str(), s["last_sync_count"].as_i64()), (Some("completed"), Some(0)));
    assert_eq!(s["meta"]["tasks_existed"].as_i64(), Some(n as i64));
    drop(service);
}

/// One JSONL file of 200,000 tasks (~12 MiB: read in ranged parts, committed in parts of
/// 10,000) and a small one: killed three times inside the big file, the run goes on after the
/// file's last committed row each time and ends with every task once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_inside_a_task_file_continues_after_its_last_committed_row() {
    let n = 200_000;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("root/jsonl");
    std::fs::create_dir_all(&dir).unwrap();
    let big: String = (0..n).map(|i| format!("{{\"text\": \"task {i:06} {}\"}}\n", "y".repeat(40))).collect();
    std::fs::write(dir.join("big.jsonl"), big).unwrap();
    std::fs::write(dir.join("small.json"), r#"[{"text": "small 0"}, {"text": "small 1"}]"#).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut service = Process::start(tmp.path(), port, &[]).await;
    let (_, project) = call(reqwest::Method::POST, format!("{base}/api/projects"), json!({"title": "jsonl"})).await;
    let project = project["id"].as_i64().unwrap();
    let (_, storage) = call(
        reqwest::Method::POST,
        format!("{base}/api/storages/localfiles"),
        json!({"project": project, "path": dir}),
    )
    .await;
    let storage_url = format!("{base}/api/storages/localfiles/{}", storage["id"]);
    call(reqwest::Method::POST, format!("{storage_url}/sync"), Value::Null).await;

    let mut kills: Vec<i64> = Vec::new();
    for threshold in [20_000, 80_000, 140_000] {
        loop {
            let (_, s) = call(reqwest::Method::GET, storage_url.clone(), Value::Null).await;
            assert_ne!(s["status"], "completed", "finished before the kill at {threshold}: {s:?}");
            let created = s["meta"]["tasks_created"].as_i64().unwrap_or(0);
            if created >= threshold {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(service); // SIGKILL
        let db = rusqlite::Connection::open(tmp.path().join("data/stowage.sqlite3")).unwrap();
        let (rows, distinct, open): (i64, i64, Option<String>) = db
            .query_row(
                "SELECT (SELECT COUNT(*) FROM import_links), (SELECT COUNT(DISTINCT key || '#' || row_index) FROM import_links),
                        (SELECT open_object FROM sync_runs ORDER BY id DESC LIMIT 1)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(rows, distinct, "after a kill: every row linked once");
        assert_eq!(open.as_deref(), Some("big.jsonl"), "the run names the file it was inside");
        kills.push(rows);
        service = Process::start(tmp.path(), port, &[]).await;
    }
    assert!(kills.windows(2).all(|w| w[0] < w[1]), "{kills:?}");
    let s = finished(&storage_url).await;
    assert_eq!(
        (s["status"].as_str(), s["last_sync_count"].as_i64(), &s["traceback"]),
        (Some("completed"), Some(n + 2), &Value::Null),
        "{s:?}"
    );
    // The page listed again after each kill is counted once.
    assert_eq!((s["meta"]["objects_listed"].as_i64(), s["meta"]["objects_matched"].as_i64()), (Some(2), Some(2)));
    drop(service);
    let db = rusqlite::Connection::open(tmp.path().join("data/stowage.sqlite3")).unwrap();
    let (tasks, texts, rows): (i64, i64, i64) = db
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT json_extract(data, '$.text')),
                    (SELECT COUNT(DISTINCT row_index) FROM import_links WHERE key = 'big.jsonl') FROM tasks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((tasks, texts, rows), (n + 2, n + 2, n));
}
