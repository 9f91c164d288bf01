//! Import sync: list the storage page by page, sort each page's objects by what they need
//! (`stages.rs`), build their tasks, and commit each page with the run's cursor and counters in
//! one transaction, so a failure or a kill keeps every committed page and the run continues from
//! the next. Task files are read in ranged parts and parsed as a stream; a page whose files hold
//! more than [`COMMIT_TASKS`] tasks commits them in parts first, the cursor staying on the page
//! and the run naming the file left open, so memory is bounded by tasks and a kill loses nothing.
//! The next page is listed (by its own adapter session) while one is written. After a complete
//! listing, the removal phase applies `sync_on_delete` behind the deletion brakes.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::mpsc::{self, Sender};

use super::SyncError;
use super::report::{Outcome, Tracker};
use super::stages::{self, Plan, Removal};
use crate::App;
use crate::domain::{Entry, HostOptions, NewTask, OnDelete, Page, Storage};
use crate::error::StorageError;
use crate::plugin::Session;
use crate::store::{self, ImportedObject, PageCommit};
use crate::tasks::stream::{Rows, TaskStream};
use crate::tasks::{Authors, DATA_UNDEFINED};
use crate::with_retry;

/// Objects asked per listing page. Adapters may return fewer (S3 caps a page at 1,000 keys).
/// Also the unit of commit and resume.
pub const PAGE_SIZE: u32 = 5000;

/// Task files read at once in JSON mode, each by its own adapter instance: storage round trips
/// (tens of ms for a cloud store) dominate, not CPU.
pub const FETCH_CONCURRENCY: usize = 8;

/// Tasks committed per transaction at most in JSON mode: a page of task files holding more is
/// committed in parts, so memory is bounded by this many tasks, not by a page's files.
pub const COMMIT_TASKS: usize = 10_000;

/// Bytes asked per `get` when reading a task file (at most the adapter answer limit); a larger
/// file is read in ranged parts and parsed as it comes ([`crate::tasks::stream`]).
pub const READ_CHUNK: u64 = 4 << 20;

/// Tasks handed from a reading lane to the writer at once.
const PIECE_TASKS: usize = 1_000;

/// Bytes of a read chunk parsed before the tasks so far are handed to the writer.
const FEED_BYTES: usize = 64 << 10;

/// A task file to read in JSON mode.
struct Work {
    entry: Entry,
    source: [u8; 32],
    /// A linked object whose content changed (`sync_on_change: update`), else a new one.
    changed: bool,
    /// Rows below this one are already imported (a file resumed after a kill).
    from_row: i64,
}

/// What a reading lane hands the writer: some of the file's rows, and, with the last piece,
/// how the file ended.
struct Piece {
    rows: Rows,
    end: Option<FileEnd>,
}

struct FileEnd {
    /// Bad tasks skipped (their messages) and how many.
    problems: Vec<String>,
    skipped: u64,
    /// Why the rest of the file could not be read, if it could not.
    failure: Option<String>,
}

/// Reads the task file of `work` in parts of at most `chunk` bytes, handing its rows to `tx`
/// in pieces as they are parsed. Returns `false` when the writer is gone (stop reading).
async fn read_file(session: &mut Session, work: &Work, reading: &Reading, tx: &Sender<Piece>) -> bool {
    let key = &work.entry.key;
    let chunk = reading.chunk;
    let mut stream = match TaskStream::new(key, reading.check_extension) {
        Ok(s) => s.with_authors(reading.authors.clone()),
        Err(e) => return send_end(tx, Vec::new(), 0, Some(e)).await,
    };
    let mut rows = Vec::new();
    let mut offset = 0;
    let failure = loop {
        // A file that fits one answer is read whole, as before; a larger one in ranged parts.
        let whole = offset == 0 && work.entry.size <= chunk;
        let range = (!whole).then(|| (offset, Some(offset + chunk - 1)));
        let object = match with_retry!(session.get(key, range)) {
            Ok(o) => o,
            Err(e) => break Some(e.to_string()),
        };
        let (read, total) = (object.body.len() as u64, object.total_size);
        offset += read;
        // Parsed a slice at a time and handed over at once: a chunk of tiny tasks (`{},{},...`)
        // would otherwise hold ~50 bytes of memory per byte read.
        let mut fed = Ok(());
        for slice in object.body.chunks(FEED_BYTES) {
            fed = stream.feed(slice, &mut rows);
            if !send_rows(tx, &mut rows, work.from_row).await {
                return false;
            }
            if fed.is_err() {
                break;
            }
        }
        drop(object);
        if let Err(e) = fed {
            break Some(e);
        }
        // The object's size as its answer gives it: a file that changed since it was listed is
        // read to its current end.
        if whole || read == 0 || offset >= total {
            break stream.finish(&mut rows).err();
        }
    };
    send_rows(tx, &mut rows, work.from_row).await
        && send_end(tx, std::mem::take(&mut stream.problems), stream.skipped, failure).await
}

