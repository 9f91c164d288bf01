#![doc = include_str!("../docs.md")]
//!
//! Modules: [`config`] (settings), [`error`] (redis errors → error kinds), [`keys`] (SCAN patterns
//! and listing cursors).

pub mod config;
pub mod error;
pub mod keys;

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::Duration;

use redis::{Connection, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, RedisResult};
use stowage_sdk::{
    AdapterInfo, Backend, ByteRange, Capabilities, Config, Direction, Entry, Error, GrantRequest, Object, Page,
    Setting, SettingKind, TcpGrant,
};

use crate::config::{DEFAULT_DB, DEFAULT_HOST, DEFAULT_PORT, RedisConfig};
use crate::error::{CANNOT_CONNECT, breaks_connection, into_error, refused_by_sandbox};
use crate::keys::{ListCursor, scan_pattern};

/// Storage type name, as in `/api/storages/redis/`.
pub const TYPE_NAME: &str = "redis";

/// Largest `COUNT` hint sent with `SCAN`.
const MAX_SCAN_COUNT: usize = 10_000;

/// Most `SCAN` calls one `list` makes while filling a page. A `MATCH` that few keys satisfy gives
/// many empty batches; past this many, the page is returned as it is (possibly empty) with the
/// cursor, so one call stays short.
const MAX_SCANS_PER_PAGE: usize = 64;

/// Keys per `DEL` command.
const DELETE_BATCH: usize = 1000;

/// Read and write timeout of a connection (the host's per-call deadline is the real bound).
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A `redis` storage. The connection is opened on first use and kept for the instance's life;
/// any I/O or protocol error drops it, and the next call reconnects (AUTH, SELECT). Nothing else
/// is kept between calls.
pub struct Redis {
    config: RedisConfig,
    conn: RefCell<Option<Connection>>,
}

fn setting(name: &str, kind: SettingKind, secret: bool, default: Option<&str>, help: &str) -> Setting {
    Setting {
        name: name.into(),
        kind,
        secret,
        required: false,
        default_value: default.map(str::to_string),
        export_default_value: None,
        env_fallback: None,
        help: help.into(),
    }
}

/// The type of a non-string value, as `{key}: is a {type}, not a string value`.
fn not_a_string(key: &str, type_name: &str) -> Error {
    Error::InvalidConfig(format!("{key}: is a {type_name}, not a string value"))
}

fn is_wrong_type(e: &redis::RedisError) -> bool {
    e.code() == Some("WRONGTYPE")
}

impl Redis {
    /// Opens a connection: TCP through `wasi:sockets`, then AUTH (when a password is set) and
    /// SELECT db. Built from the connection-info structs, so the password is in no URL.
    fn connect(&self) -> RedisResult<Connection> {
        let mut settings = RedisConnectionInfo::default().set_db(self.config.db).set_skip_set_lib_name();
        if let Some(password) = &self.config.password {
            settings = settings.set_password(password);
        }
        let info = ConnectionAddr::Tcp(self.config.host.clone(), self.config.port)
            .into_connection_info()?
            .set_redis_settings(settings);
        let conn = redis::Client::open(info)?.get_connection()?;
        // Not every platform has socket timeouts; without them the host's deadline still applies.
        let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
        let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
        Ok(conn)
    }

    /// Runs `f` on the cached connection (opening it first if needed). An error that may leave
    /// the connection broken drops it.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> RedisResult<T>) -> RedisResult<T> {
        let mut slot = self.conn.borrow_mut();
        let conn = match slot.as_mut() {
            Some(conn) => conn,
            None => slot.insert(self.connect()?),
        };
        let result = f(conn);
        if let Err(e) = &result
            && breaks_connection(e)
        {
            *slot = None;
        }
        result
    }

    fn fail(&self, e: &redis::RedisError, what: &str) -> Error {
        into_error(&self.config, e, what)
    }

    /// `TYPE key`.
    fn type_of(&self, key: &str) -> Result<String, Error> {
        self.with_conn(|c| redis::cmd("TYPE").arg(key).query::<String>(c)).map_err(|e| self.fail(&e, key))
    }
}

