//! Shared helpers of the end-to-end tests: where the test adapters are, an in-process service on
//! a free port with its own data dir and document root, and a small JSON client; the test servers
//! of each backend, in [`object_store`] the scenarios the S3, GCS and Azure suites share, and in
//! [`fault_proxy`] a proxy that injects faults in front of a test server.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use stowage::App;
use stowage::config::Settings;

pub mod fault_proxy;
pub mod object_store;
pub use object_store::ObjectStore;

/// API token of the tests' first user.
pub const TOKEN: &str = "0123456789abcdef0123456789abcdef01234567";

/// The adapters built for tests (`adapters/build.sh` fills it): `STOWAGE_TEST_ADAPTERS`, or
/// `target/test-adapters` of this workspace. Adapters are build products, not external servers,
/// so a missing directory fails the test rather than skipping it.
pub fn adapters_dir() -> PathBuf {
    let dir = std::env::var_os("STOWAGE_TEST_ADAPTERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-adapters"));
    assert!(
        dir.join("stowage_adapter_localfs.wasm").exists(),
        "no test adapters in {}: run adapters/build.sh first (tests/run.sh does)",
        dir.display()
    );
    dir
}

/// Settings for a service whose data dir and document root live under `tmp`.
pub fn settings(tmp: &std::path::Path, call_timeout_ms: u64, allow_private_addresses: bool) -> Settings {
    let root = tmp.join("root");
    std::fs::create_dir_all(&root).unwrap();
    Settings {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: tmp.join("data"),
        // Shared by all tests: compiled code is keyed by content hash, so reuse is safe.
        cache_dir: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-adapter-cache")),
        adapters_dir: adapters_dir(),
        // The shared test adapters directory changes only between runs.
        watch_adapters: false,
        allowed_adapters: vec![],
        allowed_hosts: vec![],
        document_root: Some(root),
        token: Some(TOKEN.into()),
        password: None,
        call_timeout_ms,
        allow_private_addresses,
        ambient_credentials: vec![],
        adapter_memory_mib: 64,
        max_response_mib: 64,
        quarantine_after: 10,
        sync_workers: 2,
        header_timeout: 10,
        request_timeout: 60,
        max_body_mib: 100,
        max_proxy_streams: 64,
        max_connections: None,
    }
}

