//! S3 storages against a real S3 server (garage, started by tests/run.sh): the shared
//! object-store scenarios (`stowage_tests::object_store`: Label Studio's prefix, regex and
//! recursion rules across list pages, presigned and proxied URIs, export, connection checks),
//! plus what is S3's own: SigV4 presigned URLs, garage's answer to an expired one, and the SSRF
//! policy on loopback, private and metadata endpoints.

use serde_json::json;
use stowage_tests::object_store::{self, ObjectStore, refusal};
use stowage_tests::{Service, s3_env};

#[tokio::test]
async fn imports_follow_label_studio_prefix_regex_and_recursion_rules() {
    let Some(s3) = s3_env() else { return };
    object_store::imports_follow_prefix_regex_and_recursion_rules(&Service::start().await, &s3).await;
}

/// 2500 objects: the import spans three S3 list pages (at most 1000 keys each); the adapter pages
/// in pages of 500 on request.
#[tokio::test]
async fn import_of_2500_objects_spans_three_list_pages() {
    let Some(s3) = s3_env() else { return };
    object_store::import_spans_list_pages(&Service::start().await, &s3, 2500, &[500, 500, 500, 500, 500]).await;
}

#[tokio::test]
async fn presigned_and_proxied_uris_return_the_right_bytes_for_special_keys() {
    let Some(s3) = s3_env() else { return };
    let svc = Service::start().await;
    let keys = object_store::special_keys(&svc, &s3, json!({})).await;
    for (key, location) in keys.presigned(&svc).await {
        // SigV4 query signing for the storage's TTL, 2 minutes.
        assert!(location.contains("X-Amz-Expires=120&"), "{location}");
        // A tampered signature is refused by the server.
        let tampered =
            format!("{}{}", &location[..location.len() - 1], if location.ends_with('0') { '1' } else { '0' });
        assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403, "{key}");
    }
    // An expired URL is refused too (garage answers 400 where AWS answers 403: emulators.md).
    keys.expired_url_is_refused(&svc, &s3, 400).await;
    keys.proxied(&svc).await;
    keys.uris_inside_text(&svc, &s3).await;
    keys.unserved_and_raw_uris(&svc, &s3, "another-bucket").await;
}

#[tokio::test]
async fn annotations_are_exported_under_the_prefix_and_deleted_when_allowed() {
    let Some(s3) = s3_env() else { return };
    object_store::annotations_are_exported_under_the_prefix_and_deleted_when_allowed(&Service::start().await, &s3)
        .await;
}

#[tokio::test]
async fn connection_checks_use_label_studio_messages() {
    let Some(s3) = s3_env() else { return };
    object_store::connection_checks(
        &Service::start().await,
        &s3,
        "no-such-bucket",
        "Cannot find bucket no-such-bucket in S3",
        |bucket, prefix| format!("s3://{bucket}/{prefix} not found."),
    )
    .await;
}

#[tokio::test]
async fn the_default_policy_refuses_the_loopback_emulator() {
    let Some(s3) = s3_env() else { return };
    object_store::default_policy_refuses_the_loopback_emulator(&s3).await;
}

#[tokio::test]
async fn the_default_policy_refuses_loopback_private_and_metadata_endpoints() {
    let Some(s3) = s3_env() else { return };
    let svc = Service::start_with_policy(10_000, false).await;
    let project = svc.project("<View></View>").await;
    let port = s3.endpoint.rsplit(':').next().unwrap();
    for endpoint in [
        s3.endpoint.clone(),
        format!("http://localhost:{port}"),
        format!("http://[::1]:{port}"),
        "http://169.254.169.254".into(),
        "http://10.0.0.1:9000".into(),
    ] {
        let mut fields = s3.prefix_fields("");
        fields["project"] = json!(project);
        fields["s3_endpoint"] = json!(endpoint);
        let r = svc.post("/api/storages/s3", fields.clone()).await;
        assert_eq!(r.status, 400, "{endpoint}: {:?}", r.body);
        let message = refusal(&r);
        assert!(message.starts_with("the stowage host refused the connection to "), "{endpoint}: {message}");
        assert_eq!(svc.post("/api/storages/s3/validate", fields).await.status, 400);
    }
    // Non-HTTP endpoints are refused before any connection.
    let mut fields = s3.prefix_fields("");
    fields["project"] = json!(project);
    fields["s3_endpoint"] = json!("file:///etc/passwd");
    let r = svc.post("/api/storages/s3", fields).await;
    assert_eq!(
        r.body["validation_errors"]["s3_endpoint"][0],
        "file:///etc/passwd: only http:// and https:// endpoints are allowed"
    );
}

#[tokio::test]
async fn secrets_stay_behind_when_the_bucket_endpoint_region_or_project_changes() {
    let Some(s3) = s3_env() else { return };
    let moves = [
        ("bucket", json!("another-bucket")),
        ("s3_endpoint", json!("http://127.0.0.2:9000")),
        ("region_name", json!("eu-west-1")),
    ];
    let secrets = ["aws_access_key_id", "aws_secret_access_key"];
    object_store::secrets_stay_behind_a_moved_storage(&Service::start().await, &s3, json!({}), &moves, &secrets).await;
}
