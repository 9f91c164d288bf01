//! Runs the adapter conformance suite (`stowage_sdk::conformance`) against every adapter in the
//! test adapters directory that can be written to, through the host's plugin runtime.

use std::path::PathBuf;

use serde_json::{Map, Value};
use stowage::domain::{Direction, Storage};
use stowage::error::ErrorKind;
use stowage::plugin::Session;
use stowage_sdk::conformance::{self, Driver, Failure, Listed};
use stowage_tests::Service;

/// Drives one adapter session on an empty storage root.
struct SessionDriver {
    session: Session,
    /// Host directory of the storage, for adapters with a directory grant.
    dir: Option<PathBuf>,
}

fn failure(e: stowage::error::StorageError) -> Failure {
    if e.kind == ErrorKind::NotFound { Failure::NotFound } else { Failure::Other(e.to_string()) }
}

impl Driver for SessionDriver {
    async fn put(&mut self, key: &str, body: &[u8]) -> Result<(), Failure> {
        self.session.put(key, body, None).await.map_err(failure)
    }
    async fn empty_folder(&mut self, path: &str) -> Result<(), Failure> {
        match &self.dir {
            Some(dir) => std::fs::create_dir_all(dir.join(path)).map_err(|e| Failure::Other(e.to_string())),
            None => self.put(&format!("{path}/"), b"").await,
        }
    }
    async fn list(
        &mut self,
        prefix: &str,
        cursor: Option<String>,
        page_size: u32,
        recursive: bool,
    ) -> Result<(Vec<Listed>, Option<String>), Failure> {
        let page = self.session.list(prefix, cursor.as_deref(), page_size, recursive).await.map_err(failure)?;
        Ok((page.entries.into_iter().map(|e| Listed { key: e.key, size: e.size }).collect(), page.next_cursor))
    }
    async fn get(&mut self, key: &str, range: Option<(u64, Option<u64>)>) -> Result<Vec<u8>, Failure> {
        self.session.get(key, range).await.map(|o| o.body).map_err(failure)
    }
    async fn stat(&mut self, key: &str) -> Result<Listed, Failure> {
        self.session.stat(key).await.map(|e| Listed { key: e.key, size: e.size }).map_err(failure)
    }
}

/// An export (read-write) storage of `type_name` on a fresh, empty root. Each backend says here how
/// its test storage is configured; a writable adapter without an entry fails the test.
fn storage_for(svc: &Service, type_name: &str) -> Option<(Storage, Option<PathBuf>)> {
    let mut fields = Map::new();
    let dir = match type_name {
        "localfiles" => {
            let dir = svc.dir("conformance", &[]);
            fields.insert("path".into(), Value::from(dir.to_str().unwrap()));
            Some(dir)
        }
        // An empty bucket of the S3 test server; `None` skips (fails under CI=true).
        "s3" => return stowage_tests::s3_env().map(|s3| (s3.storage(Direction::Export, &s3.conformance_bucket), None)),
        other => panic!("no conformance fixture for storage type {other:?}: add one in tests/tests/conformance.rs"),
    };
    Some((Storage::new(Direction::Export, type_name, 0, fields), dir))
}

#[tokio::test]
async fn every_writable_adapter_passes_the_conformance_suite() {
    let svc = Service::start().await;
    let types: Vec<String> = svc
        .app
        .registry
        .all()
        .into_iter()
        // The suite checks folder semantics and sorted listings: it does not apply to key-value
        // stores (Redis keys have no folders and SCAN has no order); tests/tests/redis.rs covers them.
        .filter(|a| a.info.capabilities.read && a.info.capabilities.write && !a.info.key_value)
        .map(|a| a.info.type_name.clone())
        .collect();
    assert_eq!(types, ["localfiles", "s3"], "adapters under test");
    for type_name in types {
        let Some((storage, dir)) = storage_for(&svc, &type_name) else { continue };
        let session = stowage::sync::connect(&svc.app, &storage).expect("storage opens");
        let mut driver = SessionDriver { session, dir };
        if let Err(failures) = conformance::run(&mut driver).await {
            panic!("{type_name} fails conformance:\n{}", failures.join("\n"));
        }
    }
}
