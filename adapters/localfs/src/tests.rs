//! Native tests of listing over a temporary directory (`cargo test -p stowage-adapter-localfs`).
//! The timing run is ignored by default:
//! `cargo test --release -p stowage-adapter-localfs -- --ignored --nocapture list_timing`
//! (`LIST_TIMING_N=100000,1000000`, `LIST_TIMING_OLD_PAGES=N` to time only N pages of the old walk).

use super::*;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// A fresh empty directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "stowage-localfs-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn instance(root: &Path) -> LocalFiles {
    LocalFiles { relative_path: "x".into(), root: root.to_path_buf(), last_walk: RefCell::new(None) }
}

fn touch(root: &Path, key: &str) {
    let path = root.join(key);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, key).unwrap();
}

/// Keys of a tree mixing names that sort around `/`: `.` `-` `0` and `/` itself.
const KEYS: &[&str] = &[
    "a.txt",
    "a/x",
    "a/x.txt",
    "a/w.txt",
    "a/w/y",
    "a/w-",
    "a/w0",
    "a/b/c/d",
    "a-b/y",
    "a0",
    "ab/c",
    "b",
    "nested/deep/er/x.json",
    "nested/y.json",
    "z/z/z/z",
    "z.",
    "unicodé/日本",
    "with space/f g",
];

/// The tree of [`KEYS`], with empty folders; its keys sorted.
fn tree() -> (TempDir, Vec<String>) {
    let dir = TempDir::new();
    let mut keys = BTreeSet::new();
    for key in KEYS {
        touch(&dir.0, key);
        keys.insert(key.to_string());
    }
    for empty in ["empty", "a/empty", "e/f/g", "a-b/empty"] {
        fs::create_dir_all(dir.0.join(empty)).unwrap();
    }
    (dir, keys.into_iter().collect())
}

/// Every page, following cursors; checks each page's size.
fn list_all(fs: &LocalFiles, prefix: &str, page_size: u32, recursive: bool) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = fs.list(prefix, cursor, page_size, recursive).unwrap();
        assert!(page.entries.len() <= page_size as usize);
        keys.extend(page.entries.into_iter().map(|e| e.key));
        match page.next_cursor {
            Some(c) => {
                let key = c.split('\0').next();
                assert_eq!(key, keys.last().map(String::as_str), "the cursor starts with the last key listed");
                cursor = Some(c);
            }
            None => return keys,
        }
    }
}

/// The old listing: walk everything, sort, cut after the cursor (the reference for order).
fn old_keys(dir: &Path, key_prefix: &str, recursive: bool, out: &mut Vec<String>) {
    let Ok(read) = fs::read_dir(dir) else { return };
    for item in read.flatten() {
        let Some(name) = item.file_name().to_str().map(str::to_owned) else { continue };
        let Ok(mut kind) = item.file_type() else { continue };
        if kind.is_symlink() {
            let Ok(meta) = fs::metadata(item.path()) else { continue };
            kind = meta.file_type();
        }
        let key = format!("{key_prefix}{name}");
        if kind.is_dir() {
            if recursive {
                old_keys(&item.path(), &format!("{key}/"), true, out);
            }
        } else if kind.is_file() {
            out.push(key);
        }
    }
}

fn old_page(root: &Path, cursor: Option<&str>, page_size: usize, recursive: bool) -> (Vec<Entry>, Option<String>) {
    let mut keys = Vec::new();
    old_keys(root, "", recursive, &mut keys);
    keys.sort_unstable();
    let start = cursor.map_or(0, |c| keys.partition_point(|k| k.as_str() <= c));
    let rest = &keys[start..];
    let taken = &rest[..rest.len().min(page_size)];
    let entries =
        taken.iter().filter_map(|k| fs::metadata(root.join(k)).ok().map(|m| entry_of(k.clone(), &m))).collect();
    (entries, (rest.len() > taken.len()).then(|| taken.last().cloned()).flatten())
}

