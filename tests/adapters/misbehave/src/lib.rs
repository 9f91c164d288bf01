//! A deliberately broken adapter for the sandbox tests. Its `mode` setting picks the misbehaviour
//! of `list` and `get`: `trap` panics, `loop` spins forever, `alloc` allocates without bound;
//! anything else returns one entry, so a healthy call can be told apart from a failed one.

use stowage_sdk::{
    AdapterInfo, Backend, ByteRange, Capabilities, Config, Entry, Error, Object, Page, Setting, SettingKind,
};

struct Misbehave {
    mode: String,
}

impl Misbehave {
    fn misbehave(&self) {
        match self.mode.as_str() {
            "trap" => panic!("misbehave: trap requested"),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hog: Vec<Vec<u8>> = Vec::new();
                loop {
                    hog.push(vec![1u8; 16 << 20]);
                    std::hint::black_box(&hog);
                }
            }
            _ => {}
        }
    }
}

impl Backend for Misbehave {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            type_name: "misbehave".into(),
            title: "Misbehaving test adapter".into(),
            capabilities: Capabilities::READ,
            settings: vec![Setting {
                name: "mode".into(),
                kind: SettingKind::Text,
                secret: false,
                required: true,
                default_value: None,
                env_fallback: None,
                help: "trap, loop, alloc or ok".into(),
            }],
            grants: vec![],
            regex_on_basename: false,
            uri_schemes: vec![],
        }
    }

    fn open(config: Config) -> Result<Self, Error> {
        Ok(Misbehave { mode: config.require("mode")?.to_string() })
    }

    fn list(&self, _prefix: &str, _cursor: Option<String>, _page_size: u32, _recursive: bool) -> Result<Page, Error> {
        self.misbehave();
        Ok(Page {
            entries: vec![Entry { key: "ok.json".into(), size: 2, etag: None, last_modified: None }],
            next_cursor: None,
        })
    }

    fn get(&self, _key: &str, _range: Option<ByteRange>) -> Result<Object, Error> {
        self.misbehave();
        Ok(Object {
            body: b"{\"ok\": true}".to_vec(),
            total_size: 12,
            etag: None,
            content_type: None,
            last_modified: None,
        })
    }

    fn blob_uri(&self, key: &str) -> String {
        format!("misbehave://{key}")
    }
}

stowage_sdk::export_adapter!(Misbehave);
