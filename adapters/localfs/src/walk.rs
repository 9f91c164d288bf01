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
//!
//! Symlinked directories: each *real* directory (its path with every link resolved) is walked at
//! most once per listing, under the first key that reaches it: a link to a directory already
//! walked, to one being walked (`loop -> .`, `sub/up -> ..`), to an ancestor of the listed
//! folder, or, by its own path, a directory
//! already walked through a link, is passed over. Loops end at once and no file is listed under
//! two keys. A link that leads out of the storage directory is passed over without being read
//! (the WASI preopen refuses it anyway). The walked set lives in the walk; a walk rebuilt from a
//! cursor (a new instance) makes the same choices, because the cursor carries what it needs:
//! after the last key, the key and real path of every folder entered through a link so far
//! ([`Walk::cursor`]). A directory was walked before the cursor exactly when it lies in the
//! listed folder's tree, or in one of those folders' trees, at a key before the cursor.
//!
//! What a directory holds but the listing cannot give as keys is reported as [`Skipped`], once,
//! when the walk first enters the directory (not when a walk rebuilt from a cursor reads it
//! again): names that are not UTF-8 (WASI shows no such name to the sandbox, only that the entry
//! could not be read: the directory is named, with the count) and symlinks leading out of the
//! storage directory (counted, never read). See [`crate::entries`] for why names that are not
//! UTF-8 are counted, not named.

use std::collections::HashSet;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use stowage_sdk::Skipped;

use crate::entries::Kind;

/// Links resolved while finding one directory's real path at most (Linux's `MAXSYMLINKS` is 40).
pub const MAX_LINK_HOPS: u32 = 40;
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
    /// The directory's real path relative to the storage directory (`/`-separated, every link
    /// resolved; empty for the storage directory itself).
    real: String,
    /// Levels below the listed folder.
    depth: u32,
    /// What the directory holds that cannot be listed (module docs).
    skipped: Vec<Skipped>,
}