/// The trap the walk avoids: a depth-first walk by sorted bare names is not full-key order.
fn dfs_by_names(dir: &Path, key_prefix: &str, dir_slash: bool, out: &mut Vec<String>) {
    let mut items: Vec<(String, bool)> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().into_string().unwrap(), e.file_type().unwrap().is_dir()))
        .collect();
    items.sort_by_key(|(name, is_dir)| if *is_dir && dir_slash { format!("{name}/") } else { name.clone() });
    for (name, is_dir) in items {
        if is_dir {
            dfs_by_names(&dir.join(&name), &format!("{key_prefix}{name}/"), dir_slash, out);
        } else {
            out.push(format!("{key_prefix}{name}"));
        }
    }
}

#[test]
fn dfs_with_dir_slash_is_full_key_order() {
    let (dir, want) = tree();
    let mut by_names = Vec::new();
    dfs_by_names(&dir.0, "", false, &mut by_names);
    assert_ne!(by_names, want, "sorting bare names puts a/... before a.txt");
    let mut with_slash = Vec::new();
    dfs_by_names(&dir.0, "", true, &mut with_slash);
    assert_eq!(with_slash, want);
}

#[test]
fn every_page_size_lists_every_key_once_in_order() {
    let (dir, want) = tree();
    let mut reference = Vec::new();
    old_keys(&dir.0, "", true, &mut reference);
    reference.sort();
    assert_eq!(reference, want);
    let fs = instance(&dir.0);
    for page_size in [1, 2, 3, 7, 1000] {
        assert_eq!(list_all(&fs, "", page_size, true), want, "page size {page_size}");
    }
}

