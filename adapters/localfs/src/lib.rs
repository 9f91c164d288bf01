//! `localfiles` storage: a directory on the stowage server, Label Studio's "Local files".
//!
//! The host preopens the storage's directory at [`ROOT`] (read-only for an import storage,
//! read-write for an export storage) and passes `path` as that directory's path relative to the
//! document root, which is what blob-mode URIs carry. The adapter sees nothing else of the host
//! filesystem: `..`, absolute paths and symlinks pointing out are refused by WASI itself.

mod entries;
mod walk;

use std::cell::RefCell;
use std::fs;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use stowage_sdk::{
    AdapterInfo, Backend, ByteRange, Capabilities, Config, Direction, Entry, Error, GrantRequest, Object, Page,
    Setting, SettingKind,
};

/// Where the host mounts the storage directory inside the sandbox.
const ROOT: &str = "/storage";

/// Python's `urllib.parse.quote(path)` keeps ASCII letters, digits, `_.-~` and `/`;
/// Label Studio quotes local-files URLs with it (`localfiles/models.py`).
const QUOTE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~').remove(b'/');

struct LocalFiles {
    /// The directory relative to the document root, `/`-separated, no leading or trailing `/`.
    relative_path: String,
    /// Where the storage directory is: [`ROOT`] (another directory in native tests).
    root: PathBuf,
    /// Where the last listing page ended, to go on from there when the next call passes its
    /// cursor. Only a shortcut: a cursor alone gives the same page.
    last_walk: RefCell<Option<LastWalk>>,
}

/// A listing's position after the page whose last key is `cursor`.
struct LastWalk {
    key_prefix: String,
    recursive: bool,
    cursor: String,
    walk: walk::Walk,
}

/// Only the failures that can pass by themselves are `transient` (the host retries those for up
/// to 180 s); a directory where a file belongs, a name the filesystem refuses or a full disk will
/// not, so they fail the one object at once. The WIT has no "permanent, other" case:
/// `invalid-config` (the directory's contents do not fit the storage) is the nearest.
fn io_error(key: &str, e: std::io::Error) -> Error {
    match e.kind() {
        ErrorKind::NotFound => Error::NotFound(format!("{key}: no such file")),
        ErrorKind::PermissionDenied => Error::Denied(format!("{key}: outside the storage directory")),
        ErrorKind::ReadOnlyFilesystem => Error::Denied(format!("{key}: {e}")),
        ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::ResourceBusy => {
            Error::Transient(format!("{key}: {e}"))
        }
        _ => Error::InvalidConfig(format!("{key}: {e}")),
    }
}

/// Maps a key to its path in the sandbox. Absolute keys and `..` are refused here for a clear
/// message; the WASI preopen would refuse them anyway.
fn resolve(root: &Path, key: &str) -> Result<PathBuf, Error> {
    let rel = Path::new(key);
    if key.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(Error::Denied(format!("{key}: outside the storage directory")));
    }
    Ok(root.join(rel))
}

fn entry_of(key: String, meta: &fs::Metadata) -> Entry {
    let modified = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok());
    let nanos = modified.map_or(0, |d| d.as_nanos());
    Entry {
        key,
        size: meta.len(),
        // Label Studio's weak ETag for local files is mtime-ns and size in hex.
        etag: Some(format!("{nanos:x}-{:x}", meta.len())),
        last_modified: modified.map(|d| d.as_millis() as u64),
    }
}

