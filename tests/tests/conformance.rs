//! Runs the adapter conformance suite (`stowage_sdk::conformance`) against every adapter in the
//! test adapters directory that can be written to, through the host's plugin runtime (the driver
//! `stowage conformance` uses too).

use std::path::PathBuf;

use serde_json::{Map, Value};
use stowage::conformance::SessionDriver;
use stowage::domain::{Direction, Storage};
use stowage_sdk::conformance;
use stowage_tests::{ObjectStore, Service};

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
        // An empty container of the Azure test server (Azurite); `None` skips (fails under CI=true).
        "azure" => {
            return stowage_tests::azure_env()
                .map(|az| (az.storage(Direction::Export, &az.conformance_container), None));
        }
        // An empty bucket of the GCS test server (fake-gcs-server); `None` skips (fails under CI=true).
        "gcs" => return stowage_tests::gcs_env().map(|g| (g.storage(Direction::Export, &g.conformance_bucket), None)),
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
    assert_eq!(types, ["azure", "gcs", "localfiles", "s3"], "adapters under test");
    for type_name in types {
        let Some((storage, dir)) = storage_for(&svc, &type_name) else { continue };
        let session = svc.app.sessions.open(&storage).expect("storage opens");
        let mut driver = SessionDriver { session, dir };
        if let Err(failures) = conformance::run(&mut driver).await {
            panic!("{type_name} fails conformance:\n{}", failures.join("\n"));
        }
    }
}
