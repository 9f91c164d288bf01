//! What one storage's adapter instance may reach: the manifest's requests, resolved against the
//! storage's settings and the operator's policy. Empty by default: no directories, no network,
//! no environment.

use std::path::{Path, PathBuf};

use crate::domain::{AdapterInfo, Direction, GrantRequest};

/// The sandbox of one storage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Host directory preopened at `/storage`, and whether the adapter may write to it.
    pub directory: Option<(PathBuf, bool)>,
    /// Hosts the adapter may send HTTP requests to; empty means no HTTP at all.
    pub http_hosts: Vec<HostRule>,
    /// The one host and port the adapter may open TCP connections to, if any.
    pub tcp: Option<(String, u16)>,
    /// Operator policy: whether connections may go to loopback, private, link-local and other
    /// reserved addresses (`stowage serve --allow-private-addresses`). Off by default.
    pub allow_private_addresses: bool,
}

/// One host an adapter may reach over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    /// This host name (lowercase) on this port.
    Exact { host: String, port: u16 },
    /// Any subdomain of this suffix (from `*.amazonaws.com`), any port.
    Suffix(String),
    /// This host name on any port (an operator pattern without a port).
    Name(String),
}

impl HostRule {
    /// Whether a request to `host:port` is within this rule (host names compare case-insensitively,
    /// without a trailing dot; a suffix rule never matches the bare suffix).
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match self {
            HostRule::Exact { host: h, port: p } => *h == host && *p == port,
            HostRule::Suffix(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            HostRule::Name(h) => *h == host,
        }
    }

    /// Parses an operator pattern (`--allowed-hosts`): `*.example.com`, `host` or `host:port`.
    ///
    /// # Errors
    /// A pattern that is empty or has a bad port.
    pub fn pattern(raw: &str) -> Result<HostRule, String> {
        let raw = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        let bad = || format!("{raw:?} is not a host pattern (host, host:port, [ipv6]:port or *.domain)");
        let valid = |h: &str| !h.is_empty() && !h.contains(['/', '*', ' ', '@', '[', ']', '?', '#']);
        if let Some(suffix) = raw.strip_prefix("*.") {
            return if valid(suffix) && !suffix.contains(':') {
                Ok(HostRule::Suffix(suffix.to_string()))
            } else {
                Err(bad())
            };
        }
        // `[v6]:port`, `[v6]`, a bare IPv6 address (several colons, no port), `host:port`, `host`.
        let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
            let (h, after) = rest.split_once(']').ok_or_else(bad)?;
            (h.to_string(), after.strip_prefix(':'))
        } else if raw.matches(':').count() > 1 {
            (raw.clone(), None)
        } else {
            match raw.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (raw.clone(), None),
            }
        };
        if !valid(&host) {
            return Err(bad());
        }
        match port {
            None => Ok(HostRule::Name(host)),
            Some(p) => Ok(HostRule::Exact { host, port: p.parse::<u16>().map_err(|_| format!("{raw}: bad port"))? }),
        }
    }

    /// The part of this rule that `other` also allows, if any (both may be patterns).
    fn intersect(&self, other: &HostRule) -> Option<HostRule> {
        use HostRule::{Exact, Name, Suffix};
        let within = |narrow: &str, wide: &str| narrow == wide || narrow.ends_with(&format!(".{wide}"));
        match (self, other) {
            (Exact { host, port }, o) | (o, Exact { host, port }) => {
                o.allows(host, *port).then(|| Exact { host: host.clone(), port: *port })
            }
            (Name(h), o) | (o, Name(h)) => match o {
                Suffix(_) | Name(_) => (o.allows(h, 0)).then(|| Name(h.clone())),
                Exact { .. } => unreachable!("matched above"),
            },
            (Suffix(a), Suffix(b)) if within(a, b) => Some(Suffix(a.clone())),
            (Suffix(a), Suffix(b)) if within(b, a) => Some(Suffix(b.clone())),
            (Suffix(_), Suffix(_)) => None,
        }
    }
}

