//! Label Studio's answers in the corners scripts hit, family by family, one table per family:
//! the `Authorization` keyword, query-parameter and field error shapes, `POST /api/tasks`, the
//! labeling config read as XML, and symlinked folders in local storages. Where Label Studio is
//! wrong, the test pins what stowage does instead and says why.

use serde_json::{Value, json};
use stowage_tests::{Service, TOKEN};

async fn get_with(svc: &Service, path: &str, authorization: Option<&str>) -> (u16, Value) {
    let mut req = svc.http.get(format!("{}{path}", svc.url));
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

/// Django REST framework's `TokenAuthentication`: the keyword in any case, one credential, and
/// its wording for each malformed header.
#[tokio::test]
async fn the_token_keyword_is_case_insensitive_and_bad_headers_get_drfs_reasons() {
    let svc = Service::start().await;
    for keyword in ["Token", "token", "TOKEN", "ToKeN"] {
        let (status, body) = get_with(&svc, "/api/projects", Some(&format!("{keyword} {TOKEN}"))).await;
        assert_eq!((status, body["count"].as_i64()), (200, Some(0)), "{keyword}");
    }
    let rows: [(Option<&str>, &str); 6] = [
        (None, "Authentication credentials were not provided."),
        (Some("Bearer abc"), "Authentication credentials were not provided."),
        (Some("Token"), "Invalid token header. No credentials provided."),
        (Some("Token a b"), "Invalid token header. Token string should not contain spaces."),
        (Some("Token wrong"), "Invalid token."),
        (Some("token wrong"), "Invalid token."),
    ];
    for (header, detail) in rows {
        let (status, body) = get_with(&svc, "/api/projects", header).await;
        assert_eq!((status, body["status_code"].as_i64(), body["detail"].as_str()), (401, Some(401), Some(detail)));
    }
}

/// A missing or malformed query parameter is a validation error of the request as a whole
/// (`non_field_errors`); a bad field is reported under its own name.
#[tokio::test]
async fn query_and_field_errors_have_label_studios_shape() {
    let svc = Service::start().await;
    let rows: [(&str, &str); 4] = [
        ("/api/storages/localfiles", r#"query parameter "project" is required"#),
        ("/api/storages/export/localfiles", r#"query parameter "project" is required"#),
        ("/api/tasks", r#"query parameter "project" is required"#),
        ("/api/storages/localfiles?project=abc", r#"query parameter "project": invalid digit found in string"#),
    ];
    for (path, message) in rows {
        let r = svc.get(path).await;
        assert_eq!(
            (r.status, &r.body["status_code"], &r.body["detail"], &r.body["validation_errors"]),
            (400, &json!(400), &json!("Validation error"), &json!({"non_field_errors": [message]})),
            "{path}"
        );
        assert!(r.body["id"].is_string(), "{path}");
    }
    // A page that is not a number is past the end, as Label Studio's paginator says.
    let project = svc.project("<View></View>").await;
    let r = svc.get(&format!("/api/tasks?project={project}&page=x")).await;
    assert_eq!((r.status, &r.body["detail"]), (404, &json!("Invalid page.")));

    // presign_ttl is minutes, 1 to 7 days (a SigV4 URL lives at most 604,800 s). The checks of
    // fields run before any connection is tried, so the endpoint need not answer.
    let s3 = |ttl: Value| {
        json!({"project": project, "bucket": "b", "s3_endpoint": "http://127.0.0.1:9", "presign_ttl": ttl,
               "aws_access_key_id": "k", "aws_secret_access_key": "s"})
    };
    let range = |got: i64| {
        format!(
            "Ensure this value is between 1 and 10080 minutes (7 days, the longest a presigned URL may live; got {got})."
        )
    };
    for (ttl, message) in [
        (json!(0), range(0)),
        (json!(10081), range(10081)),
        (json!(-5), range(-5)),
        (json!("ten"), "A valid integer is required.".into()),
    ] {
        for path in ["/api/storages/s3", "/api/storages/s3/validate"] {
            let r = svc.post(path, s3(ttl.clone())).await;
            assert_eq!((r.status, &r.body["validation_errors"]), (400, &json!({"presign_ttl": [message]})), "{ttl}");
        }
    }
    let r = svc
        .post("/api/storages/localfiles", json!({"project": project, "path": "/nowhere", "regex_filter": "("}))
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["validation_errors"]["regex_filter"][0].is_string(), "{:?}", r.body);
    assert!(r.body["validation_errors"].get("non_field_errors").is_none(), "{:?}", r.body);
}

/// `POST /api/tasks` (the SDK's `tasks.create`) creates one task with its annotations and
/// predictions, answering as Label Studio does, bad requests included.
#[tokio::test]
async fn post_tasks_creates_a_task_as_label_studio_does() {
    let svc = Service::start().await;
    let project = svc.project(r#"<View><Text name="t" value="$text"/></View>"#).await;
    let r = svc
        .post(
            "/api/tasks",
            json!({"project": project, "data": {"text": "hello"}, "meta": {"source": "script"},
                   "predictions": [{"result": [], "score": 0.5, "model_version": "m1"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(
        (&r.body["data"], &r.body["meta"], &r.body["project"], &r.body["total_predictions"], &r.body["inner_id"]),
        (&json!({"text": "hello"}), &json!({"source": "script"}), &json!(project), &json!(1), &json!(1))
    );
    let mut keys: Vec<&str> = r.body.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "cancelled_annotations",
            "comment_authors",
            "comment_count",
            "created_at",
            "data",
            "file_upload",
            "id",
            "inner_id",
            "is_labeled",
            "last_comment_updated_at",
            "meta",
            "overlap",
            "project",
            "total_annotations",
            "total_predictions",
            "unresolved_comment_count",
            "updated_at",
            "updated_by"
        ]
    );
    let read = svc.get(&format!("/api/tasks/{id}")).await.body;
    assert_eq!((&read["data"], &read["predictions"][0]["model_version"]), (&json!({"text": "hello"}), &json!("m1")));
    // List data is kept as Label Studio keeps it.
    let r = svc.post("/api/tasks", json!({"project": project, "data": [1, "two"]})).await;
    assert_eq!((r.status, &r.body["data"]), (201, &json!([1, "two"])));

    let errors = |e: Value| json!({"detail": "Validation error", "validation_errors": e});
    let rows: [(Value, u16, Value); 6] = [
        (json!({"data": {"text": "x"}}), 400, errors(json!({"project": ["This field is required."]}))),
        (json!({"project": project}), 400, errors(json!({"data": ["This field is required."]}))),
        (json!({"project": 999_999, "data": {}}), 404, json!({"detail": "No Project matches the given query."})),
        (json!({"project": "one", "data": {}}), 404, json!({"detail": "Not found."})),
        (
            json!({"project": project, "data": "text"}),
            400,
            errors(json!({"non_field_errors": ["Task[data] must be dict or list"]})),
        ),
        (
            json!({"project": project, "data": {}, "annotations": {}}),
            400,
            errors(json!({"non_field_errors": ["\"annotations\" must be a list"]})),
        ),
    ];
    for (body, status, want) in rows {
        let r = svc.post("/api/tasks", body.clone()).await;
        let got: serde_json::Map<String, Value> =
            want.as_object().unwrap().keys().map(|k| (k.clone(), r.body[k].clone())).collect();
        assert_eq!((r.status, Value::Object(got)), (status, want), "{body}");
    }
    assert_eq!(svc.task_data(project).await.len(), 2, "refused tasks change nothing");
}

/// The labeling config is XML: it must be well-formed, and blob-mode tasks show their URI
/// under the first object tag's `$variable` however the config is written.
#[tokio::test]
async fn the_labeling_config_is_read_as_xml() {
    let svc = Service::start().await;
    for (config, message) in [
        ("<View><Image name=\"i\" value=\"$image\"></View>", "expected 'Image' tag, not 'View' at 1:38"),
        ("<View>", "the root node was opened but never closed"),
    ] {
        let r = svc.post("/api/projects", json!({"title": "bad config", "label_config": config})).await;
        let want = json!({"label_config": [format!("The labeling config is not valid XML: {message}")]});
        assert_eq!((r.status, &r.body["validation_errors"]), (400, &want), "{config}");
    }
    let dir = svc.dir("xml-config", &[("a.jpg", b"A")]);
    let rows: [(&str, &str); 4] = [
        (r#"<View><Image name='i' value='$photo'/></View>"#, "photo"),
        (r#"<View><!-- <Image name="x" value="$commented"/> --><Image name="i" value="$img"/></View>"#, "img"),
        (r#"<View><Header value="Look"/><Image name="i" value = "$spaced" /></View>"#, "spaced"),
        (r#"<View><![CDATA[ value="$cdata" ]]><Audio name="a" value="$audio"/></View>"#, "audio"),
    ];
    for (config, key) in rows {
        let project = svc.project(config).await;
        let r =
            svc.post("/api/storages/localfiles", json!({"project": project, "path": dir, "use_blob_urls": true})).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let s = svc.sync(&format!("/api/storages/localfiles/{}", r.body["id"])).await;
        assert_eq!(s.body["last_sync_count"], 1);
        assert_eq!(svc.task_data(project).await, [json!({key: "/data/local-files/?d=xml-config/a.jpg"})], "{config}");
        // A PATCH with a broken config is refused and leaves the project as it was.
        let r = svc.patch(&format!("/api/projects/{project}"), json!({"label_config": "<View"})).await;
        assert_eq!(r.status, 400);
        assert_eq!(svc.get(&format!("/api/projects/{project}")).await.body["label_config"], config);
    }
}

/// A project of images and a blob-mode local storage scanning `dir` recursively: the project id
/// and the storage's API path.
async fn images_scanned(svc: &Service, dir: &std::path::Path) -> (i64, String) {
    let project = svc.project(r#"<View><Image name="i" value="$image"/></View>"#).await;
    let body = json!({"project": project, "path": dir, "use_blob_urls": true, "recursive_scan": true});
    let r = svc.post("/api/storages/localfiles", body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    (project, format!("/api/storages/localfiles/{}", r.body["id"]))
}

/// A recursive scan walks each real folder once: link loops end, a link to a folder inside the
/// storage lists its files once (under the first key reaching it), links out are not followed,
/// and every sync of such a folder completes quickly (a loop once timed each listing out until
/// the localfs adapter was quarantined for every storage).
#[cfg(unix)]
#[tokio::test]
async fn symlinked_folders_are_imported_once_per_real_folder() {
    use std::os::unix::fs::symlink;
    let svc = Service::start().await;
    let files: [(&str, &[u8]); 4] = [("a.jpg", b"A"), ("sub/b.jpg", b"B"), ("sub/deep/c.jpg", b"C"), ("z/d.jpg", b"D")];
    let dir = svc.dir("links", &files);
    let outside = svc.dir("elsewhere", &[("secret.jpg", b"S")]);
    symlink(".", dir.join("loop")).unwrap();
    symlink(".", dir.join("loop2")).unwrap();
    symlink("..", dir.join("sub/up")).unwrap();
    symlink("../z", dir.join("sub/toz")).unwrap();
    symlink(&outside, dir.join("out")).unwrap();
    let (project, storage) = images_scanned(&svc, &dir).await;
    for (run, created) in [(1, 4), (2, 0), (3, 0)] {
        let s = svc.sync(&storage).await.body;
        assert_eq!((s["status"].as_str(), s["last_sync_count"].as_i64()), (Some("completed"), Some(created)), "{run}");
        // The link out is counted, never read.
        assert_eq!(s["meta"]["objects_left_out"], json!(1), "{run}");
    }
    let images: Vec<Value> = svc.task_data(project).await.into_iter().map(|d| d["image"].clone()).collect();
    assert_eq!(
        images,
        ["a.jpg", "sub/b.jpg", "sub/deep/c.jpg", "sub/toz/d.jpg"]
            .map(|k| json!(format!("/data/local-files/?d=links/{k}")))
    );
    let adapters = svc.get("/api/adapters").await.body;
    let localfs = adapters.as_array().unwrap().iter().find(|a| a["type"] == "localfiles").unwrap();
    assert_eq!((&localfs["status"], &localfs["failures_total"]), (&json!("active"), &json!(0)));
}

/// Names that are not UTF-8 cannot be keys (nor URIs, nor JSON): the sandbox does not even show
/// them, only that an entry could not be read. Each folder holding such names is reported with
/// the count (the run ends `completed_with_errors`, the folder in `traceback`); everything else
/// imports. Label Studio imports them with names its own URLs cannot serve.
#[cfg(unix)]
#[tokio::test]
async fn names_that_are_not_utf8_are_reported_by_folder_and_the_rest_imports() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let svc = Service::start().await;
    let files: [(&str, &[u8]); 2] = [("a.jpg", b"A"), ("sub/b.jpg", b"B")];
    let dir = svc.dir("latin1", &files);
    std::fs::write(dir.join(OsStr::from_bytes(b"caf\xe9.jpg")), b"C").unwrap();
    std::fs::write(dir.join("sub").join(OsStr::from_bytes(b"\xff.jpg")), b"D").unwrap();
    std::fs::write(dir.join("sub").join(OsStr::from_bytes(b"\xfe.jpg")), b"E").unwrap();
    let (project, storage) = images_scanned(&svc, &dir).await;
    let traceback = "./: 1 name here is not valid UTF-8: that file or folder cannot be imported; rename it\n\
                     sub/: 2 names here are not valid UTF-8: those files or folders cannot be imported; rename them";
    for (run, created) in [(1, 2), (2, 0)] {
        let s = svc.sync(&storage).await.body;
        assert_eq!(
            (s["status"].as_str(), s["last_sync_count"].as_i64(), s["traceback"].as_str()),
            (Some("completed_with_errors"), Some(created), Some(traceback)),
            "{run}"
        );
        assert_eq!((&s["meta"]["objects_failed"], &s["meta"]["objects_listed"]), (&json!(2), &json!(2)), "{run}");
    }
    let images: Vec<Value> = svc.task_data(project).await.into_iter().map(|d| d["image"].clone()).collect();
    assert_eq!(images, ["a.jpg", "sub/b.jpg"].map(|k| json!(format!("/data/local-files/?d=latin1/{k}"))));
}

/// The same folder connected twice to one project (a script that re-runs "connect + sync"):
/// tasks stay unique per project and object. The second storage creates nothing and its `meta`
/// says how many tasks it found imported (`tasks_already_imported`), in blob mode and in JSON
/// mode alike; another project imports the objects for itself. Label Studio creates every task
/// again. When the first storage is deleted its tasks stay, no longer linked, and the second
/// storage then imports the objects as its own (as Label Studio would).
#[tokio::test]
async fn the_same_folder_connected_twice_imports_each_object_once_per_project() {
    let svc = Service::start().await;
    let blobs = svc.dir("twice/blobs", &[("a.jpg", b"A"), ("sub/b.jpg", b"B")]);
    let files = svc.dir("twice/tasks", &[("t.jsonl", b"{\"text\": \"1\"}\n{\"text\": \"2\"}\n{\"text\": \"3\"}\n")]);
    let connect = |project: i64, path: &std::path::Path, blob: bool| {
        let body = json!({"project": project, "path": path, "use_blob_urls": blob, "recursive_scan": true});
        let svc = &svc;
        async move {
            let r = svc.post("/api/storages/localfiles", body).await;
            assert_eq!(r.status, 201, "{:?}", r.body);
            format!("/api/storages/localfiles/{}", r.body["id"])
        }
    };
    let synced = |storage: String| {
        let svc = &svc;
        async move {
            let s = svc.sync(&storage).await.body;
            (s["status"].as_str().unwrap().to_string(), s["last_sync_count"].as_i64().unwrap(), s["meta"].clone())
        }
    };
    let count = |project: i64| {
        let svc = &svc;
        async move { svc.get(&format!("/api/projects/{project}")).await.body["task_number"].as_i64().unwrap() }
    };
    let project = svc.project(r#"<View><Image name="i" value="$image"/></View>"#).await;
    for (path, blob, tasks) in [(&blobs, true, 2), (&files, false, 3)] {
        let first = connect(project, path, blob).await;
        let (status, created, meta) = synced(first.clone()).await;
        assert_eq!((status.as_str(), created, &meta["tasks_already_imported"]), ("completed", tasks, &json!(0)));
        let second = connect(project, path, blob).await;
        for run in 1..=2 {
            let (status, created, meta) = synced(second.clone()).await;
            assert_eq!(
                (status.as_str(), created, &meta["tasks_already_imported"], &meta["tasks_created"]),
                ("completed", 0, &json!(tasks), &json!(0)),
                "{path:?} run {run}"
            );
        }
    }
    assert_eq!(count(project).await, 5);

    // Another project is not the same: it imports the folder for itself.
    let other = svc.project(r#"<View><Image name="i" value="$image"/></View>"#).await;
    let (_, created, meta) = synced(connect(other, &blobs, true).await).await;
    assert_eq!((created, &meta["tasks_already_imported"]), (2, &json!(0)));

    // Deleting the storage that imported the blobs leaves its tasks; the twin imports anew.
    let storages = svc.get(&format!("/api/storages/localfiles?project={project}")).await.body;
    let ids: Vec<i64> = storages.as_array().unwrap().iter().map(|s| s["id"].as_i64().unwrap()).collect();
    assert_eq!(svc.delete(&format!("/api/storages/localfiles/{}", ids[0])).await.status, 204);
    let (_, created, meta) = synced(format!("/api/storages/localfiles/{}", ids[1])).await;
    assert_eq!((created, &meta["tasks_already_imported"]), (2, &json!(0)));
    assert_eq!(count(project).await, 7);
}

/// Annotations and predictions in a storage's task file keep Label Studio's task format:
/// `result`, `was_cancelled`, `ground_truth`, `lead_time`, `completed_by` (a user's id, or an
/// object with a user's email, as export documents have it), `created_at` and `updated_at`
/// (Label Studio replaces them with the import time), `score`, `model_version`. A task naming
/// an unknown user, or a timestamp that is not one, is skipped and reported with its line and
/// Label Studio's words (Label Studio drops such annotations silently and keeps the task). Total
/// and cancelled counts follow Label Studio, and export sync writes the imported annotations.
#[tokio::test]
async fn annotations_in_task_files_keep_their_fields_and_authors_and_are_exported() {
    let svc = Service::start().await;
    let me = svc.get("/api/current-user/whoami").await.body;
    let (my_id, my_email) = (me["id"].as_i64().unwrap(), me["email"].as_str().unwrap().to_string());
    let result = json!([{"from_name": "c", "to_name": "t", "type": "choices", "value": {"choices": ["yes"]}}]);
    let lines = [
        json!({"data": {"text": "one"},
               "annotations": [
                   {"result": result, "completed_by": my_id, "created_at": "2021-03-09T21:52:49.513742Z",
                    "updated_at": "2021-03-09T22:16:08.746926Z", "lead_time": 12.5, "ground_truth": true},
                   {"result": [], "was_cancelled": true, "completed_by": {"id": 777, "email": my_email},
                    "created_at": "2021-03-10T08:00:00+02:00"}],
               "predictions": [{"result": result, "score": 0.25, "model_version": "v7",
                                "created_at": "2021-03-09T20:00:00.5Z"}]}),
        json!({"data": {"text": "two"}, "annotations": [{"result": result, "completed_by": 999}]}),
        json!({"data": {"text": "three"}, "annotations": [{"result": [], "completed_by": {"email": "nobody@example.com"}}]}),
        json!({"data": {"text": "four"}, "annotations": [{"result": [], "created_at": "yesterday"}]}),
        json!({"data": {"text": "five"}, "annotations": [{"result": result, "completed_by": "me"}]}),
        json!({"data": {"text": "six"}, "annotations": [{"result": result}]}),
    ];
    let jsonl: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let dir = svc.dir("annotated", &[("t.jsonl", jsonl.as_bytes())]);
    let project = svc.project(r#"<View><Text name="t" value="$text"/><Choices name="c" toName="t"/></View>"#).await;
    let r =
        svc.post("/api/storages/localfiles", json!({"project": project, "path": dir, "use_blob_urls": false})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let s = svc.sync(&format!("/api/storages/localfiles/{}", r.body["id"])).await.body;
    assert_eq!((s["status"].as_str(), s["last_sync_count"].as_i64()), (Some("completed_with_errors"), Some(2)));
    assert_eq!(
        s["traceback"].as_str().unwrap(),
        "t.jsonl: line 2: annotation 0: Unknown annotator's ID 999\n\
         t.jsonl: line 3: annotation 0: Unknown annotator's email nobody@example.com\n\
         t.jsonl: line 4: annotation 0: \"created_at\" is not a date-time (like 2021-03-09T21:52:49.513742Z): \"yesterday\"\n\
         t.jsonl: line 5: annotation 0: Import data contains completed_by=\"me\" which is not a valid annotator's email or ID"
    );
    assert_eq!(s["meta"]["tasks_skipped"], 4);

    let tasks = svc.get(&format!("/api/tasks?project={project}&fields=all")).await.body;
    let tasks = tasks["tasks"].as_array().unwrap();
    let counts: Vec<_> = tasks
        .iter()
        .map(|t| {
            let c = |k: &str| t[k].as_i64().unwrap();
            (t["data"]["text"].clone(), c("total_annotations"), c("cancelled_annotations"), c("total_predictions"))
        })
        .collect();
    assert_eq!(counts, [(json!("one"), 1, 1, 1), (json!("six"), 1, 0, 0)]);
    let kept = |a: &Value| {
        let k = |name: &str| a[name].clone();
        [
            k("result"),
            k("completed_by"),
            k("was_cancelled"),
            k("ground_truth"),
            k("lead_time"),
            k("created_at"),
            k("updated_at"),
        ]
    };
    let annotations: Vec<_> =
        tasks.iter().flat_map(|t| t["annotations"].as_array().unwrap().iter().map(kept)).collect();
    assert_eq!(
        annotations[..2],
        [
            [
                result.clone(),
                json!(my_id),
                json!(false),
                json!(true),
                json!(12.5),
                json!("2021-03-09T21:52:49.513742Z"),
                json!("2021-03-09T22:16:08.746926Z")
            ],
            [
                json!([]),
                json!(my_id),
                json!(true),
                json!(false),
                json!(null),
                json!("2021-03-10T06:00:00.000000Z"),
                json!("2021-03-10T06:00:00.000000Z")
            ],
        ]
    );
    // Without completed_by nor timestamps: no author (as Label Studio's storage sync), the import time.
    assert_eq!(annotations[2][1..5], [json!(null), json!(false), json!(false), json!(null)]);
    assert_eq!(annotations[2][5], annotations[2][6]);
    let p = &tasks[0]["predictions"][0];
    assert_eq!(
        (&p["result"], &p["score"], &p["model_version"], &p["created_at"]),
        (&result, &json!(0.25), &json!("v7"), &json!("2021-03-09T20:00:00.500000Z"))
    );

    // A target storage created now exports the three imported annotations.
    let out = svc.dir("annotated-out", &[]);
    let r = svc.post("/api/storages/export/localfiles", json!({"project": project, "path": out})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let s = svc.wait_sync(&format!("/api/storages/export/localfiles/{}", r.body["id"])).await.body;
    assert_eq!((s["status"].as_str(), s["last_sync_count"].as_i64()), (Some("completed"), Some(3)));
    let first = tasks[0]["annotations"][0]["id"].as_i64().unwrap();
    let doc: Value = serde_json::from_slice(&std::fs::read(out.join(first.to_string())).unwrap()).unwrap();
    assert_eq!(
        (&doc["result"], &doc["completed_by"]["email"], &doc["created_at"], &doc["task"]["data"]),
        (&result, &json!(my_email), &json!("2021-03-09T21:52:49.513742Z"), &json!({"text": "one"}))
    );
}