/// A running service and a client for it. Dropping it stops the server.
pub struct Service {
    pub app: Arc<App>,
    pub url: String,
    /// The document root: storages' directories go under it.
    pub root: PathBuf,
    pub http: reqwest::Client,
    _tmp: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A response: status and JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Service {
    /// Starts a service with a per-call adapter deadline of `call_timeout_ms`; it may reach
    /// loopback addresses (the S3 test server) only if `allow_private_addresses`.
    pub async fn start_with_policy(call_timeout_ms: u64, allow_private_addresses: bool) -> Service {
        Service::start_with(|tmp| settings(tmp, call_timeout_ms, allow_private_addresses)).await
    }

    /// Starts a service with the settings `make` builds for a fresh temporary directory.
    pub async fn start_with(make: impl FnOnce(&std::path::Path) -> Settings) -> Service {
        let tmp = tempfile::tempdir().unwrap();
        let settings = make(tmp.path());
        let root = settings.document_root.clone().unwrap().canonicalize().unwrap();
        let app = App::start(settings).await.expect("service starts");
        app.store.bootstrap_user(TOKEN).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(stowage::api::serve(listener, app.clone(), async {
            let _ = stopped.await;
        }));
        Service { app, url, root, http: reqwest::Client::new(), _tmp: tmp, stop: Some(stop) }
    }

    pub async fn start_with_timeout(call_timeout_ms: u64) -> Service {
        Service::start_with_policy(call_timeout_ms, true).await
    }

    /// A service that may reach the loopback S3 test server.
    pub async fn start() -> Service {
        Service::start_with_timeout(10_000).await
    }

    /// The service's SQLite database file (read by tests that check links and integrity).
    pub fn database(&self) -> PathBuf {
        self._tmp.path().join("data/stowage.sqlite3")
    }

    /// Creates `rel` under the document root with the given files (`(relative path, bytes)`).
    pub fn dir(&self, rel: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let dir = self.root.join(rel);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        dir
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let resp = req.header("Authorization", format!("Token {TOKEN}")).send().await.expect("request sent");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        Reply { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.url))).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.post(format!("{}{path}", self.url)).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(self.http.patch(format!("{}{path}", self.url)).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.http.delete(format!("{}{path}", self.url))).await
    }

    /// Syncs a storage and waits for the run to end: `POST {storage}/sync` (which answers at
    /// once, `queued` or `in_progress`), then polls `GET {storage}` until its status is final.
    /// `storage` is the storage's path, e.g. `/api/storages/s3/7`. Returns the final storage;
    /// a refused sync request (4xx) is returned as it came.
    pub async fn sync(&self, storage: &str) -> Reply {
        let r = self.post(&format!("{storage}/sync"), Value::Null).await;
        if r.status != 200 {
            return r;
        }
        self.wait_sync(storage).await
    }

    /// Polls `GET {storage}` until its status is `completed`, `completed_with_errors` or `failed`
    /// (at most 10 minutes).
    pub async fn wait_sync(&self, storage: &str) -> Reply {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
        loop {
            let r = self.get(storage).await;
            let status = r.body["status"].as_str().unwrap_or("");
            if r.status != 200 || ["completed", "completed_with_errors", "failed"].contains(&status) {
                return r;
            }
            assert!(std::time::Instant::now() < deadline, "sync of {storage} still {status} after 10 minutes");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Stored secrets never follow a storage elsewhere: `PATCH {storage}` with each of `moves`
    /// (a setting and a new value) alone, and with a new `project`, is refused with 400 naming
    /// every one of `secrets` (the secret fields stored) and changes nothing.
    pub async fn assert_secrets_stay_behind(&self, storage: &str, moves: &[(&str, Value)], secrets: &[&str]) {
        let before = self.get(storage).await.body;
        let other = self.project("<View></View>").await;
        let mut bodies: Vec<Value> = moves.iter().map(|(name, v)| serde_json::json!({*name: v})).collect();
        bodies.push(serde_json::json!({"project": other}));
        let want: serde_json::Map<String, Value> = secrets
            .iter()
            .map(|s| {
                (s.to_string(), serde_json::json!(["Enter this secret again when changing the connection settings."]))
            })
            .collect();
        for body in bodies {
            let r = self.patch(storage, body.clone()).await;
            assert_eq!((r.status, &r.body["validation_errors"]), (400, &Value::Object(want.clone())), "PATCH {body}");
        }
        assert_eq!(self.get(storage).await.body, before);
    }

    /// `POST /api/adapters` with a `.wasm` body, as the administrator.
    pub async fn upload_adapter(&self, wasm: Vec<u8>) -> Reply {
        self.send(
            self.http.post(format!("{}/api/adapters", self.url)).header("Content-Type", "application/wasm").body(wasm),
        )
        .await
    }

    /// Creates a project and returns its id.
    pub async fn project(&self, label_config: &str) -> i64 {
        let r = self
            .post("/api/projects/", serde_json::json!({"title": "test project", "label_config": label_config}))
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["id"].as_i64().unwrap()
    }

    /// Data of every task of a project, in id order.
    pub async fn task_data(&self, project: i64) -> Vec<Value> {
        let r = self.get(&format!("/api/tasks/?project={project}&page_size=10000")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["tasks"].as_array().unwrap().iter().map(|t| t["data"].clone()).collect()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The variable that says a test server runs (written by `tests/emulators/<script> start DIR`), or
/// `None`: the test is skipped. Under `CI=true` a missing server fails the test instead: CI must
/// run every suite.
fn server_var(name: &str, script: &str) -> Option<String> {
    let value = var(name);
    if value.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {name} is unset: tests/run.sh starts the server"
        );
        eprintln!("skipped: {name} is unset (tests/emulators/{script} start DIR; source DIR/env)");
    }
    value
}

/// The S3 test server (`tests/emulators/garage.sh` writes these variables). Its storage fields
/// and adapter storages come from its [`ObjectStore`] implementation.
#[derive(Debug, Clone)]
pub struct S3Env {
    /// `http://127.0.0.1:PORT`, the storages' `s3_endpoint`.
    pub endpoint: String,
    /// Access key id of the test key.
    pub key_id: String,
    /// Secret access key of the test key.
    pub secret: String,
    /// The bucket the API tests share.
    pub bucket: String,
    /// An empty bucket for the adapter conformance suite.
    pub conformance_bucket: String,
    /// The server's region (`region_name`).
    pub region: String,
}

/// The S3 server's settings, or `None` (test skipped) when `STOWAGE_S3_ENDPOINT` is unset.
/// Under `CI=true` a missing server fails the test instead: CI must run every suite.
pub fn s3_env() -> Option<S3Env> {
    let endpoint = server_var("STOWAGE_S3_ENDPOINT", "garage.sh")?;
    let need = |name: &str| var(name).unwrap_or_else(|| panic!("{name} is unset"));
    Some(S3Env {
        endpoint,
        key_id: need("STOWAGE_S3_KEY_ID"),
        secret: need("STOWAGE_S3_SECRET"),
        bucket: need("STOWAGE_S3_BUCKET"),
        conformance_bucket: need("STOWAGE_S3_CONFORMANCE_BUCKET"),
        region: need("STOWAGE_S3_REGION"),
    })
}

/// The GCS test server (`tests/emulators/gcs.sh` writes these variables; fake-gcs-server, which
/// checks no credentials). Its storage fields and adapter storages come from its [`ObjectStore`]
/// implementation.
#[derive(Debug, Clone)]
pub struct GcsEnv {
    /// `http://127.0.0.1:PORT`, the storages' `gcs_endpoint`.
    pub endpoint: String,
    /// The storages' `google_project_id`.
    pub project: String,
    /// The bucket the API tests share.
    pub bucket: String,
    /// An empty bucket for the adapter conformance suite.
    pub conformance_bucket: String,
}

/// The GCS server's settings, or `None` (test skipped) when `STOWAGE_GCS_ENDPOINT` is unset;
/// under `CI=true` a missing server fails the test.
pub fn gcs_env() -> Option<GcsEnv> {
    let endpoint = server_var("STOWAGE_GCS_ENDPOINT", "gcs.sh")?;
    let need = |name: &str| var(name).unwrap_or_else(|| panic!("{name} is unset"));
    Some(GcsEnv {
        endpoint,
        project: need("STOWAGE_GCS_PROJECT"),
        bucket: need("STOWAGE_GCS_BUCKET"),
        conformance_bucket: need("STOWAGE_GCS_CONFORMANCE_BUCKET"),
    })
}

/// The Azure Blob test server (`tests/emulators/azure.sh` writes these variables; Azurite). Its
/// storage fields and adapter storages come from its [`ObjectStore`] implementation.
#[derive(Debug, Clone)]
pub struct AzureEnv {
    /// Path-style endpoint, `http://127.0.0.1:PORT/ACCOUNT`.
    pub endpoint: String,
    /// The storage account.
    pub account_name: String,
    /// Base64 account key.
    pub account_key: String,
    /// The container the API tests share.
    pub container: String,
    /// An empty container for the adapter conformance suite.
    pub conformance_container: String,
}

/// The Azure server's settings, or `None` (test skipped) when `STOWAGE_AZURE_ENDPOINT` is unset;
/// under `CI=true` a missing server fails the test.
pub fn azure_env() -> Option<AzureEnv> {
    let endpoint = server_var("STOWAGE_AZURE_ENDPOINT", "azure.sh")?;
    let need = |name: &str| var(name).unwrap_or_else(|| panic!("{name} is unset"));
    Some(AzureEnv {
        endpoint,
        account_name: need("STOWAGE_AZURE_ACCOUNT_NAME"),
        account_key: need("STOWAGE_AZURE_ACCOUNT_KEY"),
        container: need("STOWAGE_AZURE_CONTAINER"),
        conformance_container: need("STOWAGE_AZURE_CONFORMANCE_CONTAINER"),
    })
}

/// A key prefix unique to this test run, so tests sharing one bucket never see each other.
pub fn unique_prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}-{nanos:x}")
}

