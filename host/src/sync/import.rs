//! Import sync: list the storage page by page, sort each page's objects by what they need
//! (`stages.rs`), build their tasks, and commit each page with the run's cursor and counters in
//! one transaction, so a failure or a kill keeps every committed page and the run continues from
//! the next. The next page is listed (by its own adapter session) while one is written. After a
//! complete listing, the removal phase applies `sync_on_delete` behind the deletion brakes.

use serde_json::json;
use tokio::sync::mpsc;

use super::SyncError;
use super::report::{Outcome, Tracker};
use super::stages::{self, Plan, Removal};
use crate::App;
use crate::domain::{Entry, HostOptions, NewTask, OnDelete, Page, Storage};
use crate::error::StorageError;
use crate::plugin::Session;
use crate::store::{self, ImportedObject, PageCommit};
use crate::tasks::{DATA_UNDEFINED, parse_task_file};
use crate::with_retry;

/// Objects asked per listing page. Adapters may return fewer (S3 caps a page at 1,000 keys).
/// Also the unit of commit and resume.
pub const PAGE_SIZE: u32 = 5000;

/// Task files read at once in JSON mode, each by its own adapter instance: storage round trips
/// (tens of ms for a cloud store) dominate, not CPU.
pub const FETCH_CONCURRENCY: usize = 8;

/// The tasks of one object with their rows, or why there are none.
type Parsed = Result<Vec<(Option<i64>, NewTask)>, String>;

/// Reads and parses the task files `entries`, [`FETCH_CONCURRENCY`] at a time; results are in
/// the order of `entries`. `helpers` are extra sessions, opened on first need and kept for the
/// next pages.
async fn fetch_tasks(
    app: &App,
    storage: &Storage,
    session: &mut Session,
    helpers: &mut Vec<Session>,
    entries: &[Entry],
    check_extension: bool,
) -> Vec<Parsed> {
    if entries.is_empty() {
        return Vec::new();
    }
    let lanes = FETCH_CONCURRENCY.min(entries.len()).max(1);
    while helpers.len() + 1 < lanes {
        match app.sessions.open(storage) {
            Ok(s) => helpers.push(s),
            Err(_) => break,
        }
    }
    let lanes = (helpers.len() + 1).min(lanes);
    let sessions = std::iter::once(session).chain(helpers.iter_mut()).take(lanes);
    // Lane i reads entries i, i + lanes, i + 2 * lanes, ...
    let work = sessions.enumerate().map(|(lane, session)| async move {
        let mut out = Vec::new();
        for (i, entry) in entries.iter().enumerate().skip(lane).step_by(lanes) {
            let limit = app.registry.limits.max_response_bytes as u64;
            let parsed = if entry.size > limit {
                // Known too big from the listing: not read at all (the adapter would hold it
                // whole in memory, and the answer would be refused anyway).
                Err(format!(
                    "get: the object is {} MiB, more than the {} MiB an adapter may answer (--max-response-mib)",
                    entry.size.div_ceil(1 << 20),
                    limit >> 20
                ))
            } else {
                match with_retry!(session.get(&entry.key, None)) {
                    Ok(object) => parse_task_file(&entry.key, &object.body, check_extension),
                    Err(e) => Err(e.to_string()),
                }
            };
            out.push((i, parsed));
        }
        out
    });
    let mut results: Vec<_> = futures_util::future::join_all(work).await.into_iter().flatten().collect();
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Lists pages from `cursor` on with its own session, one page ahead of the writer.
fn spawn_lister(
    mut session: Session,
    opts: &HostOptions,
    cursor: Option<String>,
) -> mpsc::Receiver<Result<Page, StorageError>> {
    let (tx, rx) = mpsc::channel(1);
    let (prefix, recursive) = (opts.prefix.clone(), opts.recursive_scan);
    tokio::spawn(async move {
        let mut cursor = cursor;
        loop {
            let page = with_retry!(session.list(&prefix, cursor.as_deref(), PAGE_SIZE, recursive));
            let next = page.as_ref().ok().and_then(|p| p.next_cursor.clone());
            let end = next.is_none();
            // A closed channel: the writer stopped (a failure), so stop listing too.
            if tx.send(page).await.is_err() || end {
                return;
            }
            cursor = next;
        }
    });
    rx
}

/// One import run's fixed inputs.
struct Import<'a> {
    app: &'a App,
    storage: &'a Storage,
    opts: HostOptions,
    filter: Option<regex::Regex>,
    on_basename: bool,
    blob_mode: bool,
    key_value: bool,
}

