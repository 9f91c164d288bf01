//! S3 storages against a real S3 server (garage, started by tests/run.sh): the shared
//! object-store scenarios (`stowage_tests::object_store`: Label Studio's prefix, regex and
//! recursion rules across list pages, presigned and proxied URIs, export, connection checks),
//! plus what is S3's own: SigV4 presigned URLs, garage's answer to an expired one, and the SSRF
//! policy on loopback, private and metadata endpoints.

use serde_json::{Value, json};
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

/// An empty `region_name` finds the bucket's region (the test server's is `garage`, not the
/// `us-east-1` discovery starts from), and listing, presigned URLs and proxying use it; a wrong
/// one is refused on create and on validate under `region_name`, with the region to set.
#[tokio::test]
async fn an_empty_region_is_found_and_a_wrong_one_is_refused_under_region_name() {
    let Some(s3) = s3_env() else { return };
    assert_ne!(s3.region, "us-east-1", "discovery is only tested with a server outside the default region");
    let svc = Service::start().await;
    let keys = object_store::special_keys(&svc, &s3, json!({"region_name": ""})).await;
    let scope = format!("%2F{}%2Fs3%2Faws4_request", s3.region);
    for (key, location) in keys.presigned(&svc).await {
        assert!(location.contains(&scope), "{key}: {location}");
    }
    keys.proxied(&svc).await;

    let project = svc.project("<View></View>").await;
    let message = format!(
        "region_name \"eu-west-1\" does not match the region of bucket {bucket}, \"{region}\"; set region_name to \"{region}\" or leave it empty to have it found",
        bucket = s3.bucket,
        region = s3.region
    );
    // Without a prefix (HeadBucket, then a listing for the error document) and with one.
    for prefix in ["", keys.prefix.as_str()] {
        let mut fields = s3.prefix_fields(prefix);
        fields["project"] = json!(project);
        fields["region_name"] = json!("eu-west-1");
        for path in ["/api/storages/s3", "/api/storages/s3/validate", "/api/storages/export/s3"] {
            let r = svc.post(path, fields.clone()).await;
            assert_eq!(r.status, 400, "{path}: {:?}", r.body);
            assert_eq!(r.body["validation_errors"], json!({"region_name": [message]}), "{path} {prefix:?}");
        }
    }
    let r = svc.get(&format!("/api/storages/s3?project={project}")).await;
    assert_eq!(r.body, json!([]));
}

/// A bucket connected twice to one project, once narrowed to a folder and once whole (filtered
/// to that folder by `regex_filter`): the second storage finds the folder's objects imported
/// and creates nothing; its `meta` counts them.
#[tokio::test]
async fn a_folder_and_its_whole_bucket_in_one_project_import_each_object_once() {
    let Some(s3) = s3_env() else { return };
    let svc = Service::start().await;
    let prefix = stowage_tests::unique_prefix("twice");
    let objects: Vec<(String, Vec<u8>)> = (0..3).map(|i| (format!("{prefix}/{i}.txt"), vec![b'x'; i])).collect();
    object_store::seed(&svc, &s3, &objects).await;
    let project = svc.project("<View></View>").await;
    let folder = object_store::create(&svc, "s3", project, s3.blob_fields(&prefix)).await;
    assert_eq!(object_store::sync(&svc, "s3", folder).await.1, 3);
    let mut whole = s3.blob_fields("");
    whole["recursive_scan"] = json!(true);
    whole["regex_filter"] = json!(format!("{prefix}/.*"));
    let whole = object_store::create(&svc, "s3", project, whole).await;
    let (status, created, answer) = object_store::sync(&svc, "s3", whole).await;
    assert_eq!((status.as_str(), created, &answer["meta"]["tasks_already_imported"]), ("completed", 0, &json!(3)));
    let uris: Vec<Value> =
        object_store::raw_data(&svc, project).await.into_iter().map(|d| d["$undefined$"].clone()).collect();
    assert_eq!(uris, objects.iter().map(|(k, _)| json!(s3.uri(k))).collect::<Vec<_>>());
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