impl Backend for Redis {
    fn describe() -> AdapterInfo {
        let port = DEFAULT_PORT.to_string();
        let db = DEFAULT_DB.to_string();
        AdapterInfo {
            type_name: TYPE_NAME.into(),
            title: "Redis".into(),
            capabilities: Capabilities::READ | Capabilities::WRITE | Capabilities::DELETE,
            settings: vec![
                setting(
                    "path",
                    SettingKind::Text,
                    false,
                    None,
                    "Key prefix: import reads the keys starting with it, export writes {path}{annotation id}",
                ),
                setting(
                    "host",
                    SettingKind::Text,
                    false,
                    None,
                    "Redis server host name or address (default localhost)",
                ),
                setting("port", SettingKind::Text, false, None, "Redis server port (default 6379)"),
                setting("password", SettingKind::Text, true, None, "Password (AUTH); empty when the server has none"),
                Setting {
                    export_default_value: Some("2".into()),
                    ..setting(
                        "db",
                        SettingKind::Integer,
                        false,
                        Some(&db),
                        "Database number, 1 or more (Label Studio's defaults: 1 for import, 2 for export)",
                    )
                },
            ],
            grants: vec![GrantRequest::Tcp(TcpGrant {
                host_setting: "host".into(),
                port_setting: "port".into(),
                default_host: DEFAULT_HOST.into(),
                default_port: port.parse().expect("default port"),
            })],
            regex_on_basename: false,
            key_value: true,
            uri_schemes: vec![],
        }
    }

    fn open(config: Config) -> Result<Self, Error> {
        Ok(Redis { config: RedisConfig::from_config(&config)?, conn: RefCell::new(None) })
    }

    /// Label Studio's check: connect (AUTH, SELECT) and PING; any failure is
    /// "Can't connect to Redis server." (with the reason when the sandbox refused the address).
    /// An import storage may be empty, as in Label Studio.
    fn check(&self, _direction: Direction) -> Result<(), Error> {
        // A fresh connection, so the check proves the current settings and server.
        self.conn.borrow_mut().take();
        match self.with_conn(|c| redis::cmd("PING").query::<String>(c)) {
            Ok(_) => Ok(()),
            Err(e) if refused_by_sandbox(&e) => Err(Error::Denied(format!(
                "{CANNOT_CONNECT} The stowage host refused the connection to {}:{} (address policy).",
                self.config.host, self.config.port
            ))),
            Err(_) => Err(Error::Denied(CANNOT_CONNECT.into())),
        }
    }

