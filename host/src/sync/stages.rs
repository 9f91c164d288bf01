//! The pure stages of an import page: which listed objects are candidates, what each one needs
//! (create, update, unmark, nothing), and whether the removal phase may run. No I/O here: the
//! import loop (`import.rs`) feeds them the listing and the links, and commits what they decide.

use std::collections::HashMap;

use regex::Regex;

use crate::domain::{Entry, OnChange};
use crate::store::LinkState;

/// Compiles `regex_filter` with Python `re.match` semantics: anchored at the start only.
/// Empty or unset matches everything.
///
/// # Errors
/// The regex crate's message, prefixed with the field name.
pub fn compile_filter(pattern: Option<&str>) -> Result<Option<Regex>, String> {
    match pattern {
        None | Some("") => Ok(None),
        Some(p) => Regex::new(&format!("^(?:{p})"))
            .map(Some)
            .map_err(|e| format!("regex_filter is not a valid regular expression: {e}")),
    }
}

/// The listed objects that may become tasks: folder markers (keys ending in `/`) dropped, and
/// `filter` applied to the key, or to its last segment when the adapter filters basenames
/// (Label Studio's local files).
pub fn select(entries: Vec<Entry>, filter: Option<&Regex>, on_basename: bool) -> Vec<Entry> {
    entries
        .into_iter()
        .filter(|e| !e.key.ends_with('/'))
        .filter(|e| {
            let subject = if on_basename { e.key.rsplit('/').next().unwrap_or(&e.key) } else { &e.key };
            filter.is_none_or(|re| re.is_match(subject))
        })
        .collect()
}

/// Whether a listed object differs from what was imported. Etags decide when both sides have
/// one (an S3 etag changes with the content, whatever the clock says); otherwise a different
/// size or modification time does.
pub fn content_changed(entry: &Entry, link: &LinkState) -> bool {
    match (&entry.etag, &link.etag) {
        (Some(a), Some(b)) => a != b,
        _ => {
            link.size.is_some_and(|s| s != entry.size)
                || matches!((entry.last_modified, link.last_modified), (Some(a), Some(b)) if a != b)
        }
    }
}

/// What one page needs.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Objects without a link: their tasks are created.
    pub new: Vec<Entry>,
    /// Linked objects whose content changed, under `sync_on_change: update`.
    pub changed: Vec<Entry>,
    /// Linked objects that were marked missing and are listed again: unmarked.
    pub reappeared: Vec<String>,
    /// Every candidate key, when the run tracks deletions (stamped as seen by this run).
    pub seen: Vec<String>,
}

/// Sorts the candidates of a page by what they need, given their links (`links` holds the keys
/// that have one).
pub fn classify(
    candidates: Vec<Entry>,
    links: &HashMap<String, LinkState>,
    on_change: OnChange,
    track_deletions: bool,
) -> Plan {
    let mut plan = Plan::default();
    for entry in candidates {
        if track_deletions {
            plan.seen.push(entry.key.clone());
        }
        match links.get(&entry.key) {
            None => plan.new.push(entry),
            Some(link) => {
                if !link.exists {
                    plan.reappeared.push(entry.key.clone());
                }
                if on_change == OnChange::Update && content_changed(&entry, link) {
                    plan.changed.push(entry);
                }
            }
        }
    }
    plan
}

/// The removal phase's brake (rclone's `--max-delete`, as a share): what to do with `missing`
/// of `linked` objects after a complete listing that matched `matched` objects.
#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    /// Nothing is missing.
    Nothing,
    /// Remove or mark the missing objects' tasks.
    Proceed,
    /// Skip the phase; the message goes to `traceback` and the run ends
    /// `completed_with_errors`.
    Braked(String),
}

