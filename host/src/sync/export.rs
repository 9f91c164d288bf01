//! Export: one JSON document per annotation, at the key its adapter names (`{prefix}/{id}` for
//! object stores, Label Studio's `ExportStorageLink.get_key`), written on export sync and on every
//! annotation save; deleted with the annotation when the storage has `can_delete_objects`
//! (`io_storages/base_models.py::ExportStorage`).

use std::sync::Arc;

use super::SyncError;
use super::report::{Outcome, Tracker};
use crate::App;
use crate::domain::{Direction, Project, Storage};
use crate::error::{ErrorKind, StorageError};
use crate::plugin::Session;
use crate::store::{self, ExportLink, ExportSource};
use crate::tasks::document;
use crate::with_retry;

fn internal(op: &'static str, e: impl std::fmt::Display) -> StorageError {
    tracing::error!("store error during export: {e}");
    StorageError::new(ErrorKind::Transient, op, "internal error; see the service log")
}

/// An annotation's export document, as Label Studio's `ExportStorage.save_annotation` writes it
/// (pretty-printed JSON).
fn render(source: &ExportSource, project: Option<&Project>) -> Vec<u8> {
    let doc = document::export_document(&source.annotation, &source.task, project, source.author.as_ref());
    serde_json::to_vec_pretty(&doc).expect("JSON values serialize")
}

/// Writes one rendered document at the key the adapter names for the annotation; returns the key.
async fn put(session: &mut Session, annotation_id: i64, body: &[u8]) -> Result<String, StorageError> {
    let key = session.export_key(annotation_id).await?;
    with_retry!(session.put(&key, body, Some("application/json")))?;
    Ok(key)
}

/// Annotations read, rendered and written per batch; a batch's links commit in one transaction,
/// and the run's progress is saved after each.
const BATCH: usize = 512;
/// Sessions of one export sync writing at once, each on its own task: a put to an object store
/// is a network round trip (on this machine Garage takes ~1,500 puts/s from 16 lanes, ~900 from
/// 4; bench/s3.sh), and rendering documents is CPU work that spreads over the workers. Each lane
/// is one adapter instance (a few MB) for the length of the run.
const LANES: usize = 16;

/// Export sync, incremental: first the objects of deleted annotations whose immediate delete
/// failed, then the annotations created or changed since this storage last wrote them, in
/// batches written by [`LANES`] sessions at once.
pub(super) async fn run(app: &App, storage: &Storage, tracker: &mut Tracker) -> Result<Outcome, SyncError> {
    let mut sessions = Vec::with_capacity(LANES);
    sessions.push(app.sessions.open(storage)?);
    let pending = app.store.export_deletions(storage.id)?;
    if !pending.is_empty() {
        with_retry!(sessions[0].delete(&pending))?;
        app.store.drop_export_deletions(storage.id, &pending)?;
        tracker.counters.tasks_removed += pending.len() as u64;
    }
    let ids = app.store.annotations_to_export(storage.id, storage.project_id)?;
    while sessions.len() < LANES.min(ids.len()) {
        sessions.push(app.sessions.open(storage)?);
    }
    let project = Arc::new(app.store.project(storage.project_id)?);
    for batch in ids.chunks(BATCH) {
        tracker.counters.objects_listed += batch.len() as u64;
        let sources = store::blocking(|| app.store.annotations_for_export(batch))?;
        // Lane i takes every LANES-th document, so the lanes get equal shares.
        let mut shares: Vec<Vec<ExportSource>> = (0..sessions.len()).map(|_| Vec::new()).collect();
        for (i, source) in sources.into_iter().enumerate() {
            shares[i % sessions.len()].push(source);
        }
        let lanes: Vec<_> = sessions
            .drain(..)
            .zip(shares)
            .map(|(mut session, share)| {
                let project = Arc::clone(&project);
                tokio::spawn(async move {
                    let mut written = Vec::with_capacity(share.len());
                    for source in share {
                        let id = source.annotation.id;
                        written.push((id, put(&mut session, id, &render(&source, project.as_ref().as_ref())).await));
                    }
                    (session, written)
                })
            })
            .collect();
        let mut links = Vec::with_capacity(batch.len());
        for lane in lanes {
            let (session, written) = lane.await.map_err(|e| {
                tracing::error!(storage = storage.id, "an export lane failed: {e}");
                SyncError::Internal
            })?;
            sessions.push(session);
            for (id, result) in written {
                match result {
                    Ok(key) => links.push((id, key)),
                    Err(e) => tracker.counters.fail(format!("annotation {id}: {e}")),
                }
            }
        }
        store::blocking(|| app.store.upsert_export_links(storage.id, &links))?;
        tracker.counters.tasks_created += links.len() as u64;
        app.store.save_run_progress(tracker.run_id, storage.id, &tracker.counters, &tracker.meta())?;
    }
    tracker.counters.objects_matched = tracker.counters.objects_listed;
    let (_, annotations, _) = app.store.project_counts(storage.project_id)?;
    tracker.note("total_annotations", serde_json::Value::from(annotations));
    Ok(Outcome::default())
}

/// Writes one annotation's document with `session` and records the link. `Ok(false)`: the
/// annotation (or its task) was deleted meanwhile, nothing to write.
async fn write_one(
    app: &App,
    session: &mut Session,
    storage: &Storage,
    annotation_id: i64,
) -> Result<bool, StorageError> {
    let store = &app.store;
    let Some(source) =
        store.annotations_for_export(&[annotation_id]).map_err(|e| internal("put", e))?.into_iter().next()
    else {
        return Ok(false);
    };
    let project = store.project(source.annotation.project_id).map_err(|e| internal("put", e))?;
    let key = put(session, annotation_id, &render(&source, project.as_ref())).await?;
    store.upsert_export_links(storage.id, &[(annotation_id, key)]).map_err(|e| internal("put", e))?;
    Ok(true)
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