    /// `SCAN cursor MATCH {path}{prefix}* COUNT page_size`, repeated until the page is full, the
    /// iteration ends, or [`MAX_SCANS_PER_PAGE`] calls; keys a batch returns beyond the page go
    /// into the cursor. Sizes come from one pipelined `STRLEN` per key. Keys whose value is
    /// empty (or that vanished since SCAN) are left out, so they are retried next sync; keys of
    /// other types are listed with size 0 so that `get` reports them. Keys that are not UTF-8
    /// cannot be named over the WIT interface and are skipped. `recursive` is ignored (keys
    /// have no folders). Order is SCAN's (sorted within a page), not global.
    fn list(&self, prefix: &str, cursor: Option<String>, page_size: u32, _recursive: bool) -> Result<Page, Error> {
        let page_size = (page_size as usize).max(1);
        let count = page_size.min(MAX_SCAN_COUNT);
        let pattern = scan_pattern(self.config.path.as_deref().unwrap_or(""), prefix);
        let (mut scan, mut keys, mut started) = match cursor {
            None => ("0".to_string(), Vec::new(), false),
            Some(c) => {
                let c = ListCursor::decode(&c)?;
                (c.scan, c.pending, true)
            }
        };
        let mut seen: HashSet<String> = keys.iter().cloned().collect();
        let mut scans = 0;
        while keys.len() < page_size && !(started && scan == "0") && scans < MAX_SCANS_PER_PAGE {
            let (next, batch): (String, Vec<Vec<u8>>) = self
                .with_conn(|c| {
                    redis::cmd("SCAN").arg(&scan).arg("MATCH").arg(&pattern).arg("COUNT").arg(count).query(c)
                })
                .map_err(|e| self.fail(&e, "SCAN"))?;
            started = true;
            scans += 1;
            scan = next;
            for key in batch.into_iter().filter_map(|k| String::from_utf8(k).ok()) {
                if seen.insert(key.clone()) {
                    keys.push(key);
                }
            }
        }
        let pending = if keys.len() > page_size { keys.split_off(page_size) } else { Vec::new() };

        let mut entries = Vec::with_capacity(keys.len());
        if !keys.is_empty() {
            let sizes: Vec<RedisResult<u64>> = self
                .with_conn(|c| {
                    let mut pipe = redis::pipe();
                    for key in &keys {
                        pipe.cmd("STRLEN").arg(key);
                    }
                    pipe.ignore_errors().query(c)
                })
                .map_err(|e| self.fail(&e, "STRLEN"))?;
            for (key, size) in keys.into_iter().zip(sizes) {
                match size {
                    Ok(0) => {}
                    Ok(size) => entries.push(Entry { key, size, etag: None, last_modified: None }),
                    Err(e) if is_wrong_type(&e) => {
                        entries.push(Entry { key, size: 0, etag: None, last_modified: None })
                    }
                    Err(e) => return Err(self.fail(&e, &key)),
                }
            }
            entries.sort_by(|a, b| a.key.cmp(&b.key));
        }
        let done = started && scan == "0" && pending.is_empty();
        let next_cursor = (!done).then(|| ListCursor { scan, pending }.encode());
        Ok(Page { entries, next_cursor, skipped: Vec::new() })
    }

    fn stat(&self, key: &str) -> Result<Entry, Error> {
        let (type_name, size): (String, RedisResult<u64>) = self
            .with_conn(|c| {
                let results: Vec<RedisResult<redis::Value>> =
                    redis::pipe().cmd("TYPE").arg(key).cmd("STRLEN").arg(key).ignore_errors().query(c)?;
                let mut results = results.into_iter();
                let type_name: String = redis::from_redis_value(results.next().expect("two replies")?)?;
                let size = results.next().expect("two replies").and_then(|v| Ok(redis::from_redis_value(v)?));
                Ok((type_name, size))
            })
            .map_err(|e| self.fail(&e, key))?;
        match type_name.as_str() {
            "none" => Err(Error::NotFound(format!("{key}: no such key"))),
            "string" => {
                let size = size.map_err(|e| self.fail(&e, key))?;
                Ok(Entry { key: key.to_string(), size, etag: None, last_modified: None })
            }
            other => Err(not_a_string(key, other)),
        }
    }

    /// GET (a WRONGTYPE reply is followed by TYPE to name the value's type); the range is cut
    /// from the value.
    fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Object, Error> {
        let value = self.with_conn(|c| redis::cmd("GET").arg(key).query::<Option<Vec<u8>>>(c));
        let mut body = match value {
            Ok(Some(body)) => body,
            Ok(None) => return Err(Error::NotFound(format!("{key}: no such key"))),
            Err(e) if is_wrong_type(&e) => return Err(not_a_string(key, &self.type_of(key)?)),
            Err(e) => return Err(self.fail(&e, key)),
        };
        let total_size = body.len() as u64;
        if let Some(r) = range {
            let start = r.start.min(total_size) as usize;
            let end = r.end.map_or(total_size, |e| e.saturating_add(1).min(total_size)) as usize;
            body = body[start..end.max(start)].to_vec();
        }
        Ok(Object { body, total_size, etag: None, content_type: None, last_modified: None })
    }

    /// SET (the content type is not stored: Redis values have none).
    fn put(&self, key: &str, body: Vec<u8>, _content_type: Option<String>) -> Result<(), Error> {
        self.with_conn(|c| redis::cmd("SET").arg(key).arg(body).query::<()>(c)).map_err(|e| self.fail(&e, key))
    }