impl Dir {
    /// Reads and sorts a directory; one that cannot be read (gone, not a directory) is empty.
    /// Entry types come from the directory itself (no `stat` per file); a symlink costs one
    /// `readlink`, a `lstat` per component of its target and a `stat`; one leading out of the
    /// storage directory `root` (which the sandbox refuses) is reported in `skipped`, a dangling
    /// one passed over.
    fn read(root: &Path, path: PathBuf, key_prefix: String, real: String, depth: u32, recursive: bool) -> Dir {
        let mut names = String::new();
        let mut items = Vec::new();
        let mut skipped = Vec::new();
        let entries = crate::entries::read(&path).unwrap_or_default();
        for (name, kind) in entries.named {
            let link = kind == Kind::Link;
            let is_dir = match kind {
                Kind::File => false,
                Kind::Dir => true,
                Kind::Other => continue,
                Kind::Link => {
                    let here = path.join(&name);
                    // The sandbox refuses to read a link that points out of it (an absolute one).
                    let out =
                        fs::read_link(&here).map_or(true, |t| real_path(root, &real, &t) == Err(Unresolved::Outside));
                    if out {
                        skipped.push(Skipped {
                            name: format!("{key_prefix}{name}"),
                            reason: format!(
                                "a symbolic link leading out of the storage directory (or through more than \
                                 {MAX_LINK_HOPS} links): not followed"
                            ),
                            error: false,
                        });
                        continue;
                    }
                    match fs::metadata(&here) {
                        Ok(meta) if meta.is_dir() => true,
                        Ok(meta) if meta.is_file() => false,
                        _ => continue,
                    }
                }
            };
            if is_dir && (!recursive || depth >= MAX_DEPTH) {
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
        items.sort_unstable_by(|a, b| names[a.range()].cmp(&names[b.range()]));
        // A directory changing while it is read may show a name twice: list it once.
        items.dedup_by(|a, b| names[a.range()] == names[b.range()]);
        names.shrink_to_fit();
        items.shrink_to_fit();
        if entries.not_utf8 > 0 {
            let folder = if key_prefix.is_empty() { "./" } else { key_prefix.as_str() };
            let reason = match entries.not_utf8 {
                1 => "1 name here is not valid UTF-8: that file or folder cannot be imported; rename it".to_string(),
                n => format!(
                    "{n} names here are not valid UTF-8: those files or folders cannot be imported; rename them"
                ),
            };
            skipped.push(Skipped { name: folder.to_string(), reason, error: true });
        }
        Dir { path, key_prefix, names, items, next: 0, real, depth, skipped }
    }

    fn name(&self, item: Item) -> &str {
        &self.names[item.range()]
    }

    fn is_dir(&self, item: Item) -> bool {
        self.name(item).ends_with('/')
    }

    /// The real path of the directory `item` (one of this directory's): `None` when it leads
    /// out of the storage directory or through too many links.
    fn real_of(&self, item: Item, root: &Path) -> Option<String> {
        let name = self.name(item).trim_end_matches('/');
        if !item.link {
            return Some(join(&self.real, name));
        }
        let target = fs::read_link(self.path.join(name)).ok()?;
        real_path(root, &self.real, &target).ok()
    }

    /// The directory `item` (one of this directory's), read, unless its real directory was
    /// walked already in this listing (see the module docs); it is then marked walked.
    fn child(&self, item: Item, root: &Path, walked: &mut HashSet<String>, recursive: bool) -> Option<Dir> {
        let real = self.real_of(item, root)?;
        if !walked.insert(real.clone()) {
            return None;
        }
        Some(self.open(item, real, root, recursive))
    }

    /// The directory `item` (one of this directory's), whose real path is `real`, read.
    fn open(&self, item: Item, real: String, root: &Path, recursive: bool) -> Dir {
        let name = self.name(item);
        Dir::read(
            root,
            self.path.join(name.trim_end_matches('/')),
            format!("{}{name}", self.key_prefix),
            real,
            self.depth + 1,
            recursive,
        )
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") }
}

/// Why a link's target has no real path in the storage directory.
#[derive(Debug, PartialEq)]
pub enum Unresolved {
    /// It climbs above the storage directory, or is absolute (a host path the sandbox does not
    /// show), or takes more than [`MAX_LINK_HOPS`] links.
    Outside,
    /// A component does not exist (a dangling link).
    Missing,
}

/// Resolves `target`, a link found in the real directory `dir` (relative to `root`), to a real
/// path relative to `root`, following further links on the way, as the kernel would. The path
/// needs no `stat` for `dir`, which is real already; each component of the target costs one
/// `lstat`.
pub fn real_path(root: &Path, dir: &str, target: &Path) -> Result<String, Unresolved> {
    use std::path::Component;
    let mut out: Vec<String> = dir.split('/').filter(|c| !c.is_empty()).map(str::to_string).collect();
    let mut todo: Vec<String> = Vec::new();
    let push_target = |todo: &mut Vec<String>, t: &Path| -> Result<(), Unresolved> {
        let mut parts = Vec::new();
        for c in t.components() {
            match c {
                Component::Normal(n) => parts.push(n.to_str().ok_or(Unresolved::Missing)?.to_string()),
                Component::ParentDir => parts.push("..".into()),
                Component::CurDir => {}
                Component::RootDir | Component::Prefix(_) => return Err(Unresolved::Outside),
            }
        }
        // `todo` is a stack: the target's first component goes last.
        todo.extend(parts.into_iter().rev());
        Ok(())
    };
    push_target(&mut todo, target)?;
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            out.pop().ok_or(Unresolved::Outside)?;
            continue;
        }
        out.push(c);
        let here = root.join(out.join("/"));
        let meta = fs::symlink_metadata(&here).map_err(|_| Unresolved::Missing)?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > MAX_LINK_HOPS {
                return Err(Unresolved::Outside);
            }
            out.pop();
            push_target(&mut todo, &fs::read_link(&here).map_err(|_| Unresolved::Missing)?)?;
        }
    }
    Ok(out.join("/"))
}

/// Whether the walk before the cursor (`before`: its key and the (key, real path) roots it
/// walked) entered the real directory `real`: it lies in a root's tree at a key before the
/// cursor. Every directory of a root's tree was entered by then, or passed over because it had
/// been walked under another key (then it was walked too).
fn walked_before(before: Option<&(String, Vec<(String, String)>)>, real: &str) -> bool {
    let Some((cursor, roots)) = before else { return false };
    roots.iter().any(|(key, root)| {
        let rel = if real == root {
            Some("")
        } else if root.is_empty() {
            Some(real)
        } else {
            real.strip_prefix(root.as_str()).and_then(|r| r.strip_prefix('/'))
        };
        rel.is_some_and(|rel| {
            let at = if rel.is_empty() { key.clone() } else { format!("{key}{rel}/") };
            at.as_str() < cursor.as_str()
        })
    })
}

