//! GCS storages against fake-gcs-server (started by tests/emulators/gcs.sh): the shared
//! object-store scenarios (`stowage_tests::object_store`: Label Studio's prefix, regex and
//! recursion rules across list pages, signed and proxied URIs, export and deletion, connection
//! checks, the address policy), plus what is GCS's own: V4 signed URLs from a service-account key,
//! plain URLs without one, malformed credentials refused without echoing the key, and the OAuth2
//! JWT-bearer flow against a mock Google.

use serde_json::{Value, json};
use stowage::domain::Direction;
use stowage_tests::object_store::{self, ObjectStore};
use stowage_tests::{Service, gcs_env};

/// Google's published dummy service-account key (googleapis/conformance-tests), the adapter's test data.
const TEST_KEY: &str = include_str!("../../adapters/gcs/tests/data/test_service_account.json");

/// A key percent-encoded for a URL path: unreserved bytes and `/` kept (RFC 3986).
fn encode_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn imports_follow_label_studio_prefix_regex_and_recursion_rules() {
    let Some(gcs) = gcs_env() else { return };
    object_store::imports_follow_prefix_regex_and_recursion_rules(&Service::start().await, &gcs).await;
}

#[tokio::test]
async fn import_of_1200_objects_spans_several_list_pages() {
    let Some(gcs) = gcs_env() else { return };
    object_store::import_spans_list_pages(&Service::start().await, &gcs, 1200, &[500, 500, 200]).await;
}

#[tokio::test]
async fn signed_and_proxied_uris_return_the_right_bytes_for_special_keys() {
    let Some(gcs) = gcs_env() else { return };
    let svc = Service::start().await;
    let keys = object_store::special_keys(&svc, &gcs, json!({"google_application_credentials": TEST_KEY})).await;
    for (key, location) in keys.presigned(&svc).await {
        // Path-style on the endpoint, V4-signed by the service account, for 2 minutes.
        let path = encode_key(&key);
        assert!(
            location.starts_with(&format!(
                "{}/{}/{path}?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=test-iam-credentials%40dummy-project-id.iam.gserviceaccount.com%2F",
                gcs.endpoint, gcs.bucket
            )),
            "{location}"
        );
        assert!(location.contains("&X-Goog-Expires=120&X-Goog-SignedHeaders=host&X-Goog-Signature="), "{location}");
    }
    keys.proxied(&svc).await;
    keys.uris_inside_text(&svc, &gcs).await;

    // Without a key, a "signed" URL is the plain object URL (public objects).
    let (p, objects) = (&keys.prefix, &keys.objects);
    let mut session = object_store::session(&svc, &gcs, Direction::Import);
    let plain = session.presign_get(&objects[0].0, 60).await.unwrap();
    assert_eq!(plain, format!("{}/{}/{p}/sp%20ace.txt", gcs.endpoint, gcs.bucket));
    assert_eq!(reqwest::get(&plain).await.unwrap().bytes().await.unwrap().as_ref(), objects[0].1.as_slice());
    // Stat, ranged reads past the end and missing objects.
    let entry = session.stat(&objects[0].0).await.unwrap();
    assert_eq!((entry.key.as_str(), entry.size), (objects[0].0.as_str(), objects[0].1.len() as u64));
    assert!(entry.etag.is_some() && entry.last_modified.is_some());
    let past = session.get(&objects[0].0, Some((100, None))).await.unwrap();
    assert_eq!((past.body.len(), past.total_size), (0, objects[0].1.len() as u64));
    let missing = session.get(&format!("{p}/nope.txt"), None).await.unwrap_err();
    assert_eq!(missing.kind, stowage::error::ErrorKind::NotFound);
    keys.unserved_and_raw_uris(&svc, &gcs, "another-bucket").await;
}

#[tokio::test]
async fn annotations_are_exported_under_the_prefix_and_deleted_when_allowed() {
    let Some(gcs) = gcs_env() else { return };
    object_store::annotations_are_exported_under_the_prefix_and_deleted_when_allowed(&Service::start().await, &gcs)
        .await;
}

#[tokio::test]
async fn connection_checks_use_label_studio_messages() {
    let Some(gcs) = gcs_env() else { return };
    object_store::connection_checks(
        &Service::start().await,
        &gcs,
        "no-such-bucket",
        "Cannot find bucket no-such-bucket in GCS",
        |bucket, prefix| format!("No blobs found in {bucket}/{prefix} or prefix doesn't exist"),
    )
    .await;
}

