//! A 100,000-key S3 bucket (Garage; `STOWAGE_S3_SCALE_KEYS` lowers it for a quick local run):
//! the sync request answers at once while the run's counters grow, and the same bucket synced
//! through a proxy that answers 5% of requests `503 SlowDown` (Retry-After), resets 1% of
//! connections and cuts 5% of listing pages short ends with every key imported exactly once.
//! A `403` is tried once: the object is reported and the rest imported.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stowage_tests::fault_proxy::{FaultProxy, Faults};
use stowage_tests::{Service, object_store, s3_env, unique_prefix};

fn keys() -> usize {
    std::env::var("STOWAGE_S3_SCALE_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

/// `(links, distinct keys)` of a storage, read from the database.
fn links(svc: &Service, storage_id: i64) -> (i64, i64) {
    let db = rusqlite::Connection::open(svc.database()).unwrap();
    db.query_row("SELECT COUNT(*), COUNT(DISTINCT key) FROM import_links WHERE storage_id = ?1", [storage_id], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .unwrap()
}

async fn total_tasks(svc: &Service, project: i64) -> i64 {
    let r = svc.get(&format!("/api/tasks?project={project}&page_size=1")).await;
    r.body["total"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_key_bucket_syncs_in_the_background_and_through_faults() {
    let Some(s3) = s3_env() else { return };
    let n = keys();
    let svc = Service::start().await;
    let prefix = unique_prefix("scale");
    let objects: Vec<(String, Vec<u8>)> = (0..n).map(|i| (format!("{prefix}/k{i:06}.png"), vec![b'x'])).collect();
    let t = Instant::now();
    object_store::seed(&svc, &s3, &objects).await;
    eprintln!("seeded {n} keys in {:.1} s", t.elapsed().as_secs_f64());

    // In the background: the request answers at once, the counters grow, the end is exact.
    let project = svc.project("<View><Image name=\"i\" value=\"$image\"/></View>").await;
    let mut fields = object_store::ObjectStore::fields(&s3, &s3.bucket, &prefix);
    fields["use_blob_urls"] = json!(true);
    let id = object_store::create(&svc, "s3", project, fields.clone()).await;
    let storage = format!("/api/storages/s3/{id}");
    let t = Instant::now();
    let r = svc.post(&format!("{storage}/sync"), Value::Null).await;
    let answered = t.elapsed();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(["queued", "in_progress"].contains(&r.body["status"].as_str().unwrap()), "{:?}", r.body["status"]);
    assert!(answered < Duration::from_secs(1), "the sync request took {answered:?}");
    let mut listed = Vec::new();
    let s = loop {
        let s = svc.get(&storage).await.body;
        if ["completed", "completed_with_errors", "failed"].contains(&s["status"].as_str().unwrap()) {
            break s;
        }
        if let Some(l) = s["meta"]["objects_listed"].as_u64()
            && listed.last() != Some(&l)
        {
            listed.push(l);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("synced {n} keys in {:.1} s; objects_listed seen: {listed:?}", t.elapsed().as_secs_f64());
    assert_eq!((s["status"].as_str(), s["last_sync_count"].as_u64()), (Some("completed"), Some(n as u64)));
    assert_eq!(
        (s["meta"]["objects_listed"].as_u64(), s["meta"]["tasks_created"].as_u64()),
        (Some(n as u64), Some(n as u64))
    );
    assert!(listed.len() >= 2, "counters seen growing while in progress: {listed:?}");
    assert!(listed.windows(2).all(|w| w[0] < w[1]), "{listed:?}");
    assert_eq!(total_tasks(&svc, project).await, n as i64);
    assert_eq!(links(&svc, id), (n as i64, n as i64));

    // Through faults: every key once, and each kind of fault really happened.
    let proxy = FaultProxy::start(
        &s3.endpoint,
        Faults {
            slow_down_permille: 50,
            retry_after_s: 1,
            reset_permille: 10,
            truncate_list_permille: 50,
            deny_path_containing: Some("forbidden".into()),
        },
    )
    .await;
    // Both storages are created first: their connection checks are the proxy's first requests,
    // which it lets through (faults are drawn from the request's number).
    let faulty_project = svc.project("<View><Image name=\"i\" value=\"$image\"/></View>").await;
    fields["s3_endpoint"] = json!(proxy.endpoint);
    let faulty = object_store::create(&svc, "s3", faulty_project, fields).await;
    let json_prefix = unique_prefix("faulty-json");
    let mut tasks: Vec<(String, Vec<u8>)> = (0..1000)
        .map(|i| (format!("{json_prefix}/t{i:04}.json"), format!(r#"{{"text": "t{i}"}}"#).into_bytes()))
        .collect();
    tasks.push((format!("{json_prefix}/forbidden.json"), br#"{"text": "no"}"#.to_vec()));
    object_store::seed(&svc, &s3, &tasks).await;
    let text_project = svc.project("<View><Text name=\"t\" value=\"$text\"/></View>").await;
    let mut fields = object_store::ObjectStore::fields(&s3, &s3.bucket, &json_prefix);
    fields["s3_endpoint"] = json!(proxy.endpoint);
    fields["use_blob_urls"] = json!(false);
    let denied_before = proxy.get(|c| &c.denied);
    let json_storage = object_store::create(&svc, "s3", text_project, fields).await;
    let t = Instant::now();
    let (status, count, s) = object_store::sync(&svc, "s3", faulty).await;
    eprintln!(
        "through faults: {:.1} s, {} requests, {} slowed, {} reset, {} listings truncated",
        t.elapsed().as_secs_f64(),
        proxy.get(|c| &c.requests),
        proxy.get(|c| &c.slowed),
        proxy.get(|c| &c.reset),
        proxy.get(|c| &c.truncated)
    );
    assert_eq!((status.as_str(), count), ("completed", n as i64), "{:?}", s["traceback"]);
    assert_eq!(total_tasks(&svc, faulty_project).await, n as i64);
    assert_eq!(links(&svc, faulty), (n as i64, n as i64), "no key lost or linked twice");
    // ~100 listing requests at full size: faults are drawn from each request's number, so these
    // counts are the same on every run (4 and 4); a lowered STOWAGE_S3_SCALE_KEYS may draw none.
    if n >= 100_000 {
        assert!(proxy.get(|c| &c.slowed) > 0 && proxy.get(|c| &c.truncated) > 0, "{:?}", proxy.counts);
    }

    // JSON mode reads every object through the same faults; a 403 object is tried once.
    let (status, count, s) = object_store::sync(&svc, "s3", json_storage).await;
    eprintln!(
        "JSON through faults: {} requests, {} slowed, {} reset in all",
        proxy.get(|c| &c.requests),
        proxy.get(|c| &c.slowed),
        proxy.get(|c| &c.reset)
    );
    assert_eq!((status.as_str(), count), ("completed_with_errors", 1000));
    let traceback = s["traceback"].as_str().unwrap();
    assert!(traceback.starts_with(&format!("{json_prefix}/forbidden.json: ")), "{traceback}");
    assert_eq!(traceback.lines().count(), 1, "{traceback}");
    assert_eq!(proxy.get(|c| &c.denied) - denied_before, 1, "a 403 is not retried");
    assert!(proxy.get(|c| &c.reset) > 0, "{:?}", proxy.counts);
    let texts = object_store::texts(&svc, text_project).await;
    let want: Vec<Value> = (0..1000).map(|i| json!(format!("t{i}"))).collect();
    assert_eq!(texts, want);
}
