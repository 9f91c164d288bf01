//! Export: one JSON document per annotation, at the key its adapter names (`{prefix}/{id}` for
//! object stores, Label Studio's `ExportStorageLink.get_key`), written on export sync and on every
//! annotation save; deleted with the annotation when the storage has `can_delete_objects`
//! (`io_storages/base_models.py::ExportStorage`).

use super::SyncError;
use super::report::{Outcome, Tracker};
use crate::App;
use crate::domain::{Direction, Storage};
use crate::error::{ErrorKind, StorageError};
use crate::plugin::Session;
use crate::store::ExportLink;
use crate::tasks::document;
use crate::with_retry;

fn internal(op: &'static str, e: impl std::fmt::Display) -> StorageError {
    tracing::error!("store error during export: {e}");
    StorageError::new(ErrorKind::Transient, op, "internal error; see the service log")
}

/// Writes one annotation's document and records the link. `Ok(false)`: the annotation (or its
/// task) was deleted meanwhile, nothing to write.
async fn write_one(
    app: &App,
    session: &mut Session,
    storage: &Storage,
    annotation_id: i64,
) -> Result<bool, StorageError> {
    let store = &app.store;
    let Some(a) = store.annotation(annotation_id).map_err(|e| internal("put", e))? else { return Ok(false) };
    let Some(task) = store.task(a.task_id).map_err(|e| internal("put", e))? else { return Ok(false) };
    let project = store.project(a.project_id).map_err(|e| internal("put", e))?;
    let author = match a.completed_by {
        Some(u) => store.user(u).map_err(|e| internal("put", e))?,
        None => None,
    };
    let doc = document::export_document(&a, &task, project.as_ref(), author.as_ref());
    let body = serde_json::to_vec_pretty(&doc).expect("JSON values serialize");
    let key = session.export_key(annotation_id).await?;
    with_retry!(session.put(&key, &body, Some("application/json")))?;
    store.upsert_export_link(storage.id, annotation_id, &key).map_err(|e| internal("put", e))?;
    Ok(true)
}

/// Annotations written between two saves of the run's progress.
const PROGRESS_EVERY: usize = 500;

/// Export sync, incremental: first the objects of deleted annotations whose immediate delete
/// failed, then the annotations created or changed since this storage last wrote them.
pub(super) async fn run(app: &App, storage: &Storage, tracker: &mut Tracker) -> Result<Outcome, SyncError> {
    let mut session = app.sessions.open(storage)?;
    let pending = app.store.export_deletions(storage.id)?;
    if !pending.is_empty() {
        with_retry!(session.delete(&pending))?;
        app.store.drop_export_deletions(storage.id, &pending)?;
        tracker.counters.tasks_removed += pending.len() as u64;
    }
    let ids = app.store.annotations_to_export(storage.id, storage.project_id)?;
    for (n, id) in ids.iter().enumerate() {
        tracker.counters.objects_listed += 1;
        match write_one(app, &mut session, storage, *id).await {
            Ok(written) => tracker.counters.tasks_created += u64::from(written),
            Err(e) => tracker.counters.fail(format!("annotation {id}: {e}")),
        }
        if (n + 1) % PROGRESS_EVERY == 0 {
            app.store.save_run_progress(tracker.run_id, storage.id, &tracker.counters, &tracker.meta())?;
        }
    }
    tracker.counters.objects_matched = tracker.counters.objects_listed;
    let (_, annotations, _) = app.store.project_counts(storage.project_id)?;
    tracker.note("total_annotations", serde_json::Value::from(annotations));
    Ok(Outcome::default())
}

/// After an annotation is created or updated: writes it to every export storage of its project.
/// Failures are logged; the next export sync writes it again.
pub async fn annotation_saved(app: &App, project_id: i64, annotation_id: i64) {
    let storages = match app.store.storages(Direction::Export, None, project_id) {
        Ok(s) => s,
        Err(e) => return tracing::error!("listing export storages: {e}"),
    };
    for storage in storages {
        let result = match app.sessions.checkout(&storage) {
            Ok(mut session) => {
                let written = write_one(app, &mut session, &storage, annotation_id).await.map(drop);
                app.sessions.checkin(&storage, session);
                written
            }
            Err(e) => Err(StorageError::new(ErrorKind::InvalidConfig, "put", e.to_string())),
        };
        if let Err(e) = result {
            tracing::warn!(storage = storage.id, annotation = annotation_id, "export failed: {e}");
        }
    }
}

/// After an annotation is deleted: deletes its objects from the export storages that allow it
/// (`can_delete_objects`). `links` are the annotation's export links, read before the deletion.
pub async fn annotation_deleted(app: &App, links: Vec<ExportLink>) {
    for link in links {
        let Ok(Some(storage)) = app.store.storage(link.storage_id) else { continue };
        if !storage.options().can_delete_objects {
            continue;
        }
        let result = match app.sessions.checkout(&storage) {
            Ok(mut session) => {
                let deleted = with_retry!(session.delete(std::slice::from_ref(&link.key)));
                app.sessions.checkin(&storage, session);
                deleted
            }
            Err(e) => Err(StorageError::new(ErrorKind::InvalidConfig, "delete", e.to_string())),
        };
        if let Err(e) = result {
            tracing::warn!(
                storage = storage.id,
                key = link.key,
                "deleting an exported annotation failed, the next export sync retries: {e}"
            );
            if let Err(e) = app.store.queue_export_deletion(storage.id, &link.key) {
                tracing::error!(storage = storage.id, "remembering a failed export delete: {e}");
            }
        }
    }
}