#[tokio::test]
async fn malformed_credentials_are_refused_without_echoing_the_key() {
    let Some(gcs) = gcs_env() else { return };
    let svc = Service::start().await;
    let project = svc.project("<View></View>").await;
    let cut = TEST_KEY.find("BEGIN PRIVATE KEY").unwrap() + 300;
    let key_body: Vec<String> = serde_json::from_str::<Value>(TEST_KEY).unwrap()["private_key"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_string)
        .collect();
    for (broken, expected) in [
        (
            TEST_KEY[..cut].to_string(),
            "Google Application Credentials must be valid JSON string. unexpected end of input at line 5 column ",
        ),
        (
            TEST_KEY.replace("MIIEvAIBADAN", "MIIEvAIBADAM"),
            "google_application_credentials: \"private_key\" is not a PEM-encoded RSA private key",
        ),
        (TEST_KEY.replace("client_email", "email"), "google_application_credentials: \"client_email\" is missing"),
    ] {
        let mut fields = gcs.prefix_fields("");
        fields["project"] = json!(project);
        fields["google_application_credentials"] = json!(broken);
        for path in ["/api/storages/gcs", "/api/storages/gcs/validate", "/api/storages/export/gcs"] {
            let r = svc.post(path, fields.clone()).await;
            assert_eq!(r.status, 400, "{path}: {:?}", r.body);
            // A message about the setting is reported under its name, Label Studio's own under
            // non_field_errors.
            let field = expected.split(':').next().filter(|f| *f == "google_application_credentials");
            let errors = r.body["validation_errors"].as_object().unwrap();
            assert_eq!(errors.keys().collect::<Vec<_>>(), [field.unwrap_or("non_field_errors")], "{path}");
            let m = errors.values().next().unwrap()[0].as_str().unwrap();
            assert!(m.starts_with(expected), "{path}: {m}");
            let text = r.body.to_string();
            assert!(!text.contains("PRIVATE KEY"), "{text}");
            for line in &key_body {
                assert!(!text.contains(&line[..16]), "the response repeats the key: {text}");
            }
        }
    }
    let r = svc.get(&format!("/api/storages/gcs?project={project}")).await;
    assert_eq!(r.body, json!([]));
}

#[tokio::test]
async fn the_default_policy_refuses_the_loopback_emulator() {
    let Some(gcs) = gcs_env() else { return };
    object_store::default_policy_refuses_the_loopback_emulator(&gcs).await;
}

/// One request the mock server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
    body: String,
}

