//! Typed configuration of a `redis` storage, parsed from the plain-text settings the host passes
//! to `open`. Field names are Label Studio's (`io_storages/redis/models.py`).

use std::fmt;

use stowage_sdk::{Config, Error};

/// Host used when `host` is empty (Label Studio: `host or 'localhost'`).
pub const DEFAULT_HOST: &str = "localhost";
/// Port used when `port` is empty (redis-py's default).
pub const DEFAULT_PORT: u16 = 6379;
/// Database used when `db` is unset: Label Studio's import default. (Its export default is 2;
/// the manifest has one default, and the host decides what an export storage shows.)
pub const DEFAULT_DB: i64 = 1;

/// The settings of one Redis storage.
#[derive(Clone, PartialEq)]
pub struct RedisConfig {
    /// `path`: key prefix. Import lists `SCAN MATCH {path}*`; export writes `{path}{annotation id}`.
    /// Kept exactly as given (a key prefix may end in any character); empty or unset: none, i.e.
    /// every key of the database.
    pub path: Option<String>,
    /// `host`: name or address of the server. Default [`DEFAULT_HOST`].
    pub host: String,
    /// `port` (a string in Label Studio): TCP port. Default [`DEFAULT_PORT`].
    pub port: u16,
    /// `password` (secret): sent with `AUTH` when set.
    pub password: Option<String>,
    /// `db`: logical database, selected with `SELECT` on every connection. Default [`DEFAULT_DB`];
    /// 0 is refused as Label Studio does.
    pub db: i64,
}

/// `Debug` never shows the password.
impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("path", &self.path)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("db", &self.db)
            .finish()
    }
}

/// A setting's value, trimmed; empty means unset (Label Studio sends `""` and `null` alike).
fn text<'a>(config: &'a Config, name: &str) -> Option<&'a str> {
    config.get(name).map(str::trim).filter(|v| !v.is_empty())
}