/// A cursor alone (a new instance, nothing cached) gives the same remaining pages.
#[test]
fn a_cursor_resumes_in_a_fresh_instance() {
    let (dir, want) = tree();
    for page_size in [1, 2, 7] {
        let warm = instance(&dir.0);
        let mut cursor = None;
        let mut pages = Vec::new();
        loop {
            let page = warm.list("", cursor.clone(), page_size, true).unwrap();
            let cold = instance(&dir.0).list("", cursor.clone(), page_size, true).unwrap();
            let shown =
                |p: &Page| p.entries.iter().map(|e| format!("{} {} {:?}", e.key, e.size, e.etag)).collect::<Vec<_>>();
            assert_eq!(shown(&cold), shown(&page), "page after {cursor:?}, size {page_size}");
            assert_eq!(cold.next_cursor, page.next_cursor);
            pages.extend(page.entries.into_iter().map(|e| e.key));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(pages, want);
    }
}

/// Any string is a cursor: what follows is the keys greater than it, cached walk or not.
#[test]
fn any_cursor_gives_the_keys_after_it() {
    let (dir, want) = tree();
    let mut cursors: Vec<String> =
        ["", "a", "a/", "a.", "a/w/", "a/w/z", "a-", "a/b", "a/b/c/d/e", "q", "zz", "~", "a/zz"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    for key in &want {
        cursors.push(key.clone());
        cursors.push(format!("{key}/"));
        cursors.push(format!("{key}\u{0}"));
        let mut shorter = key.clone();
        shorter.pop();
        cursors.push(shorter);
    }
    for cursor in cursors {
        let expected: Vec<_> = want.iter().filter(|k| k.as_str() > cursor.as_str()).cloned().collect();
        let page = instance(&dir.0).list("", Some(cursor.clone()), 1000, true).unwrap();
        let got: Vec<_> = page.entries.into_iter().map(|e| e.key).collect();
        assert_eq!(got, expected, "after {cursor:?}");
        assert_eq!(page.next_cursor, None);
    }
}

#[test]
fn prefixes_and_non_recursive() {
    let (dir, want) = tree();
    let fs = instance(&dir.0);
    let direct: Vec<_> = want.iter().filter(|k| !k.contains('/')).cloned().collect();
    for page_size in [1, 2, 1000] {
        assert_eq!(list_all(&fs, "", page_size, false), direct);
        assert_eq!(list_all(&fs, "/", page_size, false), direct);
    }
    for prefix in ["a", "a/", "/a/", "a/x", "nested", "nested/deep/", "a-b", "empty", "e", "none", "a.txt"] {
        let folder = format!("{}/", prefix.trim_matches('/'));
        let under: Vec<_> = want.iter().filter(|k| k.starts_with(&folder)).cloned().collect();
        let direct: Vec<_> = under.iter().filter(|k| !k[folder.len()..].contains('/')).cloned().collect();
        for page_size in [1, 2, 1000] {
            assert_eq!(list_all(&fs, prefix, page_size, true), under, "prefix {prefix:?} recursive");
            assert_eq!(list_all(&fs, prefix, page_size, false), direct, "prefix {prefix:?}");
        }
    }
    assert!(matches!(fs.list("../x", None, 10, true), Err(Error::Denied(_))));
}

/// Pages of different listings interleaved on one instance do not mix up.
#[test]
fn interleaved_listings() {
    let (dir, want) = tree();
    let fs = instance(&dir.0);
    let (mut a, mut b) = (None::<String>, None::<String>);
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    let (mut a_done, mut b_done) = (false, false);
    while !(a_done && b_done) {
        if !a_done {
            let page = fs.list("", a.clone(), 2, true).unwrap();
            got_a.extend(page.entries.into_iter().map(|e| e.key));
            a = page.next_cursor;
            a_done = a.is_none();
        }
        if !b_done {
            let page = fs.list("a", b.clone(), 1, false).unwrap();
            got_b.extend(page.entries.into_iter().map(|e| e.key));
            b = page.next_cursor;
            b_done = b.is_none();
        }
    }
    assert_eq!(got_a, want);
    let direct: Vec<_> = want.iter().filter(|k| k.starts_with("a/") && k.matches('/').count() == 1).collect();
    assert_eq!(got_b.iter().collect::<Vec<_>>(), direct);
    assert_eq!(got_b, ["a/w-", "a/w.txt", "a/w0", "a/x", "a/x.txt"]);
}

/// A listing is not a snapshot, but no key comes twice and nothing panics.
#[test]
fn files_changing_between_pages() {
    let (dir, _) = tree();
    let fs = instance(&dir.0);
    let mut cursor = None;
    let mut seen = Vec::new();
    let mut round = 0;
    loop {
        let page = fs.list("", cursor, 2, true).unwrap();
        seen.extend(page.entries.into_iter().map(|e| e.key));
        match round {
            1 => fs::remove_dir_all(dir.0.join("a")).unwrap(),
            2 => touch(&dir.0, "a-b/new"),
            3 => fs::remove_file(dir.0.join("b")).unwrap(),
            4 => fs::remove_dir_all(dir.0.join("nested")).unwrap(),
            5 => touch(&dir.0, "0-before-everything"),
            _ => {}
        }
        round += 1;
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "in order, each once");
    assert!(!seen.iter().any(|k| k == "b" || k == "0-before-everything"));
}

/// Each real directory is walked once, under the first key reaching it: loops end at once, a
/// link to a folder listed elsewhere moves its files under the link's key (not both), and links
/// out of the storage directory are not followed.
#[cfg(unix)]
#[test]
fn symlinked_directories_are_walked_once_per_real_directory() {
    use std::os::unix::fs::symlink;
    let (dir, want) = tree();
    let outside = TempDir::new();
    touch(&outside.0, "secret.txt");
    symlink(".", dir.0.join("loop")).unwrap();
    symlink("..", dir.0.join("nested/up")).unwrap();
    symlink("../..", dir.0.join("a/b/top")).unwrap();
    symlink("a.txt", dir.0.join("link.txt")).unwrap();
    symlink("/nonexistent", dir.0.join("dangling")).unwrap();
    // `alias/` sorts before `nested/`, so `nested/deep` is walked as `alias/`.
    symlink("nested/./deep", dir.0.join("alias")).unwrap();
    symlink("loop/loop/z", dir.0.join("zz")).unwrap();
    symlink(&outside.0, dir.0.join("abs-out")).unwrap();
    symlink(Path::new("..").join(outside.0.file_name().unwrap()), dir.0.join("rel-out")).unwrap();
    let fs = instance(&dir.0);
    let keys = list_all(&fs, "", 1000, true);
    let mut expected: Vec<String> = want.iter().filter(|k| !k.starts_with("nested/deep/")).cloned().collect();
    expected.extend(["alias/er/x.json".to_string(), "link.txt".to_string()]);
    expected.sort();
    assert_eq!(keys, expected);
    // Paging, and resuming from a cursor in a fresh instance, agree with one page.
    assert_eq!(list_all(&fs, "", 3, true), keys);
    let mid = &keys[keys.len() / 2];
    let after: Vec<_> = keys.iter().filter(|k| *k > mid).cloned().collect();
    let page = instance(&dir.0).list("", Some(mid.clone()), 100_000, true).unwrap();
    assert_eq!(page.entries.into_iter().map(|e| e.key).collect::<Vec<_>>(), after);
    // A fresh instance per page (a service killed between pages) lists every file once, under
    // the same key as one walk: the cursor carries the folders entered through links.
    for page_size in 1..=4 {
        assert_eq!(list_fresh(&dir.0, page_size), keys, "page size {page_size}");
    }
    // Listing a folder reached through a link lists it once, under the link's name.
    assert_eq!(list_all(&fs, "alias", 1000, true), ["alias/er/x.json"]);
    assert_eq!(list_all(&fs, "loop/nested", 1000, true), ["loop/nested/deep/er/x.json", "loop/nested/y.json"]);
}

/// What the listing cannot give as keys is reported once per listing, on the page that meets it,
/// whatever the page size and whether pages come from one instance or a fresh one per cursor:
/// each folder holding names that are not UTF-8 (with the count; an error), each link leading out
/// of the storage directory (not an error). Dangling links are passed over silently.
#[cfg(unix)]
#[test]
fn names_that_cannot_be_keys_and_links_out_are_reported_once() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;
    let dir = TempDir::new();
    let outside = TempDir::new();
    touch(&outside.0, "secret.txt");
    for key in ["a.json", "m/b.json", "m/n/c.json", "z.json"] {
        touch(&dir.0, key);
    }
    fs::write(dir.0.join(OsStr::from_bytes(b"bad\xff.json")), "{}").unwrap();
    fs::write(dir.0.join("m/n").join(OsStr::from_bytes(b"caf\xe9.json")), "{}").unwrap();
    fs::write(dir.0.join("m/n").join(OsStr::from_bytes(b"\xfe")), "{}").unwrap();
    symlink(&outside.0, dir.0.join("m/abs-out")).unwrap();
    symlink(Path::new("../..").join(outside.0.file_name().unwrap()).join("secret.txt"), dir.0.join("m/rel-out"))
        .unwrap();
    symlink("missing.json", dir.0.join("m/dangling")).unwrap();
    symlink("../a.json", dir.0.join("m/inside.json")).unwrap();

    let listing = |page_size: u32, fresh: bool| {
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        let mut cursor = None;
        let same = instance(&dir.0);
        loop {
            let fresh_one;
            let fs = if fresh {
                fresh_one = instance(&dir.0);
                &fresh_one
            } else {
                &same
            };
            let page = fs.list("", cursor, page_size, true).unwrap();
            keys.extend(page.entries.into_iter().map(|e| e.key));
            skipped.extend(page.skipped.into_iter().map(|s| (s.name, s.error, s.reason)));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return (keys, skipped),
            }
        }
    };
    let (keys, mut skipped) = listing(1000, false);
    assert_eq!(keys, ["a.json", "m/b.json", "m/inside.json", "m/n/c.json", "z.json"]);
    skipped.sort();
    let out = "a symbolic link leading out of the storage directory (or through more than 40 links): not followed";
    let one = "1 name here is not valid UTF-8: that file or folder cannot be imported; rename it";
    let two = "2 names here are not valid UTF-8: those files or folders cannot be imported; rename them";
    assert_eq!(
        skipped,
        [
            ("./".to_string(), true, one.to_string()),
            ("m/abs-out".to_string(), false, out.to_string()),
            ("m/n/".to_string(), true, two.to_string()),
            ("m/rel-out".to_string(), false, out.to_string()),
        ]
    );
    for page_size in [1, 2, 3] {
        for fresh in [false, true] {
            let (k, mut s) = listing(page_size, fresh);
            s.sort();
            assert_eq!((&k, &s), (&keys, &skipped), "page size {page_size}, fresh instance per page: {fresh}");
        }
    }
}

