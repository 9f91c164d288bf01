//! `stowage sync`, the command-line client, run as a subprocess (stdout not a terminal: plain
//! lines) against a service: its output, exit codes (0 completed, 2 completed with errors,
//! 1 failed or any error) and that it never prints the token.

use serde_json::json;
use stowage_tests::{Service, TOKEN};

/// What one `stowage sync` run printed and how it exited.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or("")
    }

    fn prints(&self, s: &str) -> bool {
        self.stdout.contains(s) || self.stderr.contains(s)
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `stowage sync ARGS` with `env` (and no `STOWAGE_*` variables from the test's own
/// environment). Async: the service answers on this runtime meanwhile.
async fn stowage_sync(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = tokio::process::Command::new(stowage_tests::binary())
        .arg("sync")
        .args(["--interval-ms", "20"])
        .args(args)
        .env_remove("STOWAGE_URL")
        .env_remove("STOWAGE_TOKEN")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("stowage sync runs");
    Run {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// `stowage sync --url URL --token TOKEN ARGS`.
async fn sync(svc: &Service, args: &[&str]) -> Run {
    stowage_sync(&[&["--url", &svc.url, "--token", TOKEN], args].concat(), &[]).await
}

async fn local_storage(svc: &Service, path: &str, body: serde_json::Value) -> i64 {
    let r = svc.post(path, body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_i64().unwrap()
}

#[tokio::test]
async fn completed_run_exits_0_and_its_tasks_are_there() {
    let svc = Service::start().await;
    let files: Vec<(String, Vec<u8>)> = (0..300).map(|i| (format!("img-{i:03}.jpg"), vec![b'x'; 10])).collect();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    let dir = svc.dir("images", &files);
    let project = svc.project("<View></View>").await;
    let id = local_storage(
        &svc,
        "/api/storages/localfiles",
        json!({"project": project, "path": dir, "use_blob_urls": true}),
    )
    .await;

    // URL and token from the environment.
    let run = stowage_sync(
        &["--type", "localfiles", &id.to_string()],
        &[("STOWAGE_URL", svc.url.as_str()), ("STOWAGE_TOKEN", TOKEN)],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.last_line().starts_with("completed: "), "{run:?}");
    assert!(run.last_line().contains(" created=300 "), "{run:?}");
    assert!(run.last_line().contains("listed=300 matched=300 "), "{run:?}");
    assert!(!run.prints(TOKEN), "{run:?}");
    assert!(!run.stdout.contains('\u{1b}'), "no terminal codes when not on a terminal: {run:?}");
    assert_eq!(svc.task_data(project).await.len(), 300);

    // A re-sync creates nothing; an export storage syncs through --export.
    let run = sync(&svc, &["--type", "localfiles", &id.to_string()]).await;
    assert_eq!((run.code, run.last_line().contains(" created=0 ")), (0, true), "{run:?}");
    let out = svc.dir("out", &[]);
    let export = local_storage(&svc, "/api/storages/export/localfiles", json!({"project": project, "path": out})).await;
    let run = sync(&svc, &["--type", "localfiles", "--export", &export.to_string()]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.last_line().starts_with("completed: "), "{run:?}");
}

#[tokio::test]
async fn bad_files_exit_2_and_a_failed_run_exits_1_with_the_traceback() {
    let svc = Service::start().await;
    let files: [(&str, &[u8]); 3] =
        [("1.json", br#"{"text": "one"}"#), ("2.json", br#"{"text": "two"}"#), ("3-bad.json", b"{\"text\": ")];
    let dir = svc.dir("tasks", &files);
    let project = svc.project("<View><Text name=\"t\" value=\"$text\"/></View>").await;
    let id = local_storage(&svc, "/api/storages/localfiles", json!({"project": project, "path": dir})).await;
    let run = sync(&svc, &["--type", "localfiles", &id.to_string()]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.last_line().starts_with("completed_with_errors: "), "{run:?}");
    assert!(run.last_line().contains(" created=2 ") && run.last_line().contains(" failed=1 "), "{run:?}");
    assert!(run.stderr.contains("3-bad.json: invalid JSON: EOF while parsing a value"), "{run:?}");

    // The test adapter `misbehave` in mode `trap` crashes when listing: the run fails.
    let r =
        svc.post("/api/storages/misbehave", json!({"project": project, "mode": "trap", "use_blob_urls": true})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_i64().unwrap().to_string();
    let run = sync(&svc, &["--type", "misbehave", &id]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.last_line().starts_with("failed: "), "{run:?}");
    assert!(run.stderr.contains("list: adapter failed: the adapter crashed (wasm trap)"), "{run:?}");
    assert!(!run.prints(TOKEN), "{run:?}");
}

#[tokio::test]
async fn refused_requests_exit_1_with_the_status() {
    let svc = Service::start().await;
    let dir = svc.dir("images", &[("a.jpg", b"A")]);
    let project = svc.project("<View></View>").await;
    let id = local_storage(
        &svc,
        "/api/storages/localfiles",
        json!({"project": project, "path": dir, "use_blob_urls": true}),
    )
    .await
    .to_string();

    let wrong = "ffffffffffffffffffffffffffffffffffffffff";
    let run = stowage_sync(&["--url", &svc.url, "--token", wrong, "--type", "localfiles", &id], &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("401") && run.stderr.contains("Invalid token."), "{run:?}");
    assert!(!run.prints(wrong), "{run:?}");

    let run = sync(&svc, &["--type", "localfiles", "999"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("404"), "{run:?}");
    let run = sync(&svc, &["--type", "localfiles", "--export", &id]).await;
    assert_eq!(run.code, 1, "an import storage's id is no export storage: {run:?}");
    assert!(run.stderr.contains("404"), "{run:?}");

    // Nothing listening.
    let url = format!("http://127.0.0.1:{}", stowage_tests::free_port());
    let run = stowage_sync(&["--url", &url, "--token", TOKEN, "--type", "localfiles", &id], &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("no answer from the service"), "{run:?}");
    assert!(!run.prints(TOKEN), "{run:?}");

    // No token at all: a usage error, 1 as well (clap's own 2 would read as completed_with_errors).
    let run = stowage_sync(&["--url", &svc.url, "--type", "localfiles", &id], &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("--token"), "{run:?}");
}
