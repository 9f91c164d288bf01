//! Import sync: list the storage page by page, filter, skip what is linked, build tasks, and
//! commit each page in one transaction (so a failure keeps every committed page).

use std::collections::HashSet;

use regex::Regex;
use serde_json::{Value, json};

use super::connect::connect;
use super::job::{Failed, Report};
use crate::App;
use crate::domain::{Entry, NewTask, Storage};
use crate::plugin::Session;
use crate::store::ImportedObject;
use crate::tasks::{DATA_UNDEFINED, parse_task_file};
use crate::with_retry;

/// Objects asked per listing page. Adapters may return fewer (S3 caps a page at 1,000 keys);
/// a directory adapter has to walk the whole tree for each page, so fewer, larger pages list a
/// 10,000-file folder about 3x faster than pages of 1,000. Also the unit of commit and resume.
pub const PAGE_SIZE: u32 = 5000;

/// Compiles `regex_filter` with Python `re.match` semantics: anchored at the start only.
/// Empty or unset matches everything.
pub fn compile_filter(pattern: Option<&str>) -> Result<Option<Regex>, String> {
    match pattern {
        None | Some("") => Ok(None),
        Some(p) => Regex::new(&format!("^(?:{p})"))
            .map(Some)
            .map_err(|e| format!("regex_filter is not a valid regular expression: {e}")),
    }
}

fn internal(e: crate::store::StoreError) -> Failed {
    tracing::error!("store error during sync: {e}");
    Failed("internal error while saving tasks; see the service log".into())
}

/// The tasks of one object with their rows, or why there are none.
type Parsed = Result<Vec<(Option<i64>, NewTask)>, String>;

/// Task files read at once in JSON mode, each by its own adapter instance: storage round trips
/// (tens of ms for a cloud store) dominate, not CPU.
pub const FETCH_CONCURRENCY: usize = 8;

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
    let lanes = FETCH_CONCURRENCY.min(entries.len()).max(1);
    while helpers.len() + 1 < lanes {
        match connect(app, storage) {
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

pub(super) async fn run(app: &App, storage: &Storage, run_id: i64) -> Result<Report, Failed> {
    let mut session = connect(app, storage).map_err(|e| Failed(e.to_string()))?;
    let filter = compile_filter(storage.text("regex_filter")).map_err(Failed)?;
    let on_basename = session.info().regex_on_basename;
    let prefix = storage.text("prefix").unwrap_or("").to_string();
    let recursive = storage.flag("recursive_scan");
    // Label Studio parses every Redis value as task JSON, whatever use_blob_urls says.
    let key_value = session.info().key_value;
    let blob_mode = storage.flag("use_blob_urls") && !key_value;
    let existed = app.store.import_link_count(storage.id).map_err(internal)?;

    let mut report = Report::default();
    let mut helpers = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = with_retry!(session.list(&prefix, cursor.as_deref(), PAGE_SIZE, recursive))
            .map_err(|e| Failed(e.to_string()))?;
        let candidates: Vec<_> = page
            .entries
            .into_iter()
            .filter(|e| !e.key.ends_with('/'))
            .filter(|e| {
                let subject = if on_basename { e.key.rsplit('/').next().unwrap_or(&e.key) } else { &e.key };
                filter.as_ref().is_none_or(|re| re.is_match(subject))
            })
            .collect();
        let keys: Vec<&str> = candidates.iter().map(|e| e.key.as_str()).collect();
        let linked: HashSet<String> = app.store.linked_keys(storage.id, &keys).map_err(internal)?;

        let new: Vec<Entry> = candidates.into_iter().filter(|e| !linked.contains(&e.key)).collect();
        let rows: Vec<Parsed> = if blob_mode {
            let mut rows = Vec::with_capacity(new.len());
            for entry in &new {
                let uri = session.blob_uri(&entry.key).await.map_err(|e| Failed(e.to_string()))?;
                rows.push(Ok(vec![(None, NewTask { data: json!({ DATA_UNDEFINED: uri }), ..Default::default() })]));
            }
            rows
        } else {
            fetch_tasks(app, storage, &mut session, &mut helpers, &new, !key_value).await
        };
        let mut objects = Vec::with_capacity(new.len());
        for (entry, rows) in new.into_iter().zip(rows) {
            match rows {
                Ok(rows) => objects.push(ImportedObject {
                    key: entry.key,
                    etag: entry.etag,
                    size: entry.size,
                    last_modified: entry.last_modified,
                    rows,
                }),
                Err(reason) => report.failures.push(format!("{}: {reason}", entry.key)),
            }
        }
        report.count += app.store.insert_imported(storage.id, storage.project_id, &objects).map_err(internal)?;
        app.store.save_sync_cursor(run_id, page.next_cursor.as_deref(), report.count).map_err(internal)?;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    report.meta.insert("tasks_existed".into(), Value::from(existed));
    if !report.failures.is_empty() {
        report.meta.insert("objects_failed".into(), Value::from(report.failures.len()));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_filter_is_anchored_at_the_start_only() {
        let re = compile_filter(Some(r".*\.json")).unwrap().unwrap();
        assert!(re.is_match("a/b.json"));
        assert!(re.is_match("b.jsonl"), "Python re.match does not anchor the end");
        let re = compile_filter(Some("img")).unwrap().unwrap();
        assert!(re.is_match("img_1.png"));
        assert!(!re.is_match("x_img.png"));
        assert!(compile_filter(Some("")).unwrap().is_none());
        assert!(compile_filter(Some("(")).unwrap_err().starts_with("regex_filter is not a valid regular expression"));
    }
}
