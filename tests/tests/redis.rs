//! Redis storages against a real redis-server (started by tests/run.sh): 10,000 JSON values,
//! values that are not tasks, db 0 accepted, a wrong password without leaks, export keys, and the TCP
//! grant (an adapter reaches only its configured host and port).

use serde_json::{Value, json};
use stowage_tests::{Process, RedisEnv, Service, TOKEN, free_port, redis_env, unique_prefix};

async fn create(svc: &Service, path: &str, body: Value) -> (u16, Value) {
    let r = svc.post(path, body).await;
    (r.status, r.body)
}

fn with_project(mut fields: Value, project: i64) -> Value {
    fields["project"] = json!(project);
    fields
}

#[tokio::test]
async fn ten_thousand_json_values_import_once_and_bad_values_are_reported() {
    let Some(redis) = redis_env() else { return };
    let svc = Service::start().await;
    let path = format!("{}:", unique_prefix("tasks"));
    let mut pairs: Vec<(String, String)> =
        (0..10_000).map(|i| (format!("{path}{i:05}"), format!(r#"{{"text": "task {i}"}}"#))).collect();
    pairs.push((format!("{path}array.v1.2"), r#"[{"text": "a1"}, {"text": "a2"}]"#.into()));
    pairs.push((format!("{path}not-json"), "s3://x/y.jpg".into()));
    redis.set_many(1, &pairs);
    redis.cli(1, &["HSET", &format!("{path}hash"), "f", "v"]);
    redis.cli(1, &["SET", &format!("{path}empty"), ""]);
    redis.cli(1, &["SET", "elsewhere:1", r#"{"text": "outside the path"}"#]);

    let project = svc.project("<View></View>").await;
    // use_blob_urls is ignored: Redis values are always task JSON, as in Label Studio.
    let mut fields = with_project(redis.fields(&path, 1), project);
    fields["use_blob_urls"] = json!(true);
    let (status, body) = create(&svc, "/api/storages/redis", fields).await;
    assert_eq!(status, 201, "{body:?}");
    assert!(body.get("password").is_none() && body.get("recursive_scan").is_none(), "{body:?}");
    let id = body["id"].as_i64().unwrap();
    let r = svc.sync(&format!("/api/storages/redis/{id}")).await;
    assert_eq!(
        (r.body["status"].as_str(), r.body["last_sync_count"].as_i64()),
        (Some("completed_with_errors"), Some(10_002))
    );
    let mut lines: Vec<&str> = r.body["traceback"].as_str().unwrap().lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("{path}hash: get: invalid configuration: {path}hash: is a hash, not a string value"),
            format!("{path}not-json: not JSON-formatted tasks (expected a JSON object, a JSON array or JSON Lines)"),
        ]
    );
    // Two pages: 10,000 is the largest page size.
    let mut data = svc.task_data(project).await;
    let r = svc.get(&format!("/api/tasks/?project={project}&page=2&page_size=10000")).await;
    data.extend(r.body["tasks"].as_array().unwrap().iter().map(|t| t["data"].clone()));
    assert_eq!((data.len(), r.body["total"].as_i64()), (10_002, Some(10_002)));
    let texts: std::collections::BTreeSet<String> =
        data.iter().map(|d| d["text"].as_str().unwrap().to_string()).collect();
    let want: std::collections::BTreeSet<String> =
        (0..10_000).map(|i| format!("task {i}")).chain(["a1".to_string(), "a2".to_string()]).collect();
    assert_eq!(texts, want, "exactly the values under the path, once each");

    // Re-sync creates nothing; an empty value filled in later is imported then.
    redis.cli(1, &["SET", &format!("{path}empty"), r#"{"text": "late"}"#]);
    let r = svc.sync(&format!("/api/storages/redis/{id}")).await;
    assert_eq!(r.body["last_sync_count"].as_i64(), Some(1));
    assert_eq!(r.body["meta"]["tasks_existed"].as_i64(), Some(10_002));

    // regex_filter applies to the key (Label Studio ignores it for Redis).
    let project = svc.project("<View></View>").await;
    let mut fields = with_project(redis.fields(&path, 1), project);
    fields["regex_filter"] = json!(format!("{path}0999"));
    let id = create(&svc, "/api/storages/redis", fields).await.1["id"].as_i64().unwrap();
    let r = svc.sync(&format!("/api/storages/redis/{id}")).await;
    assert_eq!(r.body["last_sync_count"].as_i64(), Some(10), "keys {path}09990 to {path}09999");
}

#[tokio::test]
async fn db_zero_imports_and_annotations_are_exported_per_key() {
    let Some(redis) = redis_env() else { return };
    let svc = Service::start().await;
    let project = svc.project("<View></View>").await;
    // Database 0, Redis's default, is a database like any other (Label Studio refuses it).
    let zero = format!("{}:", unique_prefix("db0"));
    redis.set_many(0, &[(format!("{zero}a"), r#"{"text": "in db 0"}"#.into())]);
    let (status, body) = create(&svc, "/api/storages/redis", with_project(redis.fields(&zero, 0), project)).await;
    assert_eq!((status, body["db"].as_i64()), (201, Some(0)), "{body}");
    let r = svc.sync(&format!("/api/storages/redis/{}", body["id"])).await;
    assert_eq!((r.body["status"].as_str(), r.body["last_sync_count"].as_i64()), (Some("completed"), Some(1)));
    assert_eq!(svc.task_data(project).await, [json!({"text": "in db 0"})]);
    redis.cli(0, &["DEL", &format!("{zero}a")]);

    let path = format!("{}:", unique_prefix("ann"));
    let r = svc.post(&format!("/api/projects/{project}/import"), json!([{"text": "t"}])).await;
    let task = r.body["task_ids"][0].as_i64().unwrap();
    let mut fields = with_project(redis.fields(&path, 2), project);
    fields["can_delete_objects"] = json!(true);
    let (status, body) = create(&svc, "/api/storages/export/redis", fields).await;
    assert_eq!(status, 201, "{body:?}");
    let ann =
        svc.post(&format!("/api/tasks/{task}/annotations"), json!({"result": []})).await.body["id"].as_i64().unwrap();
    // stowage writes `{path}{annotation_id}` (Label Studio ignores `path`, so projects overwrite
    // each other's annotations).
    let stored: Value = serde_json::from_str(&redis.cli(2, &["GET", &format!("{path}{ann}")])).unwrap();
    assert_eq!((stored["id"].as_i64(), stored["task"]["id"].as_i64()), (Some(ann), Some(task)));
    assert_eq!(svc.delete(&format!("/api/annotations/{ann}")).await.status, 204);
    assert_eq!(redis.cli(2, &["EXISTS", &format!("{path}{ann}")]), "0");
}

#[tokio::test]
async fn wrong_password_is_refused_and_never_shown() {
    let Some(redis) = redis_env() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let service = Process::start(tmp.path(), port, &["--allow-private-addresses"]).await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client.post(format!("{base}{path}")).header("Authorization", format!("Token {TOKEN}")).json(&body).send()
    };
    let project: Value = post("/api/projects", json!({"title": "redis"})).await.unwrap().json().await.unwrap();
    let wrong = RedisEnv { password: "wrong-password-do-not-leak-4242".into(), ..redis.clone() };
    let mut seen = String::new();
    for path in ["/api/storages/redis", "/api/storages/redis/validate", "/api/storages/export/redis"] {
        let resp = post(path, with_project(wrong.fields("k:", 1), project["id"].as_i64().unwrap())).await.unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["validation_errors"]["non_field_errors"][0], "Can't connect to Redis server.", "{path}");
        seen.push_str(&body.to_string());
    }
    let resp = post("/api/storages/redis", with_project(redis.fields("k:", 1), project["id"].as_i64().unwrap()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    seen.push_str(&resp.text().await.unwrap());
    drop(service);
    let log = std::fs::read_to_string(tmp.path().join("service.log")).unwrap();
    for (name, text) in [("responses", &seen), ("log", &log)] {
        for secret in [wrong.password.as_str(), redis.password.as_str()] {
            assert!(!text.contains(secret), "{name} contain the password");
        }
    }
}

/// The `misbehave` test adapter holds a TCP grant to `host`:`port` and, in `connect:ADDR` mode,
/// tries to connect to ADDR.
async fn probe(svc: &Service, project: i64, mode: &str, host: &str, port: &str) -> Value {
    let body = json!({"project": project, "mode": mode, "host": host, "port": port, "use_blob_urls": true});
    let (status, body) = create(svc, "/api/storages/misbehave", body).await;
    assert_eq!(status, 201, "{body:?}");
    svc.sync(&format!("/api/storages/misbehave/{}", body["id"])).await.body
}

#[tokio::test]
async fn adapters_reach_only_their_granted_host_and_port_and_see_no_environment() {
    let Some(redis) = redis_env() else { return };
    let svc = Service::start().await;
    let project = svc.project("<View></View>").await;
    let granted = format!("{}:{}", redis.host, redis.port);
    let s = probe(&svc, project, &format!("connect:{granted}"), &redis.host, &redis.port).await;
    assert_eq!((s["status"].as_str(), s["last_sync_count"].as_i64()), (Some("completed"), Some(1)), "{s:?}");

    let other_port = free_port();
    let _listener = std::net::TcpListener::bind(("127.0.0.1", other_port)).unwrap();
    for target in [format!("127.0.0.1:{other_port}"), "10.0.0.1:6379".into(), "169.254.169.254:80".into()] {
        let s = probe(&svc, project, &format!("connect:{target}"), &redis.host, &redis.port).await;
        assert_eq!(s["status"], "failed", "{target}");
        let traceback = s["traceback"].as_str().unwrap();
        assert!(traceback.starts_with(&format!("list: access denied: connect to {target}: ")), "{traceback}");
    }
    // With the default policy, even the granted loopback address is refused.
    let strict = Service::start_with_policy(10_000, false).await;
    let project = strict.project("<View></View>").await;
    let s = probe(&strict, project, &format!("connect:{granted}"), &redis.host, &redis.port).await;
    assert_eq!(s["status"], "failed");

    // No environment variables reach an adapter.
    let s = probe(&svc, project_of(&svc).await, "env", &redis.host, &redis.port).await;
    assert_eq!((s["status"].as_str(), s["last_sync_count"].as_i64()), (Some("completed"), Some(0)));
}

async fn project_of(svc: &Service) -> i64 {
    svc.project("<View></View>").await
}

#[tokio::test]
async fn the_password_stays_behind_when_host_port_db_or_project_changes() {
    let Some(redis) = redis_env() else { return };
    assert!(!redis.password.is_empty(), "tests/emulators/redis.sh starts redis-server with a password");
    let svc = Service::start().await;
    let project = project_of(&svc).await;
    let (status, body) = create(&svc, "/api/storages/redis", with_project(redis.fields("moved:", 1), project)).await;
    assert_eq!(status, 201, "{body:?}");
    let moves = [("host", json!("127.0.0.2")), ("port", json!("6380")), ("db", json!(3)), ("path", json!("other:"))];
    svc.assert_secrets_stay_behind(&format!("/api/storages/redis/{}", body["id"]), &moves, &["password"]).await;
}