/// Hands `rows` (those from `from_row` on) to the writer in pieces of [`PIECE_TASKS`], each
/// row moved once.
async fn send_rows(tx: &Sender<Piece>, rows: &mut Rows, from_row: i64) -> bool {
    let mut rest = rows.drain(..).filter(|(row, _)| row.unwrap_or(-1) >= from_row).peekable();
    while rest.peek().is_some() {
        let piece: Rows = rest.by_ref().take(PIECE_TASKS).collect();
        if tx.send(Piece { rows: piece, end: None }).await.is_err() {
            return false;
        }
    }
    true
}

async fn send_end(tx: &Sender<Piece>, problems: Vec<String>, skipped: u64, failure: Option<String>) -> bool {
    tx.send(Piece { rows: Vec::new(), end: Some(FileEnd { problems, skipped, failure }) }).await.is_ok()
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
    /// Whom annotations in task files may name as `completed_by`.
    authors: Arc<Authors>,
}

/// The counts of a page, committed with its last part (so that a page listed again after a
/// kill inside it is counted once).
struct PageEnd<'a> {
    /// Objects the listing returned.
    listed: u64,
    /// Of them, those that passed the filters.
    matched: u64,
    /// Tasks not created because another storage of the project imported their object.
    already_imported: u64,
    /// What the listing left out ([`crate::domain::Skipped`]).
    skipped: &'a [crate::domain::Skipped],
}

/// How the task files of a page are read.
struct Reading {
    /// Bytes per ranged read.
    chunk: u64,
    /// Refuse file names without a task file extension (not for key-value stores).
    check_extension: bool,
    authors: Arc<Authors>,
}