/// Decides the removal phase. An empty listing removes nothing (a wrong prefix or a bucket
/// emptied by mistake looks exactly like that); more than `max_percent` of the linked objects
/// neither.
pub fn removal(missing: u64, linked: u64, matched: u64, max_percent: u32) -> Removal {
    if missing == 0 {
        return Removal::Nothing;
    }
    if matched == 0 {
        return Removal::Braked(format!(
            "The listing returned no objects, so the {missing} linked objects were not removed or marked \
             (an empty listing never removes anything; check the storage's prefix and filter)."
        ));
    }
    if missing * 100 > u64::from(max_percent) * linked {
        let share = (missing * 100).div_ceil(linked.max(1));
        return Removal::Braked(format!(
            "{missing} of {linked} linked objects ({share}%) are gone from the storage, more than \
             max_delete_percent ({max_percent}%): nothing was removed or marked. Set max_delete_percent \
             to {share} or more to allow it."
        ));
    }
    Removal::Proceed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, size: u64, etag: Option<&str>) -> Entry {
        Entry { key: key.into(), size, etag: etag.map(String::from), last_modified: Some(1000) }
    }

    fn link(size: u64, etag: Option<&str>, exists: bool) -> LinkState {
        LinkState { etag: etag.map(String::from), size: Some(size), last_modified: Some(1000), exists, last_row: -1 }
    }

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

    #[test]
    fn select_drops_folder_markers_and_filters_key_or_basename() {
        let entries = || vec![entry("dir/", 0, None), entry("dir/a.jpg", 1, None), entry("dir/b.txt", 1, None)];
        let re = compile_filter(Some(r".*\.jpg")).unwrap();
        let keys = |v: Vec<Entry>| v.into_iter().map(|e| e.key).collect::<Vec<_>>();
        assert_eq!(keys(select(entries(), None, false)), ["dir/a.jpg", "dir/b.txt"]);
        assert_eq!(keys(select(entries(), re.as_ref(), false)), ["dir/a.jpg"]);
        let re = compile_filter(Some("a")).unwrap();
        assert_eq!(keys(select(entries(), re.as_ref(), true)), ["dir/a.jpg"], "basename starts with a");
        assert!(select(entries(), re.as_ref(), false).is_empty(), "the key starts with dir/");
    }

    #[test]
    fn etags_decide_when_both_sides_have_one() {
        assert!(!content_changed(&entry("k", 5, Some("x")), &link(5, Some("x"), true)));
        assert!(content_changed(&entry("k", 5, Some("y")), &link(5, Some("x"), true)));
        // Same etag, other size: the etag wins (a server that pads sizes does not re-import).
        assert!(!content_changed(&entry("k", 6, Some("x")), &link(5, Some("x"), true)));
        assert!(content_changed(&entry("k", 6, None), &link(5, None, true)));
        let mut moved = entry("k", 5, None);
        moved.last_modified = Some(2000);
        assert!(content_changed(&moved, &link(5, None, true)));
        assert!(!content_changed(&entry("k", 5, None), &link(5, None, true)));
    }

    #[test]
    fn classify_sorts_new_changed_reappeared_and_seen() {
        let links = HashMap::from([
            ("same".to_string(), link(1, Some("a"), true)),
            ("edited".to_string(), link(1, Some("a"), true)),
            ("back".to_string(), link(1, Some("a"), false)),
        ]);
        let page = || {
            vec![
                entry("same", 1, Some("a")),
                entry("edited", 2, Some("b")),
                entry("back", 1, Some("a")),
                entry("new", 1, None),
            ]
        };
        let plan = classify(page(), &links, OnChange::Update, true);
        assert_eq!(plan.new.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["new"]);
        assert_eq!(plan.changed.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["edited"]);
        assert_eq!(plan.reappeared, ["back"]);
        assert_eq!(plan.seen, ["same", "edited", "back", "new"]);

        let plan = classify(page(), &links, OnChange::Keep, false);
        assert!(plan.changed.is_empty(), "keep never rewrites");
        assert!(plan.seen.is_empty(), "nothing stamped when deletions are not tracked");
        assert_eq!(plan.reappeared, ["back"], "a mark is lifted whatever the policy");
    }

    #[test]
    fn removal_brakes_on_empty_listings_and_large_shares() {
        assert_eq!(removal(0, 10, 10, 50), Removal::Nothing);
        assert_eq!(removal(5, 10, 5, 50), Removal::Proceed, "exactly the limit is allowed");
        let Removal::Braked(m) = removal(6, 10, 4, 50) else { panic!("60% must brake") };
        assert_eq!(
            m,
            "6 of 10 linked objects (60%) are gone from the storage, more than max_delete_percent (50%): \
             nothing was removed or marked. Set max_delete_percent to 60 or more to allow it."
        );
        let Removal::Braked(m) = removal(10, 10, 0, 100) else { panic!("an empty listing must brake") };
        assert!(m.starts_with("The listing returned no objects, so the 10 linked objects were not removed"), "{m}");
        assert_eq!(removal(10, 10, 3, 100), Removal::Proceed);
    }
}
