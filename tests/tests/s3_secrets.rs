//! Credentials are write-only: a wrong secret or an unknown bucket is refused with Label Studio's
//! messages, and neither the secret, the session token nor any signature appears in a response
//! body, a storage's status or the service's log (run at debug level).

use serde_json::{Value, json};
use stowage_tests::{ObjectStore, Process, TOKEN, free_port, s3_env};

async fn call(method: reqwest::Method, url: String, body: Value, seen: &mut String) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .request(method, url)
        .header("Authorization", format!("Token {TOKEN}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    seen.push_str(&text);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn wrong_credentials_are_refused_and_no_secret_leaks() {
    let Some(s3) = s3_env() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let service = Process::start(tmp.path(), port, &["--allow-private-addresses"]).await;
    let mut seen = String::new();
    let (_, project) =
        call(reqwest::Method::POST, format!("{base}/api/projects"), json!({"title": "secrets"}), &mut seen).await;
    let project = project["id"].as_i64().unwrap();
    let session_token = "FQoGZXIvYXdzEXAMPLESESSIONTOKENdoNotLeakMe0123456789";
    let wrong_secret = "0".repeat(63) + "1";

    let mut fields = s3.fields(&s3.bucket, "");
    fields["project"] = json!(project);
    let bad = |mutate: &dyn Fn(&mut Value)| {
        let mut f = fields.clone();
        mutate(&mut f);
        f
    };
    let cases = [
        (
            bad(&|f| f["aws_secret_access_key"] = json!(wrong_secret)),
            "Cannot connect to S3 stowage-test with specified AWS credentials",
        ),
        (bad(&|f| f["bucket"] = json!("no-such-bucket")), "Cannot find bucket no-such-bucket in S3"),
    ];
    for (body, message) in &cases {
        for path in ["/api/storages/s3", "/api/storages/s3/validate"] {
            let (status, r) = call(reqwest::Method::POST, format!("{base}{path}"), body.clone(), &mut seen).await;
            assert_eq!((status, &r["validation_errors"]["non_field_errors"][0]), (400, &json!(message)), "{path}");
        }
    }

    // A good storage never shows its credentials, and its sync status holds none either. (Garage
    // ignores session tokens, which only AWS STS issues; the adapter still signs with it.)
    let mut good = fields.clone();
    good["use_blob_urls"] = json!(true);
    good["aws_session_token"] = json!(session_token);
    let (status, created) = call(reqwest::Method::POST, format!("{base}/api/storages/s3"), good, &mut seen).await;
    assert_eq!(status, 201, "{created:?}");
    let id = created["id"].as_i64().unwrap();
    for secret in ["aws_access_key_id", "aws_secret_access_key", "aws_session_token"] {
        assert!(created.get(secret).is_none(), "{secret} returned");
    }
    call(reqwest::Method::POST, format!("{base}/api/storages/s3/{id}/sync"), Value::Null, &mut seen).await;
    // The sync runs in the background: wait for its final status (every answer is kept in `seen`).
    loop {
        let (_, s) = call(reqwest::Method::GET, format!("{base}/api/storages/s3/{id}"), Value::Null, &mut seen).await;
        if ["completed", "completed_with_errors", "failed"].contains(&s["status"].as_str().unwrap_or("")) {
            assert_eq!(s["status"], "completed", "{s:?}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Presigned URLs carry the session token (as in Label Studio): that is the browser's copy,
    // which proxy mode (presign=false) avoids. It appears in the Location header only.
    let uri = format!("s3://{}/any/key.txt", s3.bucket);
    let (_, imported) =
        call(reqwest::Method::POST, format!("{base}/api/projects/{project}/import"), json!([{"url": uri}]), &mut seen)
            .await;
    let task = imported["task_ids"][0].as_i64().unwrap();
    let link = format!("{base}{}", stowage::tasks::uri::resolver_url(task, &uri));
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = no_redirect.get(link).header("Authorization", format!("Token {TOKEN}")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert!(resp.headers()["location"].to_str().unwrap().contains(&format!("X-Amz-Security-Token={session_token}")));
    call(reqwest::Method::GET, format!("{base}/api/storages/s3/{id}"), Value::Null, &mut seen).await;
    call(reqwest::Method::GET, format!("{base}/api/storages/?project={project}"), Value::Null, &mut seen).await;
    // Changing the endpoint without re-entering the secrets is refused (they never follow a
    // storage to another server).
    let (status, r) = call(
        reqwest::Method::PATCH,
        format!("{base}/api/storages/s3/{id}"),
        json!({"s3_endpoint": "http://127.0.0.2:1"}),
        &mut seen,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        r["validation_errors"]["aws_secret_access_key"][0],
        "Enter this secret again when changing the connection settings."
    );

    drop(service);
    let log = std::fs::read_to_string(tmp.path().join("service.log")).unwrap();
    assert!(log.contains("sync finished"), "the log was captured");
    for (name, text) in [("responses", &seen), ("log", &log)] {
        for secret in [s3.secret.as_str(), wrong_secret.as_str(), session_token, "X-Amz-Signature", "Signature="] {
            assert!(!text.contains(secret), "{name} contain {secret:?}");
        }
    }
}

/// The address policy applies when connecting, not only when a storage is created: a storage
/// created while loopback was allowed is refused after a restart under the default policy.
#[tokio::test]
async fn the_address_policy_is_checked_at_connect_time() {
    let Some(s3) = s3_env() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut seen = String::new();
    let service = Process::start(tmp.path(), port, &["--allow-private-addresses"]).await;
    let (_, project) =
        call(reqwest::Method::POST, format!("{base}/api/projects"), json!({"title": "policy"}), &mut seen).await;
    let mut fields = s3.fields(&s3.bucket, "");
    fields["project"] = project["id"].clone();
    fields["use_blob_urls"] = json!(true);
    let (status, created) = call(reqwest::Method::POST, format!("{base}/api/storages/s3"), fields, &mut seen).await;
    assert_eq!(status, 201, "{created:?}");
    drop(service);

    let _strict = Process::start(tmp.path(), port, &[]).await;
    let sync = format!("{base}/api/storages/s3/{}/sync", created["id"]);
    let (status, r) = call(reqwest::Method::POST, sync, Value::Null, &mut seen).await;
    assert_eq!(status, 400);
    let message = r["validation_errors"]["non_field_errors"][0].as_str().unwrap();
    assert!(message.starts_with("the stowage host refused the connection to 127.0.0.1:"), "{message}");
    let log = std::fs::read_to_string(tmp.path().join("service.log")).unwrap();
    assert!(
        log.contains("resolves to the reserved address 127.0.0.1 (allow with --allow-private-addresses)"),
        "the log says why"
    );
}