/// The service binary: `STOWAGE_BIN`, or this workspace's release build.
pub fn binary() -> PathBuf {
    let bin = std::env::var_os("STOWAGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/stowage"));
    assert!(
        bin.exists(),
        "no service binary at {}: cargo build --release -p stowage (tests/run.sh does)",
        bin.display()
    );
    bin
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `stowage serve` as a separate process (for tests that kill it or read its log); killed on drop.
pub struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    /// The process id (to read its memory in `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Starts the binary on `port` with data dir `tmp/data`, document root `tmp/root`, the test
    /// adapters and `extra` arguments; its stdout and stderr go to `tmp/service.log`. Returns once
    /// `/health` answers.
    pub async fn start(tmp: &std::path::Path, port: u16, extra: &[&str]) -> Process {
        std::fs::create_dir_all(tmp.join("root")).unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(tmp.join("service.log")).unwrap();
        let child = std::process::Command::new(binary())
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(tmp.join("data"))
            .arg("--adapters-dir")
            .arg(adapters_dir())
            .arg("--document-root")
            .arg(tmp.join("root"))
            .args(extra)
            .env("STOWAGE_TOKEN", TOKEN)
            .env("RUST_LOG", "debug")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let process = Process(child);
        // A first start compiles every adapter (no cache yet): seconds on a busy 2-core machine.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while reqwest::get(format!("http://127.0.0.1:{port}/health")).await.is_err() {
            assert!(std::time::Instant::now() < deadline, "service did not start");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        process
    }
}