impl Import<'_> {
    /// Processes and commits one listed page: blob-mode tasks in one transaction with the
    /// page's cursor; task files in parts of at most [`COMMIT_TASKS`] tasks, the last with the
    /// cursor.
    async fn page(
        &self,
        session: &mut Session,
        helpers: &mut Vec<Session>,
        page: Page,
        tracker: &mut Tracker,
    ) -> Result<(), SyncError> {
        let store = &self.app.store;
        let listed = page.entries.len() as u64;
        let skipped = page.skipped;
        let mut candidates = stages::select(page.entries, self.filter.as_ref(), self.on_basename);
        let matched = candidates.len() as u64;
        let keys: Vec<&str> = candidates.iter().map(|e| e.key.as_str()).collect();
        let links = store::blocking(|| store.link_states(self.storage.id, &keys))?;
        let track = self.opts.sync_on_delete != OnDelete::Keep;
        // The file a killed run left half imported goes on after its last linked row.
        let resumed = tracker.open_object.clone().and_then(|open| {
            let last_row = links.get(&open)?.last_row;
            let entry = candidates.remove(candidates.iter().position(|e| e.key == open)?);
            Some((entry, last_row + 1))
        });
        let Plan { new, changed, reappeared, mut seen } =
            stages::classify(candidates, &links, self.opts.sync_on_change, track);
        if let Some((entry, _)) = resumed.as_ref().filter(|_| track) {
            seen.push(entry.key.clone());
        }
        // Each object's URI, and where it comes from; new objects another storage of the
        // project imported are left out, their tasks counted.
        let mut new = located(session, self.blob_mode, new).await?;
        let elsewhere = store::blocking(|| {
            store.linked_elsewhere(self.storage.id, &new.iter().map(|(_, _, s)| *s).collect::<Vec<_>>())
        })?;
        new.retain(|(_, _, source)| !elsewhere.contains_key(source));
        let already_imported = elsewhere.values().sum();

        let (created, changed) = if self.blob_mode {
            let created = new
                .into_iter()
                .map(|(entry, uri, source)| {
                    let task = NewTask { data: json!({ DATA_UNDEFINED: uri }), ..Default::default() };
                    object(entry, source, vec![(None, task)])
                })
                .collect();
            // The task is the URI, which stays; only the link learns the new etag.
            let changed = located(session, self.blob_mode, changed).await?;
            (created, changed.into_iter().map(|(e, _, source)| object(e, source, Vec::new())).collect())
        } else {
            let resumed = match resumed {
                Some((entry, from_row)) => {
                    let (entry, _, source) = located(session, self.blob_mode, vec![entry]).await?.remove(0);
                    Some(Work { entry, source, changed: false, from_row })
                }
                None => None,
            };
            let changed = located(session, self.blob_mode, changed).await?;
            let work = resumed
                .into_iter()
                .chain(new.into_iter().map(|(entry, _, source)| Work {
                    entry,
                    source,
                    changed: false,
                    from_row: i64::MIN,
                }))
                .chain(changed.into_iter().map(|(entry, _, source)| Work {
                    entry,
                    source,
                    changed: true,
                    from_row: i64::MIN,
                }))
                .collect();
            self.task_files(session, helpers, work, tracker).await?
        };
        let last = Part { created: &created, changed: &changed, reappeared: &reappeared, seen: &seen, open: None };
        let end = PageEnd { listed, matched, already_imported, skipped: &skipped };
        self.commit(tracker, last, page.next_cursor.as_deref(), Some(end))?;
        tracker.cursor = page.next_cursor;
        Ok(())
    }

    /// Commits `part` of the page being imported: the whole rest of it with `cursor` when
    /// `last` (with the page's counts), else tasks only, the cursor staying where it is.
    fn commit(
        &self,
        tracker: &mut Tracker,
        part: Part,
        cursor: Option<&str>,
        last: Option<PageEnd>,
    ) -> Result<(), SyncError> {
        let mut counters = tracker.counters.clone();
        if let Some(end) = &last {
            counters.pages_done += 1;
            counters.objects_listed += end.listed;
            counters.objects_matched += end.matched;
            for s in end.skipped {
                if s.error {
                    counters.fail(format!("{}: {}", s.name, s.reason));
                } else {
                    counters.objects_left_out += 1;
                }
            }
        }
        let commit = PageCommit {
            run_id: tracker.run_id,
            storage_id: self.storage.id,
            project_id: self.storage.project_id,
            created: part.created,
            changed: part.changed,
            reappeared: part.reappeared,
            seen: part.seen,
            cursor,
            part: last.is_none().then_some(part.open),
            already_imported: last.map_or(0, |end| end.already_imported),
        };
        let store = &self.app.store;
        store::blocking(|| store.commit_page(&commit, &mut counters, &|c| tracker.meta_for(c)))?;
        tracker.counters = counters;
        tracker.open_object = part.open.map(str::to_string);
        Ok(())
    }

    /// Reads the task files of `work`, [`FETCH_CONCURRENCY`] at a time, each in ranged parts,
    /// and takes their tasks in `work` order. Whenever [`COMMIT_TASKS`] tasks are waiting they
    /// are committed (the cursor stays); what is left is returned for the page's last commit.
    /// Files that fail are counted in `tracker`; their tasks read before the failure stay.
    /// `helpers` are extra sessions, opened on first need and kept for the next pages.
    async fn task_files(
        &self,
        session: &mut Session,
        helpers: &mut Vec<Session>,
        work: Vec<Work>,
        tracker: &mut Tracker,
    ) -> Result<(Vec<ImportedObject>, Vec<ImportedObject>), SyncError> {
        if work.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let lanes = FETCH_CONCURRENCY.min(work.len());
        while helpers.len() + 1 < lanes {
            match self.app.sessions.open(self.storage) {
                Ok(s) => helpers.push(s),
                Err(_) => break,
            }
        }
        let lanes = (helpers.len() + 1).min(lanes);
        let reading = &Reading {
            chunk: READ_CHUNK.min(self.app.registry.limits.max_response_bytes as u64).max(1),
            check_extension: !self.key_value,
            authors: self.authors.clone(),
        };
        let (senders, mut receivers): (Vec<_>, Vec<_>) = (0..lanes).map(|_| mpsc::channel::<Piece>(2)).unzip();
        let work = &work;
        // Lane i reads files i, i + lanes, i + 2 * lanes, ... and hands each one's pieces over.
        let readers = std::iter::once(session).chain(helpers.iter_mut()).take(lanes).zip(senders).enumerate().map(
            |(lane, (session, tx))| async move {
                for w in work.iter().skip(lane).step_by(lanes) {
                    if !read_file(session, w, reading, &tx).await {
                        return;
                    }
                }
            },
        );
        let writer = async move {
            let (mut created, mut changed) = (Vec::<ImportedObject>::new(), Vec::<ImportedObject>::new());
            let mut waiting = 0;
            for (i, w) in work.iter().enumerate() {
                let rx = &mut receivers[i % lanes];
                loop {
                    // A reader gone without its file's end panicked.
                    let piece = rx.recv().await.ok_or(SyncError::Internal)?;
                    let objects = if w.changed { &mut changed } else { &mut created };
                    if !piece.rows.is_empty() {
                        waiting += piece.rows.len();
                        match objects.last_mut().filter(|o| o.key == w.entry.key && !o.complete) {
                            Some(o) => o.rows.extend(piece.rows),
                            None => {
                                let o = object(w.entry.clone(), w.source, piece.rows);
                                objects.push(ImportedObject { complete: false, ..o })
                            }
                        }
                    }
                    let Some(end) = piece.end else {
                        if waiting >= COMMIT_TASKS {
                            let open = (!w.changed).then_some(w.entry.key.as_str());
                            self.commit_part(tracker, &mut created, &mut changed, open)?;
                            waiting = 0;
                        }
                        continue;
                    };
                    if let Some(o) = objects.last_mut().filter(|o| o.key == w.entry.key) {
                        o.complete = true;
                    }
                    tracker.counters.skip(&w.entry.key, &end.problems, end.skipped);
                    if let Some(why) = end.failure {
                        tracker.counters.fail(format!("{}: {why}", w.entry.key));
                    }
                    break;
                }
                if waiting >= COMMIT_TASKS {
                    self.commit_part(tracker, &mut created, &mut changed, None)?;
                    waiting = 0;
                }
            }
            Ok((created, changed))
        };
        let (result, _) = futures_util::future::join(writer, futures_util::future::join_all(readers)).await;
        result
    }

    /// Commits the tasks waiting in `created` and `changed` as a part of the page.
    fn commit_part(
        &self,
        tracker: &mut Tracker,
        created: &mut Vec<ImportedObject>,
        changed: &mut Vec<ImportedObject>,
        open: Option<&str>,
    ) -> Result<(), SyncError> {
        let part = Part { created: created.as_slice(), changed: changed.as_slice(), reappeared: &[], seen: &[], open };
        let cursor = tracker.cursor.clone();
        self.commit(tracker, part, cursor.as_deref(), None)?;
        // Committed: only the file still being read stays, without its rows, to take the next.
        for objects in [created, changed] {
            objects.retain(|o| !o.complete);
            objects.iter_mut().for_each(|o| o.rows.clear());
        }
        Ok(())
    }
}

