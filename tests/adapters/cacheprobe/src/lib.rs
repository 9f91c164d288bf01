//! A test adapter for the host's WIT version dispatch: built with wit-bindgen directly against
//! `stowage:storage@0.2.0`, while the SDK (and every real adapter) targets the newest. Its `list`
//! counts calls in the 0.2.0 `host-cache` import and lists one key, `call-N.json`, so a test can
//! see that the count survives instance rebuilds and is kept per storage.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.2.0",
    world: "adapter",
});

use exports::stowage::storage::backend_api::{Guest, GuestBackend};
use stowage::storage::host_cache;
use stowage::storage::types::{
    AdapterInfo, ByteRange, Capabilities, Direction, Entry, Error, Method, Object, Page, Setting, SettingKind,
};

struct Probe;

struct ProbeBackend;

fn unsupported(op: &str) -> Error {
    Error::Unsupported(format!("{op} is not supported by this storage"))
}

impl Guest for Probe {
    type Backend = ProbeBackend;

    fn describe() -> AdapterInfo {
        AdapterInfo {
            type_name: "cacheprobe".into(),
            title: "Host cache probe (WIT 0.2.0)".into(),
            capabilities: Capabilities::READ,
            settings: vec![Setting {
                name: "name".into(),
                kind: SettingKind::Text,
                secret: false,
                required: true,
                default_value: None,
                export_default_value: None,
                env_fallback: None,
                help: "any name; storages with different names have separate caches".into(),
            }],
            grants: vec![],
            regex_on_basename: false,
            key_value: false,
            uri_schemes: vec![],
        }
    }
}

impl GuestBackend for ProbeBackend {
    fn open(
        _settings: Vec<(String, String)>,
        _secrets: Vec<(String, String)>,
    ) -> Result<exports::stowage::storage::backend_api::Backend, Error> {
        Ok(exports::stowage::storage::backend_api::Backend::new(ProbeBackend))
    }
    fn check(&self, _direction: Direction) -> Result<(), Error> {
        Ok(())
    }
    fn list(&self, _prefix: String, _cursor: Option<String>, _page_size: u32, _recursive: bool) -> Result<Page, Error> {
        let calls = host_cache::get("calls")
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        host_cache::set("calls", calls.to_string().as_bytes(), 3600);
        let key = format!("call-{calls}.json");
        Ok(Page { entries: vec![Entry { key, size: 0, etag: None, last_modified: None }], next_cursor: None })
    }
    fn stat(&self, _key: String) -> Result<Entry, Error> {
        Err(unsupported("stat"))
    }
    fn get(&self, _key: String, _range: Option<ByteRange>) -> Result<Object, Error> {
        Err(unsupported("get"))
    }
    fn put(&self, _key: String, _body: Vec<u8>, _content_type: Option<String>) -> Result<(), Error> {
        Err(unsupported("put"))
    }
    fn delete(&self, _keys: Vec<String>) -> Result<(), Error> {
        Err(unsupported("delete"))
    }
    fn presign(&self, _method: Method, _key: String, _ttl_seconds: u32) -> Result<String, Error> {
        Err(unsupported("presign"))
    }
    fn blob_uri(&self, key: String) -> String {
        format!("cacheprobe://{key}")
    }
    fn export_key(&self, annotation_id: u64) -> String {
        annotation_id.to_string()
    }
    fn key_of_uri(&self, _uri: String) -> Option<String> {
        None
    }
}

export!(Probe);