/// Narrows `grant` to the hosts the operator allows (`--allowed-hosts`; empty allows every host
/// a grant names): what the manifest asks for, intersected with the operator's policy.
///
/// # Errors
/// The storage's endpoint or host is outside the policy (named on the setting that chose it), or
/// nothing of the adapter's default hosts is left.
pub fn restrict(grant: &mut Grant, info: &AdapterInfo, allowed: &[HostRule]) -> Result<(), GrantRefused> {
    if allowed.is_empty() {
        return Ok(());
    }
    let refuse = |field: &str, what: &str| GrantRefused {
        field: field.to_string(),
        message: format!("{what} is not among the hosts the operator allows (--allowed-hosts)"),
    };
    let refuse_all = |field: &str| GrantRefused {
        field: field.to_string(),
        message: format!("the operator allows none of the hosts {} storages reach (--allowed-hosts)", info.type_name),
    };
    for request in &info.grants {
        match request {
            GrantRequest::Http { endpoint_setting, .. } => {
                let asked = std::mem::take(&mut grant.http_hosts);
                let kept: Vec<HostRule> =
                    asked.iter().flat_map(|r| allowed.iter().filter_map(move |a| r.intersect(a))).collect();
                if kept.is_empty() && !asked.is_empty() {
                    return Err(match &asked[..] {
                        [HostRule::Exact { host, port }] => refuse(endpoint_setting, &format!("{host}:{port}")),
                        _ => refuse_all(endpoint_setting),
                    });
                }
                grant.http_hosts = kept;
            }
            GrantRequest::Tcp { host_setting, .. } => {
                if let Some((host, port)) = &grant.tcp
                    && !allowed.iter().any(|a| a.allows(host, *port))
                {
                    return Err(refuse(host_setting, &format!("{host}:{port}")));
                }
            }
            GrantRequest::Directory(_) => {}
        }
    }
    Ok(())
}

/// Parses an endpoint setting: an `http://` or `https://` URL with a host.
pub fn endpoint_rule(raw: &str) -> Result<HostRule, String> {
    let url = url::Url::parse(raw.trim()).map_err(|_| format!("{raw} is not a valid URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{raw}: only http:// and https:// endpoints are allowed"));
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| format!("{raw} has no host"))?;
    let port = url.port_or_known_default().unwrap_or(443);
    Ok(HostRule::Exact { host: host.trim_matches(['[', ']']).to_ascii_lowercase(), port })
}

/// Why a grant was refused; the message is shown to the user as a validation error on `field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRefused {
    pub field: String,
    pub message: String,
}

/// Resolves `info.grants` for a storage whose settings are `setting(name)`.
///
/// A directory must be an absolute path strictly under `document_root` (Label Studio's rule,
/// `localfiles/models.py::validate_connection`), checked after resolving symlinks so a link cannot
/// lead out. Write access only for export storages.
///
/// Returns the grant and, per directory setting, the path relative to the document root, which the
/// adapter receives instead of the host path.
pub fn resolve(
    info: &AdapterInfo,
    direction: Direction,
    document_root: Option<&Path>,
    setting: impl Fn(&str) -> Option<String>,
) -> Result<(Grant, Vec<(String, String)>), GrantRefused> {
    let mut grant = Grant::default();
    let mut rewritten = Vec::new();
    for request in &info.grants {
        match request {
            GrantRequest::Directory(field) => {
                let refuse = |message: String| GrantRefused { field: field.clone(), message };
                let Some(root) = document_root else {
                    return Err(refuse(
                        "Local files storage is disabled: the server has no document root (stowage serve --document-root)".into(),
                    ));
                };
                let raw = setting(field).unwrap_or_default();
                if raw.trim().is_empty() {
                    return Err(refuse("Path must be set for Local Files storage".into()));
                }
                let outside = || {
                    refuse(format!(
                        "Path {raw} must start with the document root {} and must be a child, e.g.: {}/abc",
                        root.display(),
                        root.display()
                    ))
                };
                let requested = Path::new(raw.trim());
                if !requested.is_absolute() {
                    return Err(outside());
                }
                let root =
                    root.canonicalize().map_err(|_| refuse("The server's document root does not exist".into()))?;
                let dir = requested.canonicalize().map_err(|_| refuse(format!("Path {raw} does not exist")))?;
                let relative = match dir.strip_prefix(&root) {
                    Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
                    _ => return Err(outside()),
                };
                if !dir.is_dir() {
                    return Err(refuse(format!("Path {raw} is not a directory")));
                }
                grant.directory = Some((dir, direction == Direction::Export));
                rewritten.push((field.clone(), relative));
            }
            GrantRequest::Http { endpoint_setting, default_hosts } => match setting(endpoint_setting)
                .filter(|v| !v.trim().is_empty())
            {
                Some(endpoint) => {
                    let rule = endpoint_rule(&endpoint)
                        .map_err(|message| GrantRefused { field: endpoint_setting.clone(), message })?;
                    grant.http_hosts.push(rule);
                }
                None => grant.http_hosts.extend(default_hosts.iter().map(|pattern| match pattern.strip_prefix("*.") {
                    Some(suffix) => HostRule::Suffix(suffix.to_ascii_lowercase()),
                    None => HostRule::Exact { host: pattern.to_ascii_lowercase(), port: 443 },
                })),
            },
            GrantRequest::Tcp { host_setting, port_setting, default_host, default_port } => {
                let host = setting(host_setting).map(|h| h.trim().to_string()).filter(|h| !h.is_empty());
                let host = host.unwrap_or_else(|| default_host.clone());
                if host.contains(['/', ' ', '@', '?', '#']) {
                    return Err(GrantRefused {
                        field: host_setting.clone(),
                        message: format!("{host} is not a host name or address"),
                    });
                }
                let port = match setting(port_setting).map(|p| p.trim().to_string()).filter(|p| !p.is_empty()) {
                    None => *default_port,
                    Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| GrantRefused {
                        field: port_setting.clone(),
                        message: format!("{p} is not a valid port"),
                    })?,
                };
                grant.tcp = Some((host.trim_matches(['[', ']']).to_ascii_lowercase(), port));
            }
        }
    }
    Ok((grant, rewritten))
}

