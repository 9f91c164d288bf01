//! Proxied reads (`presign: false`) stream in bounded chunks under a cap, against the real binary
//! and the S3 test server: 100 concurrent reads of a 20 MiB object keep the service's memory
//! growth under 200 MB and return every byte; the 101st read beyond `--max-proxy-streams 100`
//! gets 503 with `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use stowage_tests::object_store::{self, ObjectStore};
use stowage_tests::{Process, Service, TOKEN, free_port, s3_env, unique_prefix};

const SIZE: usize = 20 << 20;
const STREAMS: usize = 100;

/// `VmRSS` or `VmHWM` of a process, in MB.
fn memory_mb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

#[tokio::test]
async fn a_hundred_proxied_reads_of_20_mib_stay_under_200_mb_and_the_next_gets_503() {
    let Some(s3) = s3_env() else { return };
    let key = format!("{}/big.bin", unique_prefix("proxy"));
    let body: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    object_store::seed(&Service::start().await, &s3, &[(key.clone(), body)]).await;

    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let service = Process::start(tmp.path(), port, &["--allow-private-addresses", "--max-proxy-streams", "100"]).await;
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, body: Value| {
        http.request(method, format!("{url}{path}"))
            .header("Authorization", format!("Token {TOKEN}"))
            .json(&body)
            .send()
    };
    let project: Value = call(reqwest::Method::POST, "/api/projects".into(), json!({"title": "proxy"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut fields = s3.prefix_fields("");
    fields["project"] = project["id"].clone();
    fields["presign"] = json!(false);
    let r = call(reqwest::Method::POST, "/api/storages/s3".into(), fields).await.unwrap();
    assert_eq!(r.status(), 201);
    let uri = s3.uri(&key);
    let r: Value =
        call(reqwest::Method::POST, format!("/api/projects/{}/import", project["id"]), json!([{"url": uri}]))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let link = format!("{url}{}", stowage::tasks::uri::resolver_url(r["task_ids"][0].as_i64().unwrap(), &uri));

    let before = memory_mb(service.pid(), "VmRSS:");
    // STREAMS readers take their answer's head, wait until all have one, then read to the end.
    let all_open = Arc::new(tokio::sync::Barrier::new(STREAMS + 1));
    let readers: Vec<_> = (0..STREAMS)
        .map(|_| {
            let (link, all_open) = (link.clone(), all_open.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut r = client.get(&link).header("Authorization", format!("Token {TOKEN}")).send().await.unwrap();
                assert_eq!((r.status().as_u16(), r.content_length()), (200, Some(SIZE as u64)));
                all_open.wait().await;
                let (mut n, mut wrong) = (0usize, 0usize);
                while let Some(chunk) = r.chunk().await.unwrap() {
                    wrong += chunk.iter().enumerate().filter(|(i, b)| **b != ((n + i) % 251) as u8).count();
                    n += chunk.len();
                }
                (n, wrong)
            })
        })
        .collect();
    all_open.wait().await;
    let refused =
        reqwest::Client::new().get(&link).header("Authorization", format!("Token {TOKEN}")).send().await.unwrap();
    assert_eq!(
        (refused.status().as_u16(), refused.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string())),
        (503, Some("1".to_string()))
    );
    for reader in readers {
        assert_eq!(reader.await.unwrap(), (SIZE, 0));
    }
    let peak = memory_mb(service.pid(), "VmHWM:");
    eprintln!("service RSS before {before:.0} MB, peak {peak:.0} MB during {STREAMS} proxied reads");
    assert!(peak - before < 200.0, "RSS grew from {before:.0} MB to a {peak:.0} MB peak");

    // Permits come back once the reads end.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again =
        reqwest::Client::new().get(&link).header("Authorization", format!("Token {TOKEN}")).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 200);
    assert_eq!(again.bytes().await.unwrap().len(), SIZE);
}
