//! Listing a folder in full-key order, one page at a time, without walking the whole tree per page.
//!
//! Keys are `/`-separated paths and pages come in byte-lexicographic order of the whole key. A
//! depth-first walk yields exactly that order when the entries of each directory are sorted with
//! every directory's name compared as `name + "/"`: all keys under a directory `d` start with
//! `d/`, and `d/` is never a prefix of a sibling's name (names hold no `/`), so `d/` sorts against
//! a sibling exactly as every key under `d` does. (Sorting by bare names is not enough: `a.txt`
//! < `a/x` since `.` < `/`, but `a` < `a.txt`.)
//!
//! A [`Walk`] is a stack of directories, each with its sorted entries and the index of the next
//! one. It can be rebuilt from a cursor alone (the last key returned): [`Walk::seek`] reads each
//! directory on the cursor's path once and binary-searches past the cursor's component, so a
//! cursor works in a fresh instance. The adapter keeps the walk of the last page to continue from
//! it when the next call passes that page's cursor; a miss rebuilds it and gives the same keys.

use std::fs;
use std::ops::Range;
use std::path::PathBuf;

/// Symlinked directories followed on one path at most, so a link loop (`loop -> .`) ends.
/// (Without any limit a loop ended only where path resolution gave up, around 40 links.)
pub const MAX_LINKS: u32 = 8;
/// Directory levels below the listed folder at most.
pub const MAX_DEPTH: u32 = 256;

/// One entry of a directory: its sort key (the name, `/` appended for a directory) in [`Dir::names`].
#[derive(Clone, Copy)]
struct Item {
    start: u32,
    end: u32,
    /// A symlink (to a directory, for the ones walked into).
    link: bool,
}

impl Item {
    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// One directory on the walk's path, read and sorted once.
struct Dir {
    path: PathBuf,
    /// Key of the directory: ends with `/`, or is empty for the storage root.
    key_prefix: String,
    /// The sort keys of all entries, concatenated (one allocation instead of one per name).
    names: String,
    /// Files (and, when recursive, directories), sorted by sort key.
    items: Vec<Item>,
    /// Index in `items` of the next entry to visit.
    next: usize,
    /// Symlinked directories on the path from the listed folder to here, and levels below it.
    links: u32,
    depth: u32,
}

impl Dir {
    /// Reads and sorts a directory; one that cannot be read (gone, not a directory) is empty.
    /// Entry types come from the directory itself (no `stat` per file); a symlink costs one
    /// `stat` and is skipped when it cannot be followed (e.g. pointing out of the sandbox).
    fn read(path: PathBuf, key_prefix: String, links: u32, depth: u32, recursive: bool) -> Dir {
        let mut names = String::new();
        let mut items = Vec::new();
        if let Ok(read) = fs::read_dir(&path) {
            for entry in read.flatten() {
                let Ok(name) = entry.file_name().into_string() else { continue };
                let Ok(mut kind) = entry.file_type() else { continue };
                let link = kind.is_symlink();
                if link {
                    let Ok(meta) = fs::metadata(entry.path()) else { continue };
                    kind = meta.file_type();
                }
                let is_dir = kind.is_dir();
                if is_dir {
                    if !recursive || depth >= MAX_DEPTH || (link && links >= MAX_LINKS) {
                        continue;
                    }
                } else if !kind.is_file() {
                    continue;
                }
                let start = names.len();
                names.push_str(&name);
                if is_dir {
                    names.push('/');
                }
                // Beyond 4 GiB of names the listing stops (far past any memory cap).
                let (Ok(start), Ok(end)) = (u32::try_from(start), u32::try_from(names.len())) else { break };
                items.push(Item { start, end, link });
            }
        }
        items.sort_unstable_by(|a, b| names[a.range()].cmp(&names[b.range()]));
        // A directory changing while it is read may show a name twice: list it once.
        items.dedup_by(|a, b| names[a.range()] == names[b.range()]);
        names.shrink_to_fit();
        items.shrink_to_fit();
        Dir { path, key_prefix, names, items, next: 0, links, depth }
    }

    fn name(&self, item: Item) -> &str {
        &self.names[item.range()]
    }

    fn is_dir(&self, item: Item) -> bool {
        self.name(item).ends_with('/')
    }

    /// The directory `item` (one of this directory's), read.
    fn child(&self, item: Item, recursive: bool) -> Dir {
        let name = self.name(item);
        Dir::read(
            self.path.join(name.trim_end_matches('/')),
            format!("{}{name}", self.key_prefix),
            self.links + u32::from(item.link),
            self.depth + 1,
            recursive,
        )
    }
}

/// A position in the listing of one folder: every key after it is still to come.
pub struct Walk {
    stack: Vec<Dir>,
    recursive: bool,
}

impl Walk {
    /// The listing of the folder at `dir` (whose keys start with `key_prefix`: empty, or ending
    /// with `/`), positioned just after `cursor` (any string; `None` for the start): the keys
    /// still to come are exactly those greater than the cursor.
    pub fn seek(dir: PathBuf, key_prefix: &str, recursive: bool, cursor: Option<&str>) -> Walk {
        let mut walk = Walk { stack: Vec::new(), recursive };
        let rest = match cursor {
            None => "",
            Some(c) => match c.strip_prefix(key_prefix) {
                Some(rest) => rest,
                // Every key starts with `key_prefix`: all of them sort after a smaller cursor...
                None if c < key_prefix => "",
                // ... and none after a greater one.
                None => return walk,
            },
        };
        let mut dir = Dir::read(dir, key_prefix.to_string(), 0, 0, recursive);
        let mut rest = rest;
        loop {
            match rest.split_once('/') {
                // The cursor ends in this directory: skip the entries sorting up to it. A
                // directory `rest/` sorts after `rest` and so does everything under it.
                None => {
                    dir.next = dir.items.partition_point(|&i| dir.name(i) <= rest);
                    walk.stack.push(dir);
                    return walk;
                }
                // The cursor lies under `head/`: entries before `head/` are done, the ones after
                // it are to come, and `head/` itself (if here) is entered past `tail`.
                Some((head, tail)) => {
                    let target = format!("{head}/");
                    let at = dir.items.partition_point(|&i| dir.name(i) < target.as_str());
                    let inside = dir.items.get(at).copied().filter(|&i| dir.name(i) == target);
                    dir.next = at + usize::from(inside.is_some());
                    let child = inside.map(|i| dir.child(i, recursive));
                    walk.stack.push(dir);
                    match child {
                        Some(child) => {
                            dir = child;
                            rest = tail;
                        }
                        None => return walk,
                    }
                }
            }
        }
    }

    /// Enters directories until the next entry is a file; `false` when the listing is over.
    fn advance(&mut self) -> bool {
        loop {
            let Some(top) = self.stack.last_mut() else { return false };
            match top.items.get(top.next).copied() {
                None => {
                    self.stack.pop();
                }
                Some(item) if top.is_dir(item) => {
                    top.next += 1;
                    let child = top.child(item, self.recursive);
                    self.stack.push(child);
                }
                Some(_) => return true,
            }
        }
    }

    /// The next key, in full-key order.
    pub fn next_key(&mut self) -> Option<String> {
        if !self.advance() {
            return None;
        }
        let top = self.stack.last_mut()?;
        let item = top.items[top.next];
        top.next += 1;
        Some(format!("{}{}", top.key_prefix, top.name(item)))
    }

    /// Whether a key is still to come (reads the directories up to it).
    pub fn has_more(&mut self) -> bool {
        self.advance()
    }
}