/// Lexical normalisation of a directory setting, as Label Studio stores local-files paths
/// (`os.path.normpath`, `\\` to `/`, no trailing `/`: `localfiles/functions.py`).
pub fn normalize_directory(raw: &str) -> String {
    let raw = raw.trim().replace('\\', "/");
    let absolute = raw.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn directories_are_normalised_like_python_normpath() {
        use super::normalize_directory as n;
        assert_eq!(n("/data/images/"), "/data/images");
        assert_eq!(n("/data//a/./b/../c"), "/data/a/c");
        assert_eq!(n("/.."), "/");
        assert_eq!(n("a/../.."), "..");
        assert_eq!(n("\\data\\x"), "/data/x");
    }

    use super::*;
    use crate::domain::Capabilities;

    #[test]
    fn operator_patterns_narrow_grants() {
        let p = |s: &str| HostRule::pattern(s).unwrap();
        assert_eq!(p("*.Example.com"), HostRule::Suffix("example.com".into()));
        assert_eq!(p("minio.local:9000"), HostRule::Exact { host: "minio.local".into(), port: 9000 });
        assert_eq!(p("[::1]:80"), HostRule::Exact { host: "::1".into(), port: 80 });
        assert_eq!(p("storage.googleapis.com"), HostRule::Name("storage.googleapis.com".into()));
        assert_eq!(p("fd00:1:2:3:4:5:6:7"), HostRule::Name("fd00:1:2:3:4:5:6:7".into()));
        assert_eq!(p("[fd00::1]"), HostRule::Name("fd00::1".into()));
        for bad in ["a b", "h:x", "*.", "*.a/b", "", "[::1"] {
            assert!(HostRule::pattern(bad).is_err(), "{bad:?}");
        }

        let s3 = AdapterInfo {
            type_name: "s3".into(),
            title: "S3".into(),
            capabilities: Capabilities::default(),
            settings: vec![],
            grants: vec![GrantRequest::Http {
                endpoint_setting: "s3_endpoint".into(),
                default_hosts: vec!["*.amazonaws.com".into()],
            }],
            regex_on_basename: false,
            key_value: false,
            uri_schemes: vec![],
        };
        let aws = || Grant { http_hosts: vec![HostRule::Suffix("amazonaws.com".into())], ..Grant::default() };
        // A narrower suffix or a single host of the default set is what remains.
        let mut g = aws();
        restrict(&mut g, &s3, &[p("*.s3.eu-west-1.amazonaws.com"), p("*.example.com")]).unwrap();
        assert_eq!(g.http_hosts, [HostRule::Suffix("s3.eu-west-1.amazonaws.com".into())]);
        let mut g = aws();
        restrict(&mut g, &s3, &[p("bucket.s3.amazonaws.com:443")]).unwrap();
        assert_eq!(g.http_hosts, [HostRule::Exact { host: "bucket.s3.amazonaws.com".into(), port: 443 }]);
        // A wider suffix keeps the request; nothing allowed refuses it.
        let mut g = aws();
        restrict(&mut g, &s3, &[p("*.com")]).unwrap();
        assert_eq!(g.http_hosts, [HostRule::Suffix("amazonaws.com".into())]);
        let mut g = aws();
        let refused = restrict(&mut g, &s3, &[p("*.example.com")]).unwrap_err();
        assert_eq!(refused.field, "s3_endpoint");
        assert_eq!(refused.message, "the operator allows none of the hosts s3 storages reach (--allowed-hosts)");
        // An endpoint the user typed: kept when allowed, refused by name otherwise.
        let minio = || Grant {
            http_hosts: vec![HostRule::Exact { host: "minio.local".into(), port: 9000 }],
            ..Grant::default()
        };
        let mut g = minio();
        restrict(&mut g, &s3, &[p("minio.local")]).unwrap();
        assert_eq!(g, minio());
        let refused = restrict(&mut minio(), &s3, &[p("minio.local:9001")]).unwrap_err();
        assert_eq!(refused.message, "minio.local:9000 is not among the hosts the operator allows (--allowed-hosts)");
        // No policy: unchanged.
        let mut g = aws();
        restrict(&mut g, &s3, &[]).unwrap();
        assert_eq!(g, aws());
    }

    fn localfs() -> AdapterInfo {
        AdapterInfo {
            type_name: "localfiles".into(),
            title: "Local files".into(),
            capabilities: Capabilities::default(),
            settings: vec![],
            grants: vec![GrantRequest::Directory("path".into())],
            regex_on_basename: true,
            key_value: false,
            uri_schemes: vec![],
        }
    }

    #[test]
    fn http_grant_is_the_endpoint_host_or_the_default_patterns() {
        let info = AdapterInfo {
            grants: vec![GrantRequest::Http {
                endpoint_setting: "s3_endpoint".into(),
                default_hosts: vec!["*.amazonaws.com".into()],
            }],
            ..localfs()
        };
        let grant = |endpoint: Option<&str>| {
            let e = endpoint.map(str::to_owned);
            resolve(&info, Direction::Import, None, move |_| e.clone()).map(|(g, _)| g.http_hosts)
        };
        let hosts = grant(Some("http://Minio.local:9000/")).unwrap();
        assert_eq!(hosts, vec![HostRule::Exact { host: "minio.local".into(), port: 9000 }]);
        assert!(hosts[0].allows("minio.local", 9000));
        assert!(!hosts[0].allows("minio.local", 9001));
        assert!(!hosts[0].allows("evil.local", 9000));
        let hosts = grant(None).unwrap();
        assert!(hosts[0].allows("bucket.s3.us-east-1.amazonaws.com", 443));
        assert!(!hosts[0].allows("amazonaws.com", 443));
        assert!(!hosts[0].allows("amazonaws.com.evil.io", 443));
        for bad in ["file:///etc/passwd", "gopher://x", "not a url"] {
            assert_eq!(grant(Some(bad)).unwrap_err().field, "s3_endpoint", "{bad}");
        }
    }

    #[test]
    fn directory_must_be_strictly_under_the_document_root() {
        let tmp = std::env::temp_dir().join(format!("stowage-grants-{}", std::process::id()));
        let root = tmp.join("root");
        std::fs::create_dir_all(root.join("ds")).unwrap();
        std::fs::create_dir_all(tmp.join("outside")).unwrap();
        std::os::unix::fs::symlink(tmp.join("outside"), root.join("link-out")).unwrap_or(());
        let info = localfs();
        let ask = |p: &str| {
            let p = p.to_string();
            resolve(&info, Direction::Import, Some(&root), move |_| Some(p.clone()))
        };

        let (grant, rewritten) = ask(root.join("ds").to_str().unwrap()).unwrap();
        assert_eq!(grant.directory, Some((root.join("ds").canonicalize().unwrap(), false)));
        assert_eq!(rewritten, vec![("path".to_string(), "ds".to_string())]);

        for bad in [root.clone(), tmp.join("outside"), root.join("link-out"), root.join("ds/../..")] {
            let err = ask(bad.to_str().unwrap()).unwrap_err();
            assert_eq!(err.field, "path");
            assert!(err.message.contains("must be a child"), "{bad:?}: {}", err.message);
        }
        assert_eq!(ask("ds").unwrap_err().field, "path");
        assert!(ask(root.join("nope").to_str().unwrap()).unwrap_err().message.ends_with("does not exist"));
        let none = resolve(&info, Direction::Import, None, |_| Some("/x".into())).unwrap_err();
        assert!(none.message.contains("no document root"));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