/// A minimal GCS + OAuth2 token endpoint on loopback: `POST /token` grants `ya29.stowage-test`,
/// `POST /token-refused` answers `invalid_grant`, bucket and listing requests need the token.
/// Every request is recorded; each connection serves one request (`Connection: close`).
async fn mock_google() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                    })
                };
                let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                while buf.len() < head_end + length {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let mut first = head.lines().next().unwrap_or("").split(' ');
                let (method, path) = (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
                let authorization = header("authorization");
                let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                let authorized = authorization.as_deref() == Some("Bearer ya29.stowage-test");
                let (status, reply) = match (method.as_str(), path.split('?').next().unwrap_or("")) {
                    ("POST", "/token") => {
                        (200, r#"{"access_token":"ya29.stowage-test","expires_in":3599,"token_type":"Bearer"}"#)
                    }
                    ("POST", "/token-refused") => {
                        (400, r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#)
                    }
                    (_, _) if !authorized => (
                        401,
                        r#"{"error":{"code":401,"message":"Invalid Credentials","errors":[{"reason":"authError"}]}}"#,
                    ),
                    ("GET", "/storage/v1/b/private") => (200, r#"{"kind":"storage#bucket","name":"private"}"#),
                    ("GET", "/storage/v1/b/private/o") => {
                        (200, r#"{"kind":"storage#objects","items":[{"name":"a.txt","size":"1"}]}"#)
                    }
                    _ => (404, r#"{"error":{"code":404,"message":"Not Found","errors":[{"reason":"notFound"}]}}"#),
                };
                log.lock().unwrap().push(Seen { method, path, authorization, body });
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (url, seen)
}

/// base64url (no padding) decoding, for reading the JWT the adapter sent.
fn b64url(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => panic!("not base64url: {c}"),
    };
    let bits: Vec<u8> = text.bytes().map(value).collect();
    bits.chunks(4)
        .flat_map(|c| {
            let n = c.iter().enumerate().fold(0u32, |n, (i, v)| n | (u32::from(*v) << (18 - 6 * i)));
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            bytes[..c.len() - 1].to_vec()
        })
        .collect()
}

/// With a key whose `token_uri` is on the endpoint's host, requests carry an OAuth2 token from the
/// JWT-bearer flow, fetched once and reused across calls of the instance.
#[tokio::test]
async fn service_account_tokens_come_from_the_jwt_bearer_flow_and_are_reused() {
    let (url, seen) = mock_google().await;
    let svc = Service::start().await;
    let key = |token_path: &str| TEST_KEY.replace("https://oauth2.googleapis.com/token", &format!("{url}{token_path}"));
    let mut fields = serde_json::Map::new();
    fields.insert("bucket".into(), json!("private"));
    fields.insert("gcs_endpoint".into(), json!(url));
    let mut storage = stowage::domain::Storage::new(Direction::Import, "gcs", 0, fields.clone());
    storage.secrets.insert("google_application_credentials".into(), json!(key("/token")));

    let mut session = svc.app.sessions.open(&storage).unwrap();
    session.check(Direction::Import).await.unwrap();
    let page = session.list("", None, 10, true).await.unwrap();
    assert_eq!(page.entries.iter().map(|e| (e.key.as_str(), e.size)).collect::<Vec<_>>(), [("a.txt", 1)]);
    session.check(Direction::Import).await.unwrap();
    let missing = session.stat("nope.txt").await.unwrap_err();
    assert_eq!(missing.kind, stowage::error::ErrorKind::NotFound);

    let seen = seen.lock().unwrap().clone();
    let paths: Vec<(&str, &str)> =
        seen.iter().map(|s| (s.method.as_str(), s.path.split('?').next().unwrap())).collect();
    assert_eq!(
        paths,
        [
            ("POST", "/token"),
            ("GET", "/storage/v1/b/private"),
            ("GET", "/storage/v1/b/private/o"),
            ("GET", "/storage/v1/b/private"),
            ("GET", "/storage/v1/b/private/o/nope.txt"),
        ]
    );
    assert!(seen[1..].iter().all(|s| s.authorization.as_deref() == Some("Bearer ya29.stowage-test")), "{seen:?}");
    // The token request: a form with the JWT-bearer grant and an RS256 assertion for the account.
    let (grant, assertion) = seen[0].body.split_once('&').unwrap();
    assert_eq!(grant, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer");
    let jwt: Vec<&str> = assertion.strip_prefix("assertion=").unwrap().split('.').collect();
    assert_eq!(jwt.len(), 3);
    let header: Value = serde_json::from_slice(&b64url(jwt[0])).unwrap();
    let claims: Value = serde_json::from_slice(&b64url(jwt[1])).unwrap();
    assert_eq!(header, json!({"alg": "RS256", "typ": "JWT", "kid": "ffffffffffffffffffffffffffffffffffffffff"}));
    assert_eq!(claims["iss"], "test-iam-credentials@dummy-project-id.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], format!("{url}/token"));
    assert_eq!(claims["scope"], "https://www.googleapis.com/auth/devstorage.read_write");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 3600);
    assert_eq!(b64url(jwt[2]).len(), 256, "a 2048-bit RSA signature");

    // A refused assertion fails storage creation with the account and the OAuth error only.
    let project = svc.project("<View></View>").await;
    let mut body = Value::Object(fields);
    body["project"] = json!(project);
    body["google_application_credentials"] = json!(key("/token-refused"));
    let r = svc.post("/api/storages/gcs", body).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(
        r.body["validation_errors"]["non_field_errors"][0],
        "Google refused the service account credentials of test-iam-credentials@dummy-project-id.iam.gserviceaccount.com (invalid_grant, HTTP 400); check google_application_credentials"
    );
}

#[tokio::test]
async fn secrets_stay_behind_when_the_bucket_endpoint_or_project_changes() {
    let Some(gcs) = gcs_env() else { return };
    let moves = [
        ("bucket", json!("another-bucket")),
        ("gcs_endpoint", json!("http://127.0.0.2:4443")),
        ("google_project_id", json!("another-project")),
    ];
    let key = json!({"google_application_credentials": TEST_KEY});
    object_store::secrets_stay_behind_a_moved_storage(
        &Service::start().await,
        &gcs,
        key,
        &moves,
        &["google_application_credentials"],
    )
    .await;
}