impl Import<'_> {
    /// The tasks of `entries` (blob mode: one per object; else read from the task files).
    async fn tasks_of(
        &self,
        session: &mut Session,
        helpers: &mut Vec<Session>,
        entries: &[Entry],
    ) -> Result<Vec<Parsed>, SyncError> {
        if !self.blob_mode {
            return Ok(fetch_tasks(self.app, self.storage, session, helpers, entries, !self.key_value).await);
        }
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            let uri = session.blob_uri(&entry.key).await?;
            rows.push(Ok(vec![(None, NewTask { data: json!({ DATA_UNDEFINED: uri }), ..Default::default() })]));
        }
        Ok(rows)
    }

    /// Processes and commits one listed page.
    async fn page(
        &self,
        session: &mut Session,
        helpers: &mut Vec<Session>,
        page: Page,
        tracker: &mut Tracker,
    ) -> Result<(), SyncError> {
        let store = &self.app.store;
        tracker.counters.objects_listed += page.entries.len() as u64;
        let candidates = stages::select(page.entries, self.filter.as_ref(), self.on_basename);
        tracker.counters.objects_matched += candidates.len() as u64;
        let keys: Vec<&str> = candidates.iter().map(|e| e.key.as_str()).collect();
        let links = store::blocking(|| store.link_states(self.storage.id, &keys))?;
        let track = self.opts.sync_on_delete != OnDelete::Keep;
        let Plan { new, changed, reappeared, seen } =
            stages::classify(candidates, &links, self.opts.sync_on_change, track);

        let created = self.objects(session, helpers, new, tracker).await?;
        let changed = if self.blob_mode {
            // Blob mode: the task is the URI, which stays; only the link learns the new etag.
            changed.into_iter().map(|e| object(e, Vec::new())).collect()
        } else {
            self.objects(session, helpers, changed, tracker).await?
        };
        let mut counters = tracker.counters.clone();
        counters.pages_done += 1;
        let commit = PageCommit {
            run_id: tracker.run_id,
            storage_id: self.storage.id,
            project_id: self.storage.project_id,
            created: &created,
            changed: &changed,
            reappeared: &reappeared,
            seen: &seen,
            cursor: page.next_cursor.as_deref(),
        };
        store::blocking(|| store.commit_page(&commit, &mut counters, &|c| tracker.meta_for(c)))?;
        tracker.counters = counters;
        tracker.cursor = page.next_cursor;
        Ok(())
    }

    /// Builds the objects of `entries` with their tasks; objects that fail are counted in
    /// `tracker` and left out.
    async fn objects(
        &self,
        session: &mut Session,
        helpers: &mut Vec<Session>,
        entries: Vec<Entry>,
        tracker: &mut Tracker,
    ) -> Result<Vec<ImportedObject>, SyncError> {
        let parsed = self.tasks_of(session, helpers, &entries).await?;
        let mut out = Vec::with_capacity(entries.len());
        for (entry, rows) in entries.into_iter().zip(parsed) {
            match rows {
                Ok(rows) => out.push(object(entry, rows)),
                Err(reason) => tracker.counters.fail(format!("{}: {reason}", entry.key)),
            }
        }
        Ok(out)
    }
}

fn object(e: Entry, rows: Vec<(Option<i64>, NewTask)>) -> ImportedObject {
    ImportedObject { key: e.key, etag: e.etag, size: e.size, last_modified: e.last_modified, rows }
}

/// Runs (or continues) the import of `storage` recorded in `tracker`.
pub(super) async fn run(app: &App, storage: &Storage, tracker: &mut Tracker) -> Result<Outcome, SyncError> {
    let opts = storage.options();
    let filter = stages::compile_filter(opts.regex_filter.as_deref()).map_err(SyncError::Invalid)?;
    let mut session = app.sessions.open(storage)?;
    let info = session.info().clone();
    // Label Studio parses every Redis value as task JSON, whatever use_blob_urls says.
    let blob_mode = opts.use_blob_urls && !info.key_value;
    if tracker.counters.tasks_existed.is_none() {
        tracker.counters.tasks_existed = Some(app.store.import_link_count(storage.id)? as u64);
        app.store.save_run_progress(tracker.run_id, storage.id, &tracker.counters, &tracker.meta())?;
    }
    let import = Import {
        app,
        storage,
        opts,
        filter,
        on_basename: info.regex_on_basename,
        blob_mode,
        key_value: info.key_value,
    };

    if !tracker.listing_done {
        let mut pages = spawn_lister(app.sessions.open(storage)?, &import.opts, tracker.cursor.clone());
        let mut helpers = Vec::new();
        loop {
            // A lister gone without its last page (it panicked) is a listing cut short: the run
            // fails, so the removal phase never sees a partial listing.
            let page =
                pages.recv().await.ok_or_else(|| SyncError::Invalid("list: the listing stopped early".into()))??;
            let last = page.next_cursor.is_none();
            import.page(&mut session, &mut helpers, page, tracker).await?;
            if last {
                break;
            }
        }
        tracker.listing_done = true;
    }

    let mut outcome = Outcome::default();
    if import.opts.sync_on_delete != OnDelete::Keep {
        let (missing, linked) = app.store.missing_objects(storage.id, tracker.run_id)?;
        match stages::removal(missing, linked, tracker.counters.objects_matched, import.opts.max_delete_percent) {
            Removal::Nothing => {}
            Removal::Braked(why) => outcome.braked = Some(why),
            Removal::Proceed => {
                let delete = import.opts.sync_on_delete == OnDelete::Delete;
                let (removed, marked) =
                    store::blocking(|| app.store.remove_missing(storage.id, tracker.run_id, delete))?;
                tracker.counters.tasks_removed += removed;
                tracker.counters.tasks_marked += marked;
                app.store.save_run_progress(tracker.run_id, storage.id, &tracker.counters, &tracker.meta())?;
            }
        }
    }
    Ok(outcome)
}
