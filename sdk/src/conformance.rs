//! The adapter conformance suite: the behaviour every storage adapter must show, written once and
//! run against each adapter (`tests/tests/conformance.rs` drives them through the host runtime).
//!
//! A [`Driver`] gives the suite access to one adapter on an empty storage root; [`run`] seeds a
//! fixed tree through `put` and checks listing, paging, reads and errors against it. Each check
//! says in its message what an adapter must do.

use std::collections::BTreeSet;

/// How a failed adapter call is classified, as far as the suite cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    NotFound,
    Other(String),
}

/// One listed object, as the suite sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
}

/// Access to one adapter on an empty, writable storage root.
#[allow(async_fn_in_trait)]
pub trait Driver {
    async fn put(&mut self, key: &str, body: &[u8]) -> Result<(), Failure>;
    /// Creates an empty folder (a directory, or a zero-byte `path/` marker object).
    async fn empty_folder(&mut self, path: &str) -> Result<(), Failure>;
    async fn list(
        &mut self,
        prefix: &str,
        cursor: Option<String>,
        page_size: u32,
        recursive: bool,
    ) -> Result<(Vec<Listed>, Option<String>), Failure>;
    async fn get(&mut self, key: &str, range: Option<(u64, Option<u64>)>) -> Result<Vec<u8>, Failure>;
    async fn stat(&mut self, key: &str) -> Result<Listed, Failure>;
}

/// Keys of the seeded tree: special characters, nesting, and a file named like a folder's prefix.
pub const SEED_KEYS: [&str; 12] = [
    "a.json",
    "with space.json",
    "plus+sign.json",
    "per%cent.json",
    "hash#tag.json",
    "unicodé-日本.json",
    "report",
    "reports/q1.json",
    "reports/q2.json",
    "nested/deep/er/x.json",
    "nested/y.json",
    "z-last.json",
];

/// The body stored under a seeded key: distinct per key, so a read of the wrong object shows.
pub fn body_of(key: &str) -> Vec<u8> {
    format!("{{\"key\": {key:?}, \"pad\": \"0123456789\"}}").into_bytes()
}

async fn list_all<D: Driver>(d: &mut D, prefix: &str, page_size: u32, recursive: bool) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let (page, next) = d
            .list(prefix, cursor, page_size, recursive)
            .await
            .map_err(|e| format!("list({prefix:?}) failed: {e:?}"))?;
        if page.len() > page_size as usize {
            return Err(format!("list returned {} entries for page size {page_size}", page.len()));
        }
        keys.extend(page.into_iter().map(|e| e.key));
        match next {
            Some(c) => cursor = Some(c),
            None => return Ok(keys),
        }
    }
    Err("list never returned a last page".into())
}

fn expect(cond: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(message()) }
}

fn sorted(keys: impl IntoIterator<Item = impl Into<String>>) -> Vec<String> {
    keys.into_iter().map(Into::into).collect::<BTreeSet<_>>().into_iter().collect()
}

/// Seeds the tree and runs every check; `Err` lists what failed.
pub async fn run<D: Driver>(d: &mut D) -> Result<(), Vec<String>> {
    let mut failures = Vec::new();
    for key in SEED_KEYS {
        if let Err(e) = d.put(key, &body_of(key)).await {
            return Err(vec![format!("put({key:?}) failed: {e:?}")]);
        }
    }
    if let Err(e) = d.empty_folder("empty").await {
        return Err(vec![format!("creating an empty folder failed: {e:?}")]);
    }
    let checks: [(&str, Result<(), String>); 7] = [
        ("recursive listing, every page size", recursive_listing(d).await),
        ("non-recursive listing", direct_children(d).await),
        ("prefix listing", prefixes(d).await),
        ("whole-object reads", reads(d).await),
        ("range reads", ranges(d).await),
        ("stat", stat(d).await),
        ("missing keys", missing(d).await),
    ];
    for (name, result) in checks {
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(failures) }
}

/// Paging with sizes 1, 2 and 1000 yields every key exactly once, sorted, and never an empty
/// folder or a folder marker.
async fn recursive_listing<D: Driver>(d: &mut D) -> Result<(), String> {
    for page_size in [1, 2, 1000] {
        let keys = list_all(d, "", page_size, true).await?;
        expect(keys == sorted(SEED_KEYS), || {
            format!("page size {page_size}: got {keys:?}, want {:?}", sorted(SEED_KEYS))
        })?;
    }
    Ok(())
}