    /// DEL, 1000 keys per command; missing keys are not an error.
    fn delete(&self, keys: Vec<String>) -> Result<(), Error> {
        for chunk in keys.chunks(DELETE_BATCH) {
            self.with_conn(|c| redis::cmd("DEL").arg(chunk).query::<u64>(c)).map_err(|e| self.fail(&e, "DEL"))?;
        }
        Ok(())
    }

    /// Label Studio has no Redis URIs (`can_resolve_url` is false). Blob mode is not meaningful
    /// for Redis; should a task be made in it anyway, it holds `redis:{key}`, which nothing resolves.
    fn blob_uri(&self, key: &str) -> String {
        format!("redis:{key}")
    }

    /// `{path}{annotation_id}` when `path` is set, else the bare id (Label Studio always writes
    /// the bare id).
    fn export_key(&self, annotation_id: u64) -> String {
        self.config.export_key(annotation_id)
    }
}

#[cfg(target_arch = "wasm32")]
stowage_sdk::export_adapter!(Redis);

#[cfg(test)]
mod tests {
    use super::*;

    fn open(settings: &[(&str, &str)], secrets: &[(&str, &str)]) -> Result<Redis, Error> {
        let own = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Redis::open(Config { settings: own(settings), secrets: own(secrets) })
    }

    #[test]
    fn describe_matches_label_studio() {
        let info = Redis::describe();
        assert_eq!((info.type_name.as_str(), info.title.as_str()), ("redis", "Redis"));
        assert_eq!(info.capabilities, Capabilities::READ | Capabilities::WRITE | Capabilities::DELETE);
        let names: Vec<&str> = info.settings.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["path", "host", "port", "password", "db"]);
        let secret: Vec<&str> = info.settings.iter().filter(|s| s.secret).map(|s| s.name.as_str()).collect();
        assert_eq!(secret, ["password"]);
        let db = info.settings.iter().find(|s| s.name == "db").unwrap();
        assert!(matches!(db.kind, SettingKind::Integer));
        assert_eq!(db.default_value.as_deref(), Some("1"));
        assert_eq!(db.export_default_value.as_deref(), Some("2"));
        let port = info.settings.iter().find(|s| s.name == "port").unwrap();
        assert!(matches!(port.kind, SettingKind::Text), "Label Studio stores the port as a string");
        assert!(info.settings.iter().all(|s| !s.help.is_empty() && !s.required));
        assert!(info.uri_schemes.is_empty());
        assert!(!info.regex_on_basename);
        let [GrantRequest::Tcp(tcp)] = info.grants.as_slice() else { panic!("one tcp grant") };
        assert_eq!(
            (tcp.host_setting.as_str(), tcp.port_setting.as_str(), tcp.default_host.as_str(), tcp.default_port),
            ("host", "port", "localhost", 6379)
        );
    }

    #[test]
    fn db_zero_opens() {
        assert!(open(&[("db", "0")], &[]).is_ok());
    }

    #[test]
    fn keys_and_uris() {
        let r = open(&[("path", "tasks:")], &[]).unwrap();
        assert_eq!(r.export_key(12), "tasks:12");
        assert_eq!(r.blob_uri("tasks:1"), "redis:tasks:1");
        assert_eq!(r.key_of_uri("redis:tasks:1"), None);
        assert_eq!(open(&[], &[]).unwrap().export_key(12), "12");
    }

    /// Natively there is no server on a reserved port: the check gives Label Studio's message
    /// and nothing else (no password, no address detail).
    #[test]
    fn check_failure_is_label_studios_message() {
        let r = open(&[("host", "127.0.0.1"), ("port", "1")], &[("password", "pw-never-shown")]).unwrap();
        let Err(Error::Denied(m)) = r.check(Direction::Import) else { panic!() };
        assert_eq!(m, CANNOT_CONNECT);
        let Err(e) = r.get("k", None) else { panic!() };
        let text = format!("{e:?}");
        assert!(text.contains("127.0.0.1:1/1") && !text.contains("pw-never-shown"), "{text}");
        assert!(matches!(e, Error::Transient(_)), "{e:?}");
    }
}
