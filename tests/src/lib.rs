//! Shared helpers of the end-to-end tests: where the test adapters are, an in-process service on
//! a free port with its own data dir and document root, and a small JSON client.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use stowage::App;
use stowage::config::Settings;

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
pub fn settings(tmp: &std::path::Path, call_timeout_ms: u64) -> Settings {
    let root = tmp.join("root");
    std::fs::create_dir_all(&root).unwrap();
    Settings {
        bind: "127.0.0.1:0".parse().unwrap(),
        data_dir: tmp.join("data"),
        adapters_dir: adapters_dir(),
        document_root: Some(root),
        token: Some(TOKEN.into()),
        call_timeout_ms,
        // The S3 test server listens on loopback.
        allow_private_addresses: true,
        allow_ambient_credentials: false,
        adapter_memory_mib: 64,
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
    /// Starts a service with a per-call adapter deadline of `call_timeout_ms`.
    pub async fn start_with_timeout(call_timeout_ms: u64) -> Service {
        let tmp = tempfile::tempdir().unwrap();
        let settings = settings(tmp.path(), call_timeout_ms);
        let root = settings.document_root.clone().unwrap().canonicalize().unwrap();
        let app = Arc::new(App::start(settings).await.expect("service starts"));
        app.store.bootstrap_user(TOKEN).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(stowage::api::serve(listener, app.clone(), async {
            let _ = stopped.await;
        }));
        Service { app, url, root, http: reqwest::Client::new(), _tmp: tmp, stop: Some(stop) }
    }

    pub async fn start() -> Service {
        Service::start_with_timeout(10_000).await
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

    /// Creates a project and returns its id.
    pub async fn project(&self, label_config: &str) -> i64 {
        let r = self.post("/api/projects/", serde_json::json!({"title": "test project", "label_config": label_config})).await;
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