/// A position in the listing of one folder: every key after it is still to come.
pub struct Walk {
    stack: Vec<Dir>,
    recursive: bool,
    /// The storage directory, against which real paths are resolved.
    root: PathBuf,
    /// Real paths of the directories walked so far (module docs).
    walked: HashSet<String>,
    /// Reported by the directories entered since the last [`Walk::take_skipped`].
    skipped: Vec<Skipped>,
    /// Every folder entered through a link, in the order entered: its key (ending with `/`)
    /// and real path. [`Walk::cursor`] carries them, so that a walk rebuilt from it knows
    /// what was walked before (see [`Walk::seek`]).
    links: Vec<(String, String)>,
    /// For a walk rebuilt from a cursor: the cursor's key and the (key, real path) roots
    /// walked before it, the listed folder's first.
    before: Option<(String, Vec<(String, String)>)>,
}

impl Walk {
    /// The listing of the folder `key_prefix` of the storage directory `root` (empty, or a
    /// relative path ending with `/`), positioned just after `cursor` (any string; `None` for the
    /// start): the keys still to come are exactly those greater than the cursor.
    pub fn seek(root: &Path, key_prefix: &str, recursive: bool, cursor: Option<&str>) -> Walk {
        let mut walk = Walk {
            stack: Vec::new(),
            recursive,
            root: root.to_path_buf(),
            walked: HashSet::new(),
            skipped: Vec::new(),
            links: Vec::new(),
            before: None,
        };
        let (cursor, links) = match cursor.map(|c| c.split_once('\0').unwrap_or((c, ""))) {
            Some((key, links)) => (Some(key), links),
            None => (None, ""),
        };
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
        let folder = key_prefix.trim_end_matches('/');
        // The listed folder may itself be reached through links.
        let Some(real) =
            (if folder.is_empty() { Some(String::new()) } else { real_path(root, "", Path::new(folder)).ok() })
        else {
            return walk;
        };
        // Its ancestors count as walked: a link up to one would re-enter the folder (a loop).
        let mut up = real.as_str();
        while let Some((parent, _)) = up.rsplit_once('/') {
            walk.walked.insert(parent.to_string());
            up = parent;
        }
        walk.walked.insert(String::new());
        walk.walked.insert(real.clone());
        // A walk rebuilt inside the listing learns what the walk before the cursor entered: the
        // listed folder's tree up to the cursor, and the trees entered through links up to it.
        if let Some(c) = cursor.filter(|c| *c >= key_prefix) {
            let mut roots = vec![(key_prefix.to_string(), real.clone())];
            let mut parts = links.split('\0').filter(|p| !p.is_empty());
            while let (Some(key), Some(target)) = (parts.next(), parts.next()) {
                roots.push((key.to_string(), target.to_string()));
                walk.links.push((key.to_string(), target.to_string()));
            }
            walk.before = Some((c.to_string(), roots));
        }
        let mut dir = Dir::read(root, root.join(folder), key_prefix.to_string(), real, 0, recursive);
        // A listing from its start reports what the folder skips; from a cursor, the directories
        // on the cursor's path were entered (and reported) by an earlier page.
        if cursor.is_none_or(|c| c < key_prefix) {
            walk.skipped = std::mem::take(&mut dir.skipped);
        }
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
                    let child = inside.and_then(|i| dir.child(i, &walk.root, &mut walk.walked, recursive));
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
                    let top = &self.stack[self.stack.len() - 1];
                    let Some(real) = top.real_of(item, &self.root) else { continue };
                    if self.walked.contains(&real) || walked_before(self.before.as_ref(), &real) {
                        continue;
                    }
                    let key = format!("{}{}", top.key_prefix, top.name(item));
                    let mut child = top.open(item, real.clone(), &self.root, self.recursive);
                    self.walked.insert(real.clone());
                    if item.link {
                        self.links.push((key, real));
                    }
                    self.skipped.append(&mut child.skipped);
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

    /// How many folders this walk entered through links so far (for [`Walk::cursor`]).
    pub fn links_entered(&self) -> usize {
        self.links.len()
    }

    /// The cursor after `last_key`: the key, then `\0`-separated (a name holds no NUL) the key
    /// and real path of each of the first `links` folders entered through links, those entered
    /// before `last_key` was returned.
    pub fn cursor(&self, last_key: &str, links: usize) -> String {
        let mut cursor = last_key.to_string();
        for (key, real) in &self.links[..links] {
            for part in [key, real] {
                cursor.push('\0');
                cursor.push_str(part);
            }
        }
        cursor
    }

    /// What the directories entered since the last call skip (module docs).
    pub fn take_skipped(&mut self) -> Vec<Skipped> {
        std::mem::take(&mut self.skipped)
    }
}