impl Backend for LocalFiles {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            type_name: "localfiles".into(),
            title: "Local files".into(),
            capabilities: Capabilities::READ | Capabilities::WRITE | Capabilities::DELETE,
            settings: vec![Setting {
                name: "path".into(),
                kind: SettingKind::Text,
                secret: false,
                required: true,
                default_value: None,
                export_default_value: None,
                env_fallback: None,
                help: "Absolute path of a directory under the server's document root".into(),
            }],
            grants: vec![GrantRequest::Directory("path".into())],
            regex_on_basename: true,
            key_value: false,
            uri_schemes: vec![],
        }
    }

    fn open(config: Config) -> Result<Self, Error> {
        let relative_path = config.require("path")?.trim_matches('/').to_string();
        Ok(LocalFiles { relative_path, root: PathBuf::from(ROOT), last_walk: RefCell::new(None) })
    }

    fn check(&self, _direction: Direction) -> Result<(), Error> {
        fs::read_dir(&self.root).map(|_| ()).map_err(|e| io_error("storage directory", e))
    }

    /// Keys are sorted by full path (byte order); the cursor is the last key of the previous page,
    /// followed by what a rebuilt walk must know of the folders entered through links ([`walk`]).
    /// A prefix names a folder (Label Studio's rule: `prefix.rstrip('/') + '/'`). Each page costs
    /// its own size (plus reading each directory once), not the folder's: see [`walk`].
    fn list(&self, prefix: &str, cursor: Option<String>, page_size: u32, recursive: bool) -> Result<Page, Error> {
        let prefix = prefix.trim_matches('/');
        let key_prefix = if prefix.is_empty() {
            String::new()
        } else {
            resolve(&self.root, prefix)?;
            format!("{prefix}/")
        };
        let mut last_walk = self.last_walk.borrow_mut();
        let mut walk = match last_walk.take() {
            Some(last)
                if last.key_prefix == key_prefix
                    && last.recursive == recursive
                    && cursor.as_deref() == Some(last.cursor.as_str()) =>
            {
                last.walk
            }
            _ => walk::Walk::seek(&self.root, &key_prefix, recursive, cursor.as_deref()),
        };
        let page_size = page_size.max(1) as usize;
        let mut keys = Vec::with_capacity(page_size.min(10_000));
        while keys.len() < page_size {
            let Some(key) = walk.next_key() else { break };
            keys.push(key);
        }
        // Taken before `has_more`, which may enter the next page's first directory: what that
        // one skips goes with the next page, so a walk rebuilt from this page's cursor, which
        // enters it again, reports it once.
        let mut skipped = walk.take_skipped();
        let links = walk.links_entered();
        let next_cursor = if walk.has_more() { keys.last().map(|k| walk.cursor(k, links)) } else { None };
        if next_cursor.is_none() {
            // The last page: no later one to report the directories entered at the end.
            skipped.append(&mut walk.take_skipped());
        }
        if let Some(cursor) = &next_cursor {
            *last_walk = Some(LastWalk { key_prefix, recursive, cursor: cursor.clone(), walk });
        }
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            // A file removed (or replaced by a folder) since its directory was read is not listed.
            if let Ok(meta) = fs::metadata(self.root.join(&key))
                && meta.is_file()
            {
                entries.push(entry_of(key, &meta));
            }
        }
        Ok(Page { entries, next_cursor, skipped })
    }

    fn stat(&self, key: &str) -> Result<Entry, Error> {
        let meta = fs::metadata(resolve(&self.root, key)?).map_err(|e| io_error(key, e))?;
        if !meta.is_file() {
            return Err(Error::NotFound(format!("{key}: not a file")));
        }
        Ok(entry_of(key.to_string(), &meta))
    }

    fn get(&self, key: &str, range: Option<ByteRange>) -> Result<Object, Error> {
        let path = resolve(&self.root, key)?;
        let mut file = fs::File::open(&path).map_err(|e| io_error(key, e))?;
        let meta = file.metadata().map_err(|e| io_error(key, e))?;
        if !meta.is_file() {
            return Err(Error::NotFound(format!("{key}: not a file")));
        }
        let entry = entry_of(key.to_string(), &meta);
        let size = meta.len();
        let (start, end) = match range {
            Some(r) => (r.start.min(size), r.end.map_or(size, |e| e.saturating_add(1).min(size))),
            None => (0, size),
        };
        let mut body = Vec::with_capacity(end.saturating_sub(start) as usize);
        file.seek(SeekFrom::Start(start)).map_err(|e| io_error(key, e))?;
        file.take(end.saturating_sub(start)).read_to_end(&mut body).map_err(|e| io_error(key, e))?;
        Ok(Object { body, total_size: size, etag: entry.etag, content_type: None, last_modified: entry.last_modified })
    }

    fn put(&self, key: &str, body: Vec<u8>, _content_type: Option<String>) -> Result<(), Error> {
        let path = resolve(&self.root, key)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| io_error(key, e))?;
        }
        fs::write(&path, body).map_err(|e| io_error(key, e))
    }

    fn delete(&self, keys: Vec<String>) -> Result<(), Error> {
        for key in keys {
            match fs::remove_file(resolve(&self.root, &key)?) {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(io_error(&key, e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// `/data/local-files/?d=<quoted path relative to the document root>`, as Label Studio writes it.
    fn blob_uri(&self, key: &str) -> String {
        let full =
            if self.relative_path.is_empty() { key.to_string() } else { format!("{}/{key}", self.relative_path) };
        format!("/data/local-files/?d={}", utf8_percent_encode(&full, QUOTE))
    }
}

stowage_sdk::export_adapter!(LocalFiles);

#[cfg(test)]
mod tests;
