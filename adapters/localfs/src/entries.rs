//! Reading one directory's entries, names that are not UTF-8 counted instead of lost.
//!
//! Under WASI (wasm32-wasip2) a name is a WIT `string`: the host sends an entry whose name is
//! not UTF-8 as an `illegal-byte-sequence` error in the directory stream, and the stream goes
//! on after it. The standard library ends its `read_dir` at the first error (and so would hide
//! every entry after such a name), so the directory stream is read here through `wasi:filesystem`
//! itself. Natively, `std::fs::read_dir` shows such names, which cannot be keys either.

use std::path::Path;

/// What an entry is, from the directory itself (no `stat`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    File,
    Dir,
    Link,
    Other,
}

/// A directory's readable entries and how many it holds whose names are not UTF-8.
#[derive(Default)]
pub struct Entries {
    pub named: Vec<(String, Kind)>,
    pub not_utf8: u64,
}

/// The entries of the directory at `path` (inside the sandbox: an absolute path under a
/// preopened directory); `None` when it cannot be read (gone, not a directory). An entry that
/// fails for another reason (removed while read) is passed over.
#[cfg(not(target_arch = "wasm32"))]
pub fn read(path: &Path) -> Option<Entries> {
    let mut out = Entries::default();
    for entry in std::fs::read_dir(path).ok()?.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            out.not_utf8 += 1;
            continue;
        };
        let Ok(t) = entry.file_type() else { continue };
        let kind = if t.is_symlink() {
            Kind::Link
        } else if t.is_dir() {
            Kind::Dir
        } else if t.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        out.named.push((name, kind));
    }
    Some(out)
}

/// See the native version; this one reads the `wasi:filesystem` directory stream.
#[cfg(target_arch = "wasm32")]
pub fn read(path: &Path) -> Option<Entries> {
    use wasip2::filesystem::preopens::get_directories;
    use wasip2::filesystem::types::{Descriptor, DescriptorFlags, DescriptorType, ErrorCode, OpenFlags, PathFlags};
    thread_local! {
        // Asked once per instance, not once per directory read.
        static PREOPENS: Vec<(Descriptor, String)> = get_directories();
    }
    let path = path.to_str()?;
    let stream = PREOPENS.with(|preopens| {
        let (preopen, relative) = preopens.iter().find_map(|(d, root)| {
            let rest = path.strip_prefix(root.trim_end_matches('/'))?;
            (rest.is_empty() || rest.starts_with('/')).then(|| (d, rest.trim_start_matches('/')))
        })?;
        if relative.is_empty() {
            return preopen.read_directory().ok();
        }
        let dir =
            preopen.open_at(PathFlags::SYMLINK_FOLLOW, relative, OpenFlags::DIRECTORY, DescriptorFlags::READ).ok()?;
        dir.read_directory().ok()
    })?;
    let mut out = Entries::default();
    loop {
        match stream.read_directory_entry() {
            Ok(Some(e)) => {
                let kind = match e.type_ {
                    DescriptorType::SymbolicLink => Kind::Link,
                    DescriptorType::Directory => Kind::Dir,
                    DescriptorType::RegularFile => Kind::File,
                    _ => Kind::Other,
                };
                out.named.push((e.name, kind));
            }
            Ok(None) => return Some(out),
            Err(ErrorCode::IllegalByteSequence) => out.not_utf8 += 1,
            // An entry removed while the directory is read; the host's stream goes on after it.
            Err(_) => continue,
        }
    }
}