impl RedisConfig {
    /// Parses and validates the settings. No I/O.
    ///
    /// # Errors
    /// `invalid-config` for a malformed host, port or db. Database 0 (Redis's default database)
    /// is accepted: Label Studio refuses it only because it tests `db` for truth
    /// (`RedisStorageMixin.get_redis_connection`: "Please explicitly pass a redis db id..."), which
    /// leaves the one database most servers use out of reach.
    pub fn from_config(config: &Config) -> Result<RedisConfig, Error> {
        let path = config.get("path").filter(|p| !p.is_empty()).map(str::to_string);
        let host = text(config, "host").unwrap_or(DEFAULT_HOST);
        // Bracketed IPv6 literals (`[::1]`) are accepted, as in a URL.
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host).to_string();
        if host.contains(|c: char| c.is_whitespace() || "/@?#".contains(c)) {
            return Err(Error::InvalidConfig(format!("host {host:?} is not a host name or address")));
        }
        let port = match text(config, "port") {
            None => DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| Error::InvalidConfig(format!("port {p:?} is not a valid port number")))?,
        };
        // Label Studio sends no username: AUTH with the password alone (the `default` user).
        let password = config.get("password").filter(|p| !p.is_empty()).map(str::to_string);
        let db = match text(config, "db") {
            None => DEFAULT_DB,
            Some(d) => d
                .parse::<i64>()
                .ok()
                .filter(|d| *d >= 0)
                .ok_or_else(|| Error::InvalidConfig(format!("db {d:?} is not a database number")))?,
        };
        Ok(RedisConfig { path, host, port, password, db })
    }

    /// `host:port/db`, used to name the server in messages (never the password).
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}/{}", self.host, self.port, self.db)
        } else {
            format!("{}:{}/{}", self.host, self.port, self.db)
        }
    }

    /// The key an annotation is exported to: `{path}{id}` when `path` is set, else the bare id.
    pub fn export_key(&self, annotation_id: u64) -> String {
        match &self.path {
            Some(path) => format!("{path}{annotation_id}"),
            None => annotation_id.to_string(),
        }
    }

    /// Removes every occurrence of the password from a message built from server or library
    /// text, so it can be shown. (Redis does not echo passwords; this is a second line of defence.)
    pub fn scrub(&self, message: &str) -> String {
        match &self.password {
            Some(p) if !p.is_empty() => message.replace(p.as_str(), "<redacted>"),
            _ => message.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(settings: &[(&str, &str)], secrets: &[(&str, &str)]) -> Config {
        let own = |v: &[(&str, &str)]| v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config { settings: own(settings), secrets: own(secrets) }
    }

    fn parse(settings: &[(&str, &str)]) -> Result<RedisConfig, Error> {
        RedisConfig::from_config(&config(settings, &[]))
    }

    /// Nothing set: localhost:6379, db 1, no path, no password.
    #[test]
    fn defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c, RedisConfig { path: None, host: "localhost".into(), port: 6379, password: None, db: 1 });
        assert_eq!(c.server(), "localhost:6379/1");
    }

    /// Empty strings count as unset (Label Studio sends `""` and `null` alike).
    #[test]
    fn empty_values_are_unset() {
        let c = RedisConfig::from_config(&config(
            &[("path", ""), ("host", " "), ("port", ""), ("db", "")],
            &[("password", "")],
        ))
        .unwrap();
        assert_eq!((c.path, c.host.as_str(), c.port, c.password, c.db), (None, "localhost", 6379, None, 1));
    }

    /// `port` is a string in Label Studio; it must hold a port number.
    #[test]
    fn ports() {
        assert_eq!(parse(&[("port", " 6390 ")]).unwrap().port, 6390);
        for bad in ["0", "65536", "-1", "63 79", "redis", "6379.0"] {
            let Err(Error::InvalidConfig(m)) = parse(&[("port", bad)]) else { panic!("{bad}") };
            assert!(m.starts_with("port "), "{m}");
        }
    }

    /// db 0 is a database like any other (Label Studio refuses it); negative or non-numeric dbs
    /// are refused.
    #[test]
    fn databases() {
        assert_eq!(parse(&[("db", "0")]).unwrap().db, 0);
        assert_eq!(parse(&[("db", "2")]).unwrap().db, 2);
        assert_eq!(parse(&[("db", "15")]).unwrap().db, 15);
        for bad in ["-1", "one", "1.5"] {
            assert!(matches!(parse(&[("db", bad)]), Err(Error::InvalidConfig(_))), "{bad}");
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(parse(&[("host", "127.0.0.1")]).unwrap().server(), "127.0.0.1:6379/1");
        let v6 = parse(&[("host", "[::1]"), ("port", "6390")]).unwrap();
        assert_eq!((v6.host.as_str(), v6.server().as_str()), ("::1", "[::1]:6390/1"));
        for bad in ["a b", "user@host", "host/x", "redis://h"] {
            assert!(matches!(parse(&[("host", bad)]), Err(Error::InvalidConfig(_))), "{bad}");
        }
    }

    /// The path is a key prefix, kept as given (trailing `:` or spaces included).
    #[test]
    fn path_is_kept_verbatim() {
        assert_eq!(parse(&[("path", "tasks:")]).unwrap().path.as_deref(), Some("tasks:"));
        assert_eq!(parse(&[("path", "a b ")]).unwrap().path.as_deref(), Some("a b "));
    }

    /// Export keys: `{path}{id}` with a path (Label Studio ignores it and writes the bare id).
    #[test]
    fn export_keys() {
        assert_eq!(parse(&[("path", "ann:")]).unwrap().export_key(42), "ann:42");
        assert_eq!(parse(&[("path", "ann/")]).unwrap().export_key(7), "ann/7");
        assert_eq!(parse(&[]).unwrap().export_key(7), "7");
    }

    /// Neither `Debug` nor the server name shows the password, and `scrub` removes it.
    #[test]
    fn password_never_shown() {
        let c = RedisConfig::from_config(&config(&[("host", "h")], &[("password", "hunter2-secret")])).unwrap();
        assert_eq!(c.password.as_deref(), Some("hunter2-secret"));
        let shown = format!("{c:?} {}", c.server());
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert_eq!(c.scrub("ERR bad hunter2-secret!"), "ERR bad <redacted>!");
    }
}
