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
                let root = root.canonicalize().map_err(|_| refuse("The server's document root does not exist".into()))?;
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

    fn localfs() -> AdapterInfo {
        AdapterInfo {
            type_name: "localfiles".into(),
            title: "Local files".into(),
            capabilities: Capabilities::default(),
            settings: vec![],
            grants: vec![GrantRequest::Directory("path".into())],
            regex_on_basename: true,
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
