//! A deliberately broken adapter for the sandbox tests. Its `mode` setting picks the misbehaviour
//! of `list` and `get`: `trap` panics, `loop` spins forever, `alloc` allocates without bound,
//! `alloc1g` asks for 1 GiB at once, `big:N` answers `get` with N MiB; `pages:N` lists N pages
//! of one key each (`p0.json`, `p1.json`, ...) and `pages:N:fail:K` fails page K (`denied`);
//! `connect:ADDR` opens a TCP connection to ADDR (its grant is `host`:`port` only); `read:ADDR`
//! connects and waits for bytes that never come; `http:URL` sends an HTTP GET (it has no HTTP
//! grant); `file:PATH` reads a file (it has no directory); `env` lists the environment variables
//! it can see as keys; anything else returns one entry, so a healthy call can be told apart from
//! a failed one.

use stowage_sdk::{
    AdapterInfo, Backend, ByteRange, Capabilities, Config, Entry, Error, GrantRequest, Object, Page, Setting,
    SettingKind, TcpGrant,
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
            "alloc1g" => {
                let hog = vec![1u8; 1 << 30];
                std::hint::black_box(&hog);
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

    /// Entries for the `connect:` and `env` probes; `None` for the other modes.
    fn probe(&self) -> Option<Result<Vec<Entry>, Error>> {
        let entry = |key: String| Entry { key, size: 0, etag: None, last_modified: None };
        if let Some(addr) = self.mode.strip_prefix("connect:") {
            return Some(match std::net::TcpStream::connect(addr) {
                Ok(_) => Ok(vec![entry(format!("connected to {addr}"))]),
                Err(e) => Err(Error::Denied(format!("connect to {addr}: {e}"))),
            });
        }
        if let Some(addr) = self.mode.strip_prefix("read:") {
            // Connects, then waits for bytes that never come: a call blocked on the network.
            let mut stream = match std::net::TcpStream::connect(addr) {
                Ok(s) => s,
                Err(e) => return Some(Err(Error::Denied(format!("connect to {addr}: {e}")))),
            };
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stream, &mut buf);
            return Some(Ok(vec![entry(format!("read {} bytes", buf.len()))]));
        }
        if let Some(url) = self.mode.strip_prefix("http:") {
            return Some(http_get(url).map(|status| vec![entry(format!("HTTP {status} from {url}"))]));
        }
        if let Some(path) = self.mode.strip_prefix("file:") {
            return Some(match std::fs::read(path) {
                Ok(bytes) => Ok(vec![entry(format!("read {} bytes of {path}", bytes.len()))]),
                Err(e) => Err(Error::Denied(format!("read {path}: {e}"))),
            });
        }
        (self.mode == "env").then(|| Ok(std::env::vars().map(|(k, _)| entry(k)).collect()))
    }
}

/// `pages:N[:fail:K]`: page `i` (the cursor is its number) holds `p{i}.json`; page K fails.
fn pages(spec: &str, cursor: Option<String>) -> Result<Page, Error> {
    let bad = || Error::InvalidConfig(format!("pages:{spec}: want pages:N or pages:N:fail:K"));
    let mut parts = spec.split(':');
    let n: u32 = parts.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    let fail: Option<u32> = match (parts.next(), parts.next()) {
        (None, _) => None,
        (Some("fail"), Some(k)) => Some(k.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    };
    let page: u32 = cursor.map_or(Ok(0), |c| c.parse().map_err(|_| Error::InvalidConfig(format!("cursor {c}"))))?;
    if fail == Some(page) {
        return Err(Error::Denied(format!("misbehave: page {page} fails")));
    }
    let entries = if page < n {
        vec![Entry { key: format!("p{page}.json"), size: 2, etag: None, last_modified: None }]
    } else {
        vec![]
    };
    Ok(Page { entries, next_cursor: (page + 1 < n).then(|| (page + 1).to_string()), skipped: Vec::new() })
}

/// Sends `GET url` (`http://host[:port]/path`) and returns the status.
fn http_get(url: &str) -> Result<u16, Error> {
    let rest = url.strip_prefix("http://").ok_or_else(|| Error::InvalidConfig("http:// URLs only".into()))?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let request = stowage_sdk::http::Request {
        method: "GET",
        https: false,
        authority: authority.into(),
        path_and_query: path,
        headers: vec![],
        body: vec![],
    };
    stowage_sdk::http::send(&request).map(|r| r.status)
}

impl Backend for Misbehave {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            type_name: "misbehave".into(),
            title: "Misbehaving test adapter".into(),
            capabilities: Capabilities::READ,
            settings: vec![
                Setting {
                    name: "mode".into(),
                    kind: SettingKind::Text,
                    secret: false,
                    required: true,
                    default_value: None,
                    export_default_value: None,
                    env_fallback: None,
                    help: "trap, loop, alloc, alloc1g, big:N, pages:N[:fail:K], connect:ADDR, read:ADDR, http:URL, file:PATH, env or ok"
                        .into(),
                },
                Setting {
                    name: "host".into(),
                    kind: SettingKind::Text,
                    secret: false,
                    required: false,
                    default_value: None,
                    export_default_value: None,
                    env_fallback: None,
                    help: "the one host the adapter may connect to".into(),
                },
                Setting {
                    name: "port".into(),
                    kind: SettingKind::Text,
                    secret: false,
                    required: false,
                    default_value: None,
                    export_default_value: None,
                    env_fallback: None,
                    help: "the one port the adapter may connect to".into(),
                },
            ],
            grants: vec![GrantRequest::Tcp(TcpGrant {
                host_setting: "host".into(),
                port_setting: "port".into(),
                default_host: "127.0.0.1".into(),
                default_port: 1,
            })],
            regex_on_basename: false,
            key_value: false,
            uri_schemes: vec![],
        }
    }

    fn open(config: Config) -> Result<Self, Error> {
        Ok(Misbehave { mode: config.require("mode")?.to_string() })
    }

    fn list(&self, _prefix: &str, cursor: Option<String>, _page_size: u32, _recursive: bool) -> Result<Page, Error> {
        if let Some(spec) = self.mode.strip_prefix("pages:") {
            return pages(spec, cursor);
        }
        if let Some(entries) = self.probe() {
            return entries.map(|entries| Page { entries, next_cursor: None, skipped: Vec::new() });
        }
        self.misbehave();
        Ok(Page {
            entries: vec![Entry { key: "ok.json".into(), size: 2, etag: None, last_modified: None }],
            next_cursor: None,
            skipped: Vec::new(),
        })
    }

    fn get(&self, _key: &str, _range: Option<ByteRange>) -> Result<Object, Error> {
        self.misbehave();
        if let Some(mib) = self.mode.strip_prefix("big:").and_then(|n| n.parse::<usize>().ok()) {
            let body = vec![b' '; mib << 20];
            return Ok(Object {
                total_size: body.len() as u64,
                body,
                etag: None,
                content_type: None,
                last_modified: None,
            });
        }
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