/// Many links to one folder and links between siblings end in one walk of each folder.
#[cfg(unix)]
#[test]
fn links_between_siblings_end() {
    use std::os::unix::fs::symlink;
    let dir = TempDir::new();
    touch(&dir.0, "p/f.json");
    touch(&dir.0, "q/g.json");
    for (link, to) in [("p/toq", "../q"), ("q/top", "../p"), ("p/self", "."), ("q/l1", "../q/l2"), ("q/l2", "l1")] {
        symlink(to, dir.0.join(link)).unwrap();
    }
    assert_eq!(list_all(&instance(&dir.0), "", 1000, true), ["p/f.json", "p/toq/g.json"]);
    assert_eq!(list_fresh(&dir.0, 1), ["p/f.json", "p/toq/g.json"]);
}

/// Random trees of folders, files and relative links between folders (loops, links to
/// ancestors, to siblings, to links): listing each page from a fresh instance gives exactly
/// the keys of one walk, and no file's content twice.
#[cfg(unix)]
#[test]
fn rebuilt_walks_agree_with_one_walk_on_random_link_trees() {
    use std::os::unix::fs::symlink;
    let mut seed: u64 = 0x5eed;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    for round in 0..200 {
        let dir = TempDir::new();
        let mut folders = vec![String::new()];
        for i in 0..(2 + next(6)) {
            let parent = folders[next(folders.len() as u64) as usize].clone();
            let name = format!("{}{}", ["a", "m", "z", "a.b", "a-"][next(5) as usize], i);
            let path = if parent.is_empty() { name } else { format!("{parent}/{name}") };
            fs::create_dir_all(dir.0.join(&path)).unwrap();
            folders.push(path);
        }
        for (i, f) in folders.clone().iter().enumerate() {
            if next(3) > 0 {
                touch(&dir.0, &if f.is_empty() { format!("f{i}") } else { format!("{f}/f{i}") });
            }
        }
        for i in 0..next(5) {
            let from = folders[next(folders.len() as u64) as usize].clone();
            let to = folders[next(folders.len() as u64) as usize].clone();
            let depth = from.split('/').filter(|c| !c.is_empty()).count();
            let target = format!("{}{}", "../".repeat(depth), to);
            let target = if target.is_empty() { ".".to_string() } else { target };
            let name = format!("{}{}", ["l", "a", "zz", "m"][next(4) as usize], i);
            let link = if from.is_empty() { name } else { format!("{from}/{name}") };
            let _ = symlink(&target, dir.0.join(link));
        }
        let one = list_all(&instance(&dir.0), "", 1000, true);
        // Each file's content is its own path: a file listed under two keys shows it twice.
        let mut contents: Vec<String> = one.iter().map(|k| fs::read_to_string(dir.0.join(k)).unwrap()).collect();
        contents.sort();
        let total = contents.len();
        contents.dedup();
        assert_eq!(contents.len(), total, "round {round}: a file listed twice in {one:?}");
        for page_size in [1, 2, 3] {
            assert_eq!(list_fresh(&dir.0, page_size), one, "round {round}, page size {page_size}");
        }
    }
}