/// Without `recursive`, only direct children of the root; `report` (a file) is listed,
/// `reports/...` and `empty` (folders) are not.
async fn direct_children<D: Driver>(d: &mut D) -> Result<(), String> {
    let want = sorted(SEED_KEYS.iter().filter(|k| !k.contains('/')).copied());
    for page_size in [1, 1000] {
        let keys = list_all(d, "", page_size, false).await?;
        expect(keys == want, || format!("page size {page_size}: got {keys:?}, want {want:?}"))?;
    }
    Ok(())
}

/// A prefix names a folder (Label Studio: `prefix.rstrip('/') + '/'`): `report` lists nothing
/// although a file `report` and a folder `reports/` exist; keys keep their full path.
async fn prefixes<D: Driver>(d: &mut D) -> Result<(), String> {
    let reports = list_all(d, "reports", 1, false).await?;
    expect(reports == ["reports/q1.json", "reports/q2.json"], || format!("prefix \"reports\": got {reports:?}"))?;
    let slash = list_all(d, "reports/", 1000, false).await?;
    expect(slash == reports, || format!("prefix \"reports/\" differs from \"reports\": {slash:?}"))?;
    let report = list_all(d, "report", 1000, true).await?;
    expect(report.is_empty(), || format!("prefix \"report\" must not match the folder \"reports\": {report:?}"))?;
    let nested = list_all(d, "nested", 1000, false).await?;
    expect(nested == ["nested/y.json"], || format!("prefix \"nested\" non-recursive: {nested:?}"))?;
    let nested = list_all(d, "nested", 1000, true).await?;
    expect(nested == ["nested/deep/er/x.json", "nested/y.json"], || {
        format!("prefix \"nested\" recursive: {nested:?}")
    })?;
    let empty = list_all(d, "empty", 1000, true).await?;
    expect(empty.is_empty(), || format!("an empty folder lists nothing: {empty:?}"))
}

/// Every key, special characters included, reads back its own bytes (no double encoding).
async fn reads<D: Driver>(d: &mut D) -> Result<(), String> {
    for key in SEED_KEYS {
        let got = d.get(key, None).await.map_err(|e| format!("get({key:?}): {e:?}"))?;
        expect(got == body_of(key), || format!("get({key:?}) returned {:?}", String::from_utf8_lossy(&got)))?;
    }
    Ok(())
}

/// Inclusive ranges, open-ended ranges, and ranges past the end are clamped.
async fn ranges<D: Driver>(d: &mut D) -> Result<(), String> {
    let key = "with space.json";
    let body = body_of(key);
    let len = body.len() as u64;
    for (range, want) in [
        ((2, Some(5)), &body[2..=5]),
        ((0, Some(0)), &body[0..=0]),
        ((10, None), &body[10..]),
        ((len - 3, Some(len + 100)), &body[body.len() - 3..]),
    ] {
        let got = d.get(key, Some(range)).await.map_err(|e| format!("get({key:?}, {range:?}): {e:?}"))?;
        expect(got == want, || {
            format!(
                "range {range:?}: got {:?}, want {:?}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(want)
            )
        })?;
    }
    Ok(())
}

async fn stat<D: Driver>(d: &mut D) -> Result<(), String> {
    for key in ["unicodé-日本.json", "nested/deep/er/x.json"] {
        let got = d.stat(key).await.map_err(|e| format!("stat({key:?}): {e:?}"))?;
        let want = Listed { key: key.to_string(), size: body_of(key).len() as u64 };
        expect(got == want, || format!("stat({key:?}) = {got:?}, want {want:?}"))?;
    }
    Ok(())
}

/// Missing keys, and folders, are `not-found` for get and stat.
async fn missing<D: Driver>(d: &mut D) -> Result<(), String> {
    for key in ["no-such.json", "reports/none.json", "reports"] {
        let got = d.get(key, None).await.map(|_| ());
        expect(got == Err(Failure::NotFound), || format!("get({key:?}) = {got:?}, want NotFound"))?;
        let got = d.stat(key).await.map(|_| ());
        expect(got == Err(Failure::NotFound), || format!("stat({key:?}) = {got:?}, want NotFound"))?;
    }
    Ok(())
}
