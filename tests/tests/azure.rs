//! Azure Blob storages against Azurite (started by tests/emulators/azure.sh): the shared
//! object-store scenarios (`stowage_tests::object_store`: Label Studio's prefix, regex and
//! recursion rules across list pages, SAS and proxied URIs, export, connection checks, the address
//! policy), plus what is Azure's own: folder placeholder blobs (`hdi_isfolder`), the service SAS
//! format (Azurite verifies every signature), Azure's credential and container-name errors, and
//! SAS-token and connection-string storages.

use serde_json::json;
use stowage_tests::object_store::{self, ObjectStore, create, raw_data, refused, seed, sync, texts};
use stowage_tests::{AzureEnv, Service, azure_env, unique_prefix};

/// Azurite operations the adapter does not offer (blob metadata, container SAS tokens), as a
/// SharedKey or SAS client written from the REST docs. Reads the STOWAGE_AZURE_* variables.
///
/// `put CONTAINER BLOB [NAME=VALUE...]`: Put Blob (empty body) with `x-ms-meta-NAME` metadata;
/// prints the status. `sas CONTAINER PERMISSIONS SECONDS`: prints a container service SAS token.
const AZURITE_TOOL: &str = r#"
import base64, email.utils, hashlib, hmac, os, sys, time, urllib.error, urllib.parse, urllib.request
endpoint, account = os.environ["STOWAGE_AZURE_ENDPOINT"], os.environ["STOWAGE_AZURE_ACCOUNT_NAME"]
key = base64.b64decode(os.environ["STOWAGE_AZURE_ACCOUNT_KEY"])
sign = lambda text: base64.b64encode(hmac.new(key, text.encode(), hashlib.sha256).digest()).decode()
cmd = sys.argv[1]
if cmd == "put":
    container, blob, meta = sys.argv[2], sys.argv[3], sys.argv[4:]
    url = f"{endpoint}/{container}/{urllib.parse.quote(blob, safe='/~')}"
    ms = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": "2021-08-06", "x-ms-blob-type": "BlockBlob"}
    ms.update({f"x-ms-meta-{m.split('=', 1)[0]}": m.split("=", 1)[1] for m in meta})
    standard = ["", "", "", "", "application/octet-stream", "", "", "", "", "", ""]
    text = "\n".join(["PUT"] + standard + [f"{k}:{v}" for k, v in sorted(ms.items())]
                     + [f"/{account}{urllib.parse.urlsplit(url).path}"])
    headers = dict(ms, **{"Content-Type": "application/octet-stream", "Authorization": f"SharedKey {account}:{sign(text)}"})
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="PUT", headers=headers)) as r:
            print(r.status)
    except urllib.error.HTTPError as e:
        print(e.code, e.read().decode(errors="replace"))
elif cmd == "sas":
    container, permissions, seconds = sys.argv[2], sys.argv[3], int(sys.argv[4])
    fmt = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    start, expiry = fmt(time.time() - 900), fmt(time.time() + seconds)
    # Service SAS, version 2020-12-06+: sp st se resource si sip spr sv sr snapshot ses rscc rscd rsce rscl rsct.
    text = "\n".join([permissions, start, expiry, f"/blob/{account}/{container}", "", "", "https,http",
                      "2021-08-06", "c", "", "", "", "", "", "", ""])
    print(urllib.parse.urlencode({"sv": "2021-08-06", "st": start, "se": expiry, "sr": "c", "sp": permissions,
                                  "spr": "https,http", "sig": sign(text)}))
"#;

