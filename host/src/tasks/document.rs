//! Label Studio's JSON shapes of tasks and annotations, shared by the API and by export.

use serde_json::{Value, json};

use super::{first_data_key, rename_undefined};
use crate::domain::{Annotation, Project, Task, User};

/// A task as `GET /api/tasks/{id}/` shows it (without annotations and predictions, which callers
/// add when asked). `$undefined$` is renamed after the label config, as Label Studio does.
pub fn task(t: &Task, project: Option<&Project>) -> Value {
    let mut data = t.data.clone();
    rename_undefined(&mut data, project.and_then(|p| first_data_key(&p.label_config)).as_deref());
    json!({
        "id": t.id,
        "data": data,
        "meta": t.meta,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "inner_id": t.inner_id,
        "is_labeled": t.total_annotations > 0,
        "overlap": 1,
        "total_annotations": t.total_annotations,
        "cancelled_annotations": t.cancelled_annotations,
        "total_predictions": t.total_predictions,
        "comment_count": 0,
        "unresolved_comment_count": 0,
        "last_comment_updated_at": null,
        "project": t.project_id,
        "updated_by": null,
        "file_upload": null,
        "comment_authors": [],
        "storage_filename": t.storage_filename,
    })
}

/// `{id, first_name, last_name, email}`, Label Studio's `completed_by` in exports.
pub fn user_brief(u: &User) -> Value {
    json!({"id": u.id, "first_name": u.first_name, "last_name": u.last_name, "email": u.email})
}

/// An annotation as the annotations API returns it.
pub fn annotation(a: &Annotation) -> Value {
    json!({
        "id": a.id,
        "result": a.result,
        "was_cancelled": a.was_cancelled,
        "ground_truth": a.ground_truth,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
        "draft_created_at": null,
        "lead_time": a.lead_time,
        "import_id": null,
        "last_action": null,
        "bulk_created": false,
        "task": a.task_id,
        "project": a.project_id,
        "completed_by": a.completed_by,
        "updated_by": a.completed_by,
        "parent_prediction": null,
        "parent_annotation": null,
        "last_created_by": null,
    })
}

/// The document an export storage receives for an annotation
/// (`io_storages/serializers.py::StorageAnnotationSerializer`): the annotation, `completed_by`
/// expanded, and the task without its annotations.
pub fn export_document(a: &Annotation, task_row: &Task, project: Option<&Project>, author: Option<&User>) -> Value {
    let mut doc = annotation(a);
    let obj = doc.as_object_mut().expect("annotation is an object");
    obj.insert("completed_by".into(), author.map_or(Value::Null, user_brief));
    // Label Studio's `created_username` is "<email>, <user id>".
    obj.insert(
        "created_username".into(),
        Value::from(author.map_or(String::new(), |u| format!("{}, {}", u.email, u.id))),
    );
    obj.insert("created_ago".into(), Value::from(""));
    obj.insert("task".into(), task(task_row, project));
    doc
}