/// Every page of a recursive listing of `root`, each from a fresh instance (as after a restart).
fn list_fresh(root: &Path, page_size: u32) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = instance(root).list("", cursor, page_size, true).unwrap();
        keys.extend(page.entries.into_iter().map(|e| e.key));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return keys,
        }
    }
}

fn populate(root: &Path, n: usize, tree: bool) {
    for i in 0..n {
        let key = if tree { format!("d{:03}/s{:02}/f{i}.txt", i % 100, (i / 100) % 10) } else { format!("f{i}.txt") };
        let path = root.join(&key);
        if tree && i < 1000 {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
        }
        fs::write(path, b"x").unwrap();
    }
}

/// Listing N files (flat, and in 100 x 10 folders) in pages of 5000: the new walk against the old
/// one (whole tree walked and sorted per page).
#[test]
#[ignore]
fn list_timing() {
    let sizes = std::env::var("LIST_TIMING_N").unwrap_or_else(|_| "100000".into());
    let old_pages: Option<usize> = std::env::var("LIST_TIMING_OLD_PAGES").ok().map(|v| v.parse().unwrap());
    for n in sizes.split(',').map(|s| s.parse::<usize>().unwrap()) {
        for tree in [false, true] {
            let dir = TempDir::new();
            populate(&dir.0, n, tree);
            let shape = if tree { "tree" } else { "flat" };
            let fs = instance(&dir.0);
            let t = Instant::now();
            let (mut cursor, mut count, mut pages) = (None, 0, 0);
            loop {
                let page = fs.list("", cursor, 5000, true).unwrap();
                count += page.entries.len();
                pages += 1;
                cursor = page.next_cursor;
                if cursor.is_none() {
                    break;
                }
            }
            let new = t.elapsed();
            assert_eq!(count, n);
            // A miss on every page: the cursor alone, a fresh instance each time.
            let t = Instant::now();
            let (mut cursor, mut count) = (None, 0);
            loop {
                let page = instance(&dir.0).list("", cursor, 5000, true).unwrap();
                count += page.entries.len();
                cursor = page.next_cursor;
                if cursor.is_none() {
                    break;
                }
            }
            let cold = t.elapsed();
            assert_eq!(count, n);
            let t = Instant::now();
            let (mut cursor, mut old_count, mut timed) = (None::<String>, 0, 0);
            loop {
                let (entries, next) = old_page(&dir.0, cursor.as_deref(), 5000, true);
                old_count += entries.len();
                timed += 1;
                cursor = next;
                if cursor.is_none() || old_pages.is_some_and(|p| timed >= p) {
                    break;
                }
            }
            let old = t.elapsed();
            let old_total = old.as_secs_f64() * pages as f64 / timed as f64;
            println!(
                "{n} files {shape}, {pages} pages: new {:.2} s ({:.0} keys/s), cursor-only {:.2} s, old {:.2} s{} ({:.0} keys/s)",
                new.as_secs_f64(),
                n as f64 / new.as_secs_f64(),
                cold.as_secs_f64(),
                old_total,
                if timed < pages { format!(" (extrapolated from {timed} pages)") } else { String::new() },
                n as f64 / old_total,
            );
            if timed == pages {
                assert_eq!(old_count, n);
            }
        }
    }
}

#[test]
fn errors_that_cannot_pass_are_not_retried() {
    let dir = TempDir::new();
    let storage = instance(&dir.0);
    fs::create_dir(dir.0.join("a.json")).unwrap();
    touch(&dir.0, "file");
    // A directory where the file goes, a file where a directory goes: not transient.
    assert!(
        matches!(storage.put("a.json", b"{}".to_vec(), None), Err(Error::InvalidConfig(m)) if m.starts_with("a.json: "))
    );
    assert!(matches!(storage.put("file/b.json", b"{}".to_vec(), None), Err(Error::InvalidConfig(_))));
    assert!(matches!(storage.get("gone", None), Err(Error::NotFound(m)) if m == "gone: no such file"));
    storage.put("c/d.json", b"{}".to_vec(), None).unwrap();
    assert_eq!(fs::read(dir.0.join("c/d.json")).unwrap(), b"{}");
}