/// The Redis test server (`tests/emulators/redis.sh` writes these variables).
#[derive(Debug, Clone)]
pub struct RedisEnv {
    pub host: String,
    pub port: String,
    pub password: String,
}

/// The Redis server's settings, or `None` (test skipped) when `STOWAGE_REDIS_PORT` is unset;
/// under `CI=true` a missing server fails the test.
pub fn redis_env() -> Option<RedisEnv> {
    let port = server_var("STOWAGE_REDIS_PORT", "redis.sh")?;
    Some(RedisEnv {
        host: var("STOWAGE_REDIS_HOST").unwrap_or_else(|| "127.0.0.1".into()),
        port,
        password: var("STOWAGE_REDIS_PASSWORD").unwrap_or_default(),
    })
}

impl RedisEnv {
    /// API fields of a Redis storage on database `db` with key prefix `path`.
    pub fn fields(&self, path: &str, db: i64) -> Value {
        serde_json::json!({"path": path, "host": self.host, "port": self.port, "password": self.password, "db": db})
    }

    /// `redis-cli` connected to database `db` of the test server.
    fn redis_cli(&self, db: i64) -> std::process::Command {
        let mut cmd = std::process::Command::new("redis-cli");
        cmd.args([
            "-h",
            &self.host,
            "-p",
            &self.port,
            "-n",
            &db.to_string(),
            "--no-auth-warning",
            "-a",
            &self.password,
        ]);
        cmd
    }

    /// Runs `redis-cli` against database `db` with `args`; returns its output.
    pub fn cli(&self, db: i64, args: &[&str]) -> String {
        let out = self.redis_cli(db).args(args).output().expect("redis-cli runs");
        assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Sets many string keys at once (`redis-cli --pipe`).
    pub fn set_many(&self, db: i64, pairs: &[(String, String)]) {
        use std::io::Write;
        let mut proto = Vec::new();
        for (k, v) in pairs {
            write!(proto, "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n", k.len(), v.len()).unwrap();
        }
        let mut child = self
            .redis_cli(db)
            .arg("--pipe")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-cli runs");
        child.stdin.take().unwrap().write_all(&proto).unwrap();
        assert!(child.wait().unwrap().success());
    }
}
