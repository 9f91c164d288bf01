//! Azure Blob storages against Azurite (started by tests/emulators/azure.sh): imports with Label
//! Studio's prefix, regex and recursion rules across list pages, folder placeholders, SAS and
//! proxied URIs (Azurite verifies every signature), export, SAS-token and connection-string
//! storages, and credential errors without leaks.

use std::time::Duration;

use serde_json::{Value, json};
use stowage::domain::Direction;
use stowage::plugin::Session;
use stowage::tasks::uri::resolver_url;
use stowage_tests::{AzureEnv, Service, azure_env, unique_prefix};

/// Sessions uploading at once: Azurite takes ~144 uploads/s one at a time.
const UPLOADERS: usize = 16;

/// Uploads blobs through the Azure adapter itself, `UPLOADERS` sessions at a time.
async fn upload(svc: &Service, az: &AzureEnv, objects: &[(String, Vec<u8>)]) {
    let per = objects.len().div_ceil(UPLOADERS).max(1);
    let mut tasks = Vec::new();
    for chunk in objects.chunks(per) {
        let mut session: Session =
            stowage::sync::connect(&svc.app, &az.storage(Direction::Export, &az.container)).unwrap();
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            for (key, body) in chunk {
                session.put(&key, &body, None).await.unwrap_or_else(|e| panic!("put {key}: {e}"));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

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

async fn create(svc: &Service, project: i64, fields: Value) -> i64 {
    let mut body = fields;
    body["project"] = json!(project);
    let r = svc.post("/api/storages/azure", body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

async fn sync(svc: &Service, id: i64) -> (String, i64, Value) {
    let r = svc.post(&format!("/api/storages/azure/{id}/sync"), Value::Null).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    (r.body["status"].as_str().unwrap().into(), r.body["last_sync_count"].as_i64().unwrap(), r.body)
}

/// Raw task data (`resolve_uri=false`) of a project.
async fn raw_data(svc: &Service, project: i64) -> Vec<Value> {
    let r = svc.get(&format!("/api/tasks/?project={project}&page_size=10000&resolve_uri=false")).await;
    r.body["tasks"].as_array().unwrap().iter().map(|t| t["data"].clone()).collect()
}

fn azure_uris(az: &AzureEnv, keys: &[String]) -> Vec<Value> {
    keys.iter().map(|k| json!({"$undefined$": format!("azure-blob://{}/{k}", az.container)})).collect()
}

fn blob_fields(az: &AzureEnv, prefix: &str) -> Value {
    let mut fields = az.fields(&az.container, prefix);
    fields["use_blob_urls"] = json!(true);
    fields
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
    let svc = Service::start().await;
    let p = unique_prefix("rules");
    let k = |rest: &str| format!("{p}/{rest}");
    let objects: Vec<(String, Vec<u8>)> = [
        ("img/a.jpg", &b"A"[..]),
        ("img/b.png", b"B"),
        ("img/sub/c.jpg", b"C"),
        ("img/dir/", b""),
        ("imgx/d.jpg", b"D"),
        ("json/1.json", br#"{"text": "one"}"#),
        ("json/2.jsonl", b"{\"text\": \"two\"}\n{\"text\": \"three\"}\n"),
        ("json/3.json", b"{oops"),
    ]
    .iter()
    .map(|(key, body)| (k(key), body.to_vec()))
    .collect();
    upload(&svc, &az, &objects).await;

    // A prefix is a folder: `img` lists img/ only, never `imgx/`; folder markers are skipped.
    let project = svc.project("<View></View>").await;
    let flat = create(&svc, project, blob_fields(&az, &k("img"))).await;
    assert_eq!(sync(&svc, flat).await.0, "completed");
    assert_eq!(raw_data(&svc, project).await, azure_uris(&az, &[k("img/a.jpg"), k("img/b.png")]));
    let (status, count, body) = sync(&svc, flat).await;
    assert_eq!((status.as_str(), count, body["meta"]["tasks_existed"].as_i64()), ("completed", 0, Some(2)));

    // A trailing slash is the same prefix; recursion descends; the regex is matched against the
    // full key from its start (Python `re.match`).
    let project = svc.project("<View></View>").await;
    let mut fields = blob_fields(&az, &format!("{}/", k("img")));
    fields["recursive_scan"] = json!(true);
    fields["regex_filter"] = json!(format!("{p}/img/(sub/)?[ac]"));
    let deep = create(&svc, project, fields.clone()).await;
    assert_eq!(sync(&svc, deep).await.1, 2);
    assert_eq!(raw_data(&svc, project).await, azure_uris(&az, &[k("img/a.jpg"), k("img/sub/c.jpg")]));
    fields["regex_filter"] = json!("img/a");
    let anchored = create(&svc, project, fields).await;
    assert_eq!(sync(&svc, anchored).await.1, 0, "a regex matching mid-key only imports nothing");
    // Recursive without a regex: everything under img/ but the folder marker.
    let project = svc.project("<View></View>").await;
    let mut fields = blob_fields(&az, &k("img"));
    fields["recursive_scan"] = json!(true);
    let all = create(&svc, project, fields).await;
    assert_eq!(sync(&svc, all).await.1, 3);
    assert_eq!(raw_data(&svc, project).await, azure_uris(&az, &[k("img/a.jpg"), k("img/b.png"), k("img/sub/c.jpg")]));

    // JSON mode: tasks from .json and .jsonl; a broken file is reported, the rest imports.
    let project = svc.project("<View></View>").await;
    let json_storage = create(&svc, project, az.fields(&az.container, &k("json"))).await;
    let (status, count, body) = sync(&svc, json_storage).await;
    assert_eq!((status.as_str(), count), ("completed_with_errors", 3));
    assert_eq!(
        body["traceback"],
        format!("{}: invalid JSON: key must be a string at line 1 column 2", k("json/3.json"))
    );
    let texts: Vec<Value> = raw_data(&svc, project).await.iter().map(|d| d["text"].clone()).collect();
    assert_eq!(texts, ["one", "two", "three"]);
    assert_eq!(sync(&svc, json_storage).await.1, 0, "a re-sync creates nothing");
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
    upload(&svc, &az, &files.iter().map(|k| (k.clone(), b"img".to_vec())).collect::<Vec<_>>()).await;

    for (prefix, recursive, want) in [
        (format!("{p}/data"), false, vec![files[0].clone()]),
        (format!("{p}/data"), true, files.to_vec()),
        (format!("{p}/data/"), false, vec![files[0].clone()]),
        (p.clone(), true, files.to_vec()),
    ] {
        let project = svc.project("<View></View>").await;
        let mut fields = blob_fields(&az, &prefix);
        fields["recursive_scan"] = json!(recursive);
        let id = create(&svc, project, fields).await;
        assert_eq!(sync(&svc, id).await.1, want.len() as i64, "{prefix} recursive={recursive}");
        assert_eq!(raw_data(&svc, project).await, azure_uris(&az, &want), "{prefix} recursive={recursive}");
    }
}

/// 1200 blobs: one import (Azure pages hold up to 5000 blobs) and, through the adapter, paging
/// in pages of 500 with NextMarker cursors.
#[tokio::test]
async fn import_of_1200_blobs_and_paging() {
    let Some(az) = azure_env() else { return };
    let svc = Service::start().await;
    let p = unique_prefix("many");
    let keys: Vec<String> = (0..1200).map(|i| format!("{p}/{i:04}.txt")).collect();
    upload(&svc, &az, &keys.iter().map(|k| (k.clone(), b"x".to_vec())).collect::<Vec<_>>()).await;

    let mut session = stowage::sync::connect(&svc.app, &az.storage(Direction::Import, &az.container)).unwrap();
    let (mut listed, mut pages, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let page = session.list(&p, cursor.as_deref(), 500, false).await.unwrap();
        pages.push(page.entries.len());
        listed.extend(page.entries.into_iter().map(|e| (e.key, e.size)));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, [500, 500, 200]);
    assert_eq!(listed, keys.iter().map(|k| (k.clone(), 1)).collect::<Vec<_>>());

    let project = svc.project("<View></View>").await;
    let id = create(&svc, project, blob_fields(&az, &p)).await;
    assert_eq!(sync(&svc, id).await.1, 1200);
    assert_eq!(raw_data(&svc, project).await, azure_uris(&az, &keys));
    assert_eq!(sync(&svc, id).await.1, 0);
}

#[tokio::test]
async fn sas_and_proxied_uris_return_the_right_bytes_for_special_keys() {
    let Some(az) = azure_env() else { return };
    let svc = Service::start().await;
    let p = unique_prefix("special");
    let names =
        ["sp ace.txt", "plus+sign.txt", "per%25cent%.txt", "ünïcödé 日本.txt", "hash#tag.txt", "q?mark&x=1.txt"];
    let objects: Vec<(String, Vec<u8>)> =
        names.iter().map(|n| (format!("{p}/{n}"), format!("bytes of {n}").into_bytes())).collect();
    upload(&svc, &az, &objects).await;
    let project = svc.project(r#"<View><Text name="t" value="$doc"/></View>"#).await;
    let mut fields = blob_fields(&az, &p);
    fields["presign_ttl"] = json!(2);
    let id = create(&svc, project, fields).await;
    assert_eq!(sync(&svc, id).await.1, names.len() as i64);

    let r = svc.get(&format!("/api/tasks/?project={project}")).await;
    let tasks = r.body["tasks"].as_array().unwrap().clone();
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let auth = format!("Token {}", stowage_tests::TOKEN);
    let mut by_key = std::collections::HashMap::new();
    for t in &tasks {
        let id = t["id"].as_i64().unwrap();
        let key = t["storage_filename"].as_str().unwrap().to_string();
        let uri = format!("azure-blob://{}/{key}", az.container);
        // The stored URI is shown as the resolver link, under the label config's field.
        assert_eq!(t["data"], json!({"doc": resolver_url(id, &uri)}));
        by_key.insert(key, resolver_url(id, &uri));
    }
    for (key, body) in &objects {
        let link = format!("{}{}", svc.url, by_key[key]);
        let resp = no_redirect.get(&link).header("Authorization", &auth).send().await.unwrap();
        assert_eq!(resp.status(), 303, "{key}");
        assert_eq!(resp.headers()["cache-control"], "no-store, max-age=120");
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        let blob_url = format!("{}/{}/{}", az.endpoint, az.container, encode_key(key));
        assert!(location.starts_with(&format!("{blob_url}?sv=2021-08-06&st=")), "{location}");
        assert!(location.contains("&sr=b&sp=r&spr=https%2Chttp&sig="), "{location}");
        let fetched = reqwest::get(&location).await.unwrap();
        assert_eq!(fetched.status(), 200, "{key}: {location}");
        assert_eq!(fetched.bytes().await.unwrap().as_ref(), body.as_slice(), "{key}");
        // A tampered signature is refused by the server, and so is a write with a read SAS.
        assert_eq!(reqwest::get(&tampered(&location)).await.unwrap().status(), 403, "{key}");
        let write = reqwest::Client::new().put(&location).header("x-ms-blob-type", "BlockBlob").body("x").send();
        assert_eq!(write.await.unwrap().status(), 403, "{key}");
    }

    // An expired URL is refused too.
    let mut session = stowage::sync::connect(&svc.app, &az.storage(Direction::Import, &az.container)).unwrap();
    let short = session.presign_get(&objects[0].0, 1).await.unwrap();
    assert_eq!(reqwest::get(&short).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(reqwest::get(&short).await.unwrap().status(), 403);

    // presign=false: the service streams the bytes itself, with Range, ETag and 304.
    let r = svc.patch(&format!("/api/storages/azure/{id}"), json!({"presign": false})).await;
    assert_eq!((r.status, r.body["presign"].as_bool()), (200, Some(false)));
    for (key, body) in &objects {
        let link = format!("{}{}", svc.url, by_key[key]);
        let resp = no_redirect.get(&link).header("Authorization", &auth).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{key}");
        let etag = resp.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(resp.bytes().await.unwrap().as_ref(), body.as_slice(), "{key}");
        let resp =
            no_redirect.get(&link).header("Authorization", &auth).header("Range", "bytes=2-5").send().await.unwrap();
        assert_eq!(resp.status(), 206);
        assert_eq!(resp.headers()["content-range"], format!("bytes 2-5/{}", body.len()).as_str());
        assert_eq!(resp.bytes().await.unwrap().as_ref(), &body[2..=5]);
        let resp =
            no_redirect.get(&link).header("Authorization", &auth).header("If-None-Match", &etag).send().await.unwrap();
        assert_eq!(resp.status(), 304);
    }
    // A URI no storage of the project serves is 404.
    let foreign = resolver_url(tasks[0]["id"].as_i64().unwrap(), "azure-blob://another-container/x.txt");
    assert_eq!(svc.get(&foreign).await.status, 404);
    // Without resolving, the raw URI is returned.
    let r = svc.get(&format!("/api/tasks/{}?resolve_uri=false", tasks[0]["id"])).await;
    assert!(r.body["data"]["doc"].as_str().unwrap().starts_with(&format!("azure-blob://{}/{p}/", az.container)));
}

#[tokio::test]
async fn annotations_are_exported_under_the_prefix_and_deleted_when_allowed() {
    let Some(az) = azure_env() else { return };
    let svc = Service::start().await;
    let p = unique_prefix("export");
    let project = svc.project("<View></View>").await;
    let r = svc.post(&format!("/api/projects/{project}/import"), json!([{"text": "t"}])).await;
    let task = r.body["task_ids"][0].as_i64().unwrap();
    let mut fields = az.fields(&az.container, &format!("{p}/ann/"));
    fields["project"] = json!(project);
    fields["can_delete_objects"] = json!(true);
    let r = svc.post("/api/storages/export/azure", fields).await;
    assert_eq!((r.status, r.body["status"].as_str()), (201, Some("completed")), "{:?}", r.body);
    assert_eq!(r.body["prefix"], format!("{p}/ann/"));
    let export_id = r.body["id"].as_i64().unwrap();
    // A local-files target of the same project receives the same documents: the reference bytes.
    let local = svc.dir("reference", &[]);
    let r = svc.post("/api/storages/export/localfiles", json!({"project": project, "path": local})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    let result = json!([{"from_name": "c", "to_name": "t", "type": "choices", "value": {"choices": ["x"]}}]);
    let ann = svc.post(&format!("/api/tasks/{task}/annotations"), json!({"result": result})).await.body["id"]
        .as_i64()
        .unwrap();

    let mut session = stowage::sync::connect(&svc.app, &az.storage(Direction::Import, &az.container)).unwrap();
    let key = format!("{p}/ann/{ann}");
    let listed = session.list(&format!("{p}/ann"), None, 100, true).await.unwrap();
    assert_eq!(listed.entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), [key.as_str()]);
    let object = session.get(&key, None).await.unwrap();
    assert_eq!(object.content_type.as_deref(), Some("application/json"));
    assert_eq!(object.body, std::fs::read(local.join(ann.to_string())).unwrap());
    let doc: Value = serde_json::from_slice(&object.body).unwrap();
    assert_eq!((doc["id"].as_i64(), &doc["result"], doc["task"]["id"].as_i64()), (Some(ann), &result, Some(task)));
    assert_eq!((doc["project"].as_i64(), &doc["task"]["data"]), (Some(project), &json!({"text": "t"})));

    let r = svc.post(&format!("/api/storages/export/azure/{export_id}/sync"), Value::Null).await;
    assert_eq!((r.body["status"].as_str(), r.body["last_sync_count"].as_i64()), (Some("completed"), Some(1)));
    assert_eq!(session.get(&key, None).await.unwrap().body, object.body);
    assert_eq!(svc.delete(&format!("/api/annotations/{ann}")).await.status, 204);
    let gone = session.get(&key, None).await.unwrap_err();
    assert_eq!(gone.kind, stowage::error::ErrorKind::NotFound);
    // Deleting a missing blob is fine.
    session.delete(&[key]).await.unwrap();
}

#[tokio::test]
async fn bad_connections_are_refused_with_label_studio_messages_and_no_secret() {
    let Some(az) = azure_env() else { return };
    let svc = Service::start().await;
    let p = unique_prefix("bad");
    upload(&svc, &az, &[(format!("{p}/x.json"), b"{}".to_vec())]).await;
    let project = svc.project("<View></View>").await;
    let wrong_key = stowage_tests::TOKEN.repeat(2);
    let mut seen = String::new();
    let cases = [
        (
            json!({"account_key": wrong_key}),
            "Cannot connect to Azure container stowage-test with the specified credentials: This request is not \
             authorized to perform this operation (AuthorizationFailure, HTTP 403)"
                .to_string(),
        ),
        (json!({"container": "no-such-container"}), "Container not found: no-such-container".to_string()),
        (json!({"prefix": format!("{p}-nothing")}), format!("azure-blob://stowage-test/{p}-nothing not found.")),
        (
            json!({"container": "Bad_Name"}),
            "Invalid container name \"Bad_Name\": use 3 to 63 lowercase letters, digits and single hyphens, \
             starting and ending with a letter or digit"
                .to_string(),
        ),
    ];
    for (change, message) in cases {
        let mut fields = az.fields(&az.container, &p);
        fields["project"] = json!(project);
        for (k, v) in change.as_object().unwrap() {
            fields[k] = v.clone();
        }
        for path in ["/api/storages/azure", "/api/storages/azure/validate"] {
            let r = svc.post(path, fields.clone()).await;
            assert_eq!(
                (r.status, &r.body["validation_errors"]["non_field_errors"][0]),
                (400, &json!(message)),
                "{path}"
            );
            seen.push_str(&r.body.to_string());
        }
    }
    // An export target may be empty.
    let mut fields = az.fields(&az.container, &format!("{p}-nothing"));
    fields["project"] = json!(project);
    assert_eq!(svc.post("/api/storages/export/azure/validate", fields).await.status, 200);

    // A good storage never returns its account name or key (write-only, as in Label Studio).
    let id = create(&svc, project, blob_fields(&az, &p)).await;
    let r = svc.get(&format!("/api/storages/azure/{id}")).await;
    for secret in ["account_name", "account_key", "sas_token", "connection_string"] {
        assert!(r.body.get(secret).is_none(), "{secret} returned");
    }
    assert_eq!(r.body["azure_endpoint"], az.endpoint);
    seen.push_str(&r.body.to_string());
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
    upload(&svc, &az, &objects).await;
    let keys: Vec<String> = objects.iter().map(|(k, _)| k.clone()).collect();
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let auth = format!("Token {}", stowage_tests::TOKEN);

    // Only a SAS token (read + list on the container), with its leading `?`.
    let token = azurite(&["sas", &az.container, "rl", "3600"]);
    let project = svc.project(r#"<View><Text name="t" value="$doc"/></View>"#).await;
    let fields = json!({"container": az.container, "prefix": p, "azure_endpoint": az.endpoint,
                        "sas_token": format!("?{token}"), "use_blob_urls": true});
    let id = create(&svc, project, fields).await;
    let r = svc.get(&format!("/api/storages/azure/{id}")).await;
    assert!(r.body.get("sas_token").is_none());
    assert_eq!(sync(&svc, id).await.1, 2);
    assert_eq!(
        raw_data(&svc, project).await.iter().map(|d| d["doc"].clone()).collect::<Vec<_>>(),
        azure_uris(&az, &keys).iter().map(|d| d["$undefined$"].clone()).collect::<Vec<_>>()
    );
    // Its "presigned" URLs carry the user's token (its own expiry applies).
    let r = svc.get(&format!("/api/tasks/?project={project}")).await;
    for t in r.body["tasks"].as_array().unwrap() {
        let key = t["storage_filename"].as_str().unwrap();
        let link = format!("{}{}", svc.url, t["data"]["doc"].as_str().unwrap());
        let resp = no_redirect.get(&link).header("Authorization", &auth).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        assert!(location.ends_with(&format!("?{token}")), "{location}");
        let body = &objects.iter().find(|(k, _)| k == key).unwrap().1;
        assert_eq!(reqwest::get(&location).await.unwrap().bytes().await.unwrap().as_ref(), body.as_slice());
    }
    // A token without the list permission cannot import.
    let mut fields = json!({"container": az.container, "prefix": p, "azure_endpoint": az.endpoint, "project": project});
    fields["sas_token"] = json!(azurite(&["sas", &az.container, "r", "3600"]));
    let r = svc.post("/api/storages/azure", fields).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    let message = r.body["validation_errors"]["non_field_errors"][0].as_str().unwrap();
    assert!(
        message.starts_with("Cannot connect to Azure container stowage-test with the specified credentials: "),
        "{message}"
    );

    // A connection string (as the Azure portal and Azurite's docs give them), JSON mode.
    let json_key = format!("{p}/tasks/t.json");
    upload(&svc, &az, &[(json_key, br#"[{"text": "first"}, {"text": "second"}]"#.to_vec())]).await;
    let connection = format!(
        "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint={};",
        az.account_name, az.account_key, az.endpoint
    );
    let project = svc.project("<View></View>").await;
    let fields = json!({"container": az.container, "prefix": format!("{p}/tasks"), "azure_endpoint": az.endpoint,
                        "connection_string": connection});
    let id = create(&svc, project, fields).await;
    assert_eq!(sync(&svc, id).await.1, 2);
    let texts: Vec<Value> = raw_data(&svc, project).await.iter().map(|d| d["text"].clone()).collect();
    assert_eq!(texts, ["first", "second"]);
    // Its BlobEndpoint alone is not reachable: only azure_endpoint (or *.blob.core.windows.net) is.
    let fields = json!({"project": project, "container": az.container, "connection_string": connection});
    let r = svc.post("/api/storages/azure", fields).await;
    let port = az.endpoint.trim_start_matches("http://").split('/').next().unwrap().to_string();
    assert_eq!(
        (r.status, r.body["validation_errors"]["non_field_errors"][0].as_str().unwrap()),
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