/// Some of a page's objects, committed together ([`Import::commit`]).
struct Part<'a> {
    created: &'a [ImportedObject],
    changed: &'a [ImportedObject],
    reappeared: &'a [String],
    seen: &'a [String],
    /// The file left open by this part (its next rows come in a later one).
    open: Option<&'a str>,
}

fn object(e: Entry, source: [u8; 32], rows: Rows) -> ImportedObject {
    let (key, etag, size, last_modified) = (e.key, e.etag, e.size, e.last_modified);
    ImportedObject { key, source, etag, size, last_modified, rows, complete: true }
}

/// Each entry with its URI (`blob-uri`) and its [`source`].
async fn located(
    session: &mut Session,
    blob_mode: bool,
    entries: Vec<Entry>,
) -> Result<Vec<(Entry, String, [u8; 32])>, SyncError> {
    let origin = session.origin();
    let mut located = Vec::with_capacity(entries.len());
    for entry in entries {
        let uri = session.blob_uri(&entry.key).await?;
        let source = source(&origin, blob_mode, &uri);
        located.push((entry, uri, source));
    }
    Ok(located)
}

/// What a link's tasks were made from, the same for every storage of a project that would make
/// the same tasks of it: SHA-256 of the storage's [origin](Session::origin), of how the object
/// is read (one blob task, or a task file's rows) and of its URI. A storage leaves out objects
/// whose source another storage of its project linked (`Store::linked_elsewhere`).
fn source(origin: &[u8; 32], blob_mode: bool, uri: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(origin);
    h.update([u8::from(blob_mode)]);
    h.update(uri.as_bytes());
    h.finalize().into()
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
        authors: Arc::new(Authors::new(app.store.user_emails()?)),
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