fn azurite(args: &[&str]) -> String {
    let out = std::process::Command::new("python3").arg("-c").arg(AZURITE_TOOL).args(args).output().unwrap();
    assert!(out.status.success(), "azurite tool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A key as a URL path: every byte but `A-Za-z0-9-_.~/` percent-encoded (RFC 3986 unreserved).
fn encode_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The URL with the first character of its `sig=` value changed.
fn tampered(url: &str) -> String {
    let at = url.find("sig=").expect("a signed URL") + 4;
    let replacement = if url[at..].starts_with('A') { "B" } else { "A" };
    format!("{}{replacement}{}", &url[..at], &url[at + 1..])
}

#[tokio::test]
async fn imports_follow_label_studio_prefix_regex_and_recursion_rules() {
    let Some(az) = azure_env() else { return };
    object_store::imports_follow_prefix_regex_and_recursion_rules(&Service::start().await, &az).await;
}

/// Issue requirement: an Azure "folder" placeholder blob (hierarchical-namespace directories and
/// Storage Explorer folders: an empty blob named like the folder, metadata `hdi_isfolder=true`)
/// under a prefix without a trailing slash does not become a task.
#[tokio::test]
async fn folder_placeholder_blobs_never_become_tasks() {
    let Some(az) = azure_env() else { return };
    let svc = Service::start().await;
    let p = unique_prefix("folders");
    for folder in [format!("{p}/data"), format!("{p}/data/sub")] {
        assert_eq!(azurite(&["put", &az.container, &folder, "hdi_isfolder=true"]), "201");
    }
    let files = [format!("{p}/data/a.jpg"), format!("{p}/data/sub/b.jpg")];
    seed(&svc, &az, &files.iter().map(|k| (k.clone(), b"img".to_vec())).collect::<Vec<_>>()).await;

    for (prefix, recursive, want) in [
        (format!("{p}/data"), false, vec![files[0].clone()]),
        (format!("{p}/data"), true, files.to_vec()),
        (format!("{p}/data/"), false, vec![files[0].clone()]),
        (p.clone(), true, files.to_vec()),
    ] {
        let project = svc.project("<View></View>").await;
        let mut fields = az.blob_fields(&prefix);
        fields["recursive_scan"] = json!(recursive);
        let id = create(&svc, AzureEnv::TYPE, project, fields).await;
        assert_eq!(sync(&svc, AzureEnv::TYPE, id).await.1, want.len() as i64, "{prefix} recursive={recursive}");
        assert_eq!(raw_data(&svc, project).await, az.blob_tasks(&want), "{prefix} recursive={recursive}");
    }
}

/// 1200 blobs: one import (Azure pages hold up to 5000 blobs) and, through the adapter, paging
/// in pages of 500 with NextMarker cursors.
#[tokio::test]
async fn import_of_1200_blobs_and_paging() {
    let Some(az) = azure_env() else { return };
    object_store::import_spans_list_pages(&Service::start().await, &az, 1200, &[500, 500, 200]).await;
}

#[tokio::test]
async fn sas_and_proxied_uris_return_the_right_bytes_for_special_keys() {
    let Some(az) = azure_env() else { return };
    let svc = Service::start().await;
    let keys = object_store::special_keys(&svc, &az, json!({})).await;
    for (key, location) in keys.presigned(&svc).await {
        // A read-only blob service SAS.
        let blob_url = format!("{}/{}/{}", az.endpoint, az.container, encode_key(&key));
        assert!(location.starts_with(&format!("{blob_url}?sv=2021-08-06&st=")), "{location}");
        assert!(location.contains("&sr=b&sp=r&spr=https%2Chttp&sig="), "{location}");
        // A tampered signature is refused by the server, and so is a write with a read SAS.
        assert_eq!(reqwest::get(&tampered(&location)).await.unwrap().status(), 403, "{key}");
        let write = reqwest::Client::new().put(&location).header("x-ms-blob-type", "BlockBlob").body("x").send();
        assert_eq!(write.await.unwrap().status(), 403, "{key}");
    }
    // An expired URL is refused too.
    keys.expired_url_is_refused(&svc, &az, 403).await;
    keys.proxied(&svc).await;
    keys.uris_inside_text(&svc, &az).await;
    keys.unserved_and_raw_uris(&svc, &az, "another-container").await;
}

#[tokio::test]
async fn annotations_are_exported_under_the_prefix_and_deleted_when_allowed() {
    let Some(az) = azure_env() else { return };
    object_store::annotations_are_exported_under_the_prefix_and_deleted_when_allowed(&Service::start().await, &az)
        .await;
}

#[tokio::test]
async fn bad_connections_are_refused_with_label_studio_messages_and_no_secret() {
    let Some(az) = azure_env() else { return };
    let svc = Service::start().await;
    let mut seen = object_store::connection_checks(
        &svc,
        &az,
        "no-such-container",
        "Container not found: no-such-container",
        |container, prefix| format!("azure-blob://{container}/{prefix} not found."),
    )
    .await;

    // Azure's own: a wrong account key, and a container name Azure would refuse.
    let p = unique_prefix("bad");
    seed(&svc, &az, &[(format!("{p}/x.json"), b"{}".to_vec())]).await;
    let project = svc.project("<View></View>").await;
    let wrong_key = stowage_tests::TOKEN.repeat(2);
    let cases = [
        (
            json!({"account_key": wrong_key}),
            "Cannot connect to Azure container stowage-test with the specified credentials: This request is not \
             authorized to perform this operation (AuthorizationFailure, HTTP 403)",
        ),
        (
            json!({"container": "Bad_Name"}),
            "Invalid container name \"Bad_Name\": use 3 to 63 lowercase letters, digits and single hyphens, \
             starting and ending with a letter or digit",
        ),
    ];
    for (change, message) in cases {
        let mut fields = az.prefix_fields(&p);
        fields["project"] = json!(project);
        for (k, v) in change.as_object().unwrap() {
            fields[k] = v.clone();
        }
        seen.push_str(&refused(&svc, AzureEnv::TYPE, &fields, message).await);
    }
    for secret in [az.account_key.as_str(), wrong_key.as_str(), "SharedKey", "sig="] {
        assert!(!seen.contains(secret), "a response contains {secret:?}");
    }
}

#[tokio::test]
async fn sas_token_and_connection_string_storages_import() {
    let Some(az) = azure_env() else { return };
    let svc = Service::start().await;
    let p = unique_prefix("creds");
    let objects: Vec<(String, Vec<u8>)> =
        ["a.txt", "b c.txt"].iter().map(|n| (format!("{p}/{n}"), format!("body of {n}").into_bytes())).collect();
    seed(&svc, &az, &objects).await;
    let keys: Vec<String> = objects.iter().map(|(k, _)| k.clone()).collect();

    // Only a SAS token (read + list on the container), with its leading `?`.
    let token = azurite(&["sas", &az.container, "rl", "3600"]);
    let project = svc.project(r#"<View><Text name="t" value="$doc"/></View>"#).await;
    let fields = json!({"container": az.container, "prefix": p, "azure_endpoint": az.endpoint,
                        "sas_token": format!("?{token}"), "use_blob_urls": true});
    let id = create(&svc, AzureEnv::TYPE, project, fields).await;
    let r = svc.get(&format!("/api/storages/azure/{id}")).await;
    assert!(r.body.get("sas_token").is_none());
    assert_eq!(sync(&svc, AzureEnv::TYPE, id).await.1, 2);
    assert_eq!(
        raw_data(&svc, project).await.iter().map(|d| d["doc"].clone()).collect::<Vec<_>>(),
        keys.iter().map(|k| json!(az.uri(k))).collect::<Vec<_>>()
    );
    // It cannot presign without handing the user's token to browsers (presign is on by
    // default): stowage serves the bytes itself, and the token never leaves the server.
    let r = svc.get(&format!("/api/tasks/?project={project}")).await;
    for t in r.body["tasks"].as_array().unwrap() {
        let key = t["storage_filename"].as_str().unwrap();
        let resp = object_store::fetch(&svc, t["data"]["doc"].as_str().unwrap(), &[]).await;
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().get("location").is_none());
        let body = &objects.iter().find(|(k, _)| k == key).unwrap().1;
        assert_eq!(resp.bytes().await.unwrap().as_ref(), body.as_slice());
    }
    assert!(!serde_json::to_string(&r.body).unwrap().contains(&token));
    // A token without the list permission cannot import.
    let mut fields = json!({"container": az.container, "prefix": p, "azure_endpoint": az.endpoint, "project": project});
    fields["sas_token"] = json!(azurite(&["sas", &az.container, "r", "3600"]));
    let r = svc.post("/api/storages/azure", fields).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let message = object_store::refusal(&r);
    assert!(
        message.starts_with("Cannot connect to Azure container stowage-test with the specified credentials: "),
        "{message}"
    );

    // A connection string (as the Azure portal and Azurite's docs give them), JSON mode.
    let json_key = format!("{p}/tasks/t.json");
    seed(&svc, &az, &[(json_key, br#"[{"text": "first"}, {"text": "second"}]"#.to_vec())]).await;
    let connection = format!(
        "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint={};",
        az.account_name, az.account_key, az.endpoint
    );
    let project = svc.project("<View></View>").await;
    let fields = json!({"container": az.container, "prefix": format!("{p}/tasks"), "azure_endpoint": az.endpoint,
                        "connection_string": connection});
    let id = create(&svc, AzureEnv::TYPE, project, fields).await;
    assert_eq!(sync(&svc, AzureEnv::TYPE, id).await.1, 2);
    assert_eq!(texts(&svc, project).await, ["first", "second"]);
    // Its BlobEndpoint alone is not reachable: only azure_endpoint (or *.blob.core.windows.net) is.
    let fields = json!({"project": project, "container": az.container, "connection_string": connection});
    let r = svc.post("/api/storages/azure", fields).await;
    let port = az.endpoint.trim_start_matches("http://").split('/').next().unwrap().to_string();
    assert_eq!(
        (r.status, object_store::refusal(&r)),
        (
            400,
            format!(
                "the stowage host refused the connection to {port} (address policy): without azure_endpoint only \
                 *.blob.core.windows.net may be reached; set azure_endpoint to the connection string's BlobEndpoint"
            )
            .as_str()
        )
    );
    assert!(!r.body.to_string().contains(&az.account_key));
}

#[tokio::test]
async fn secrets_stay_behind_when_the_container_endpoint_or_project_changes() {
    let Some(azure) = azure_env() else { return };
    let moves = [("container", json!("another-container")), ("azure_endpoint", json!("http://127.0.0.2:10000/acct"))];
    let secrets = ["account_key", "account_name"];
    object_store::secrets_stay_behind_a_moved_storage(&Service::start().await, &azure, json!({}), &moves, &secrets)
        .await;
}
