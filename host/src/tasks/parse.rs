//! One task from its JSON, and which file names hold tasks, with Label Studio's rules
//! (`io_storages/utils.py::load_tasks_json_lso`, `base_models.py::add_task`). Task files as a
//! whole are read by [`super::stream`].

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::domain::{NewAnnotation, NewPrediction, NewTask};

/// The users an imported annotation may name as `completed_by`, by id or by email (Label
/// Studio's `tasks/serializers.py::_insert_valid_completed_by`). Empty: no annotation may name
/// one.
#[derive(Debug, Default, Clone)]
pub struct Authors {
    ids: HashSet<i64>,
    by_email: HashMap<String, i64>,
}

impl Authors {
    /// From `(id, email)` of every user.
    pub fn new(users: impl IntoIterator<Item = (i64, String)>) -> Authors {
        let by_email: HashMap<String, i64> = users.into_iter().map(|(id, email)| (email, id)).collect();
        Authors { ids: by_email.values().copied().collect(), by_email }
    }

    /// The user id `completed_by` names: absent or null is none; a number must be a user's id,
    /// an object `{"email": ...}` a user's email (an export document's `completed_by` object
    /// has both, and the email decides, as in Label Studio). Errors use Label Studio's words.
    fn resolve(&self, completed_by: Option<&Value>) -> Result<Option<i64>, String> {
        match completed_by {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_i64().filter(|id| self.ids.contains(id)) {
                Some(id) => Ok(Some(id)),
                None => Err(format!("Unknown annotator's ID {n}")),
            },
            Some(Value::Object(o)) => match o.get("email") {
                Some(Value::String(email)) => match self.by_email.get(email) {
                    Some(id) => Ok(Some(*id)),
                    None => Err(format!("Unknown annotator's email {email}")),
                },
                _ => Err("It's expected to have 'email' field in 'completed_by' data in annotations".into()),
            },
            Some(other) => {
                Err(format!("Import data contains completed_by={other} which is not a valid annotator's email or ID"))
            }
        }
    }
}

/// An optional timestamp field (`created_at`, `updated_at`): RFC 3339, or without an offset
/// (taken as UTC), rewritten in Label Studio's API format (`2026-11-24T23:06:27.347755Z`).
fn timestamp(v: &Value, name: &str) -> Result<Option<String>, String> {
    let text = match v.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => text.trim(),
        Some(other) => return Err(format!("\"{name}\" must be a date-time string, not {other}")),
    };
    let utc = chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc()))
        .map_err(|_| format!("\"{name}\" is not a date-time (like 2021-03-09T21:52:49.513742Z): {text:?}"))?;
    Ok(Some(utc.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()))
}

/// Extensions accepted in JSON mode; a key without an extension passes too (as in Label Studio).
const TASK_EXTENSIONS: [&str; 2] = ["json", "jsonl"];

/// Refuses a file name whose extension is not a task format's.
pub(super) fn check_extension(key: &str) -> Result<(), String> {
    let name = key.rsplit('/').next().unwrap_or(key);
    if let Some((_, ext)) = name.rsplit_once('.') {
        let ext = ext.to_ascii_lowercase();
        if !TASK_EXTENSIONS.contains(&ext.as_str()) {
            return Err(format!(
                "\".{ext}\" is not a task file extension (expected .json or .jsonl); turn on \"Treat every object as a source file\" (use_blob_urls) to import files"
            ));
        }
    }
    Ok(())
}

/// Marks the annotations of `task` (a task in Label Studio's import format) that do not say
/// `ground_truth` as ground truth, as Label Studio's project import does
/// (`tasks/serializers.py::TaskSerializerBulk.add_annotations`: `pop('ground_truth', True)`);
/// its storage sync (`AnnotationSerializer`, the model's default) and [`task_from_value`] take
/// them as not. Anything else is left as it is.
pub fn ground_truth_by_default(task: &mut Value) {
    let Some(Value::Array(annotations)) = task.get_mut("annotations") else { return };
    for a in annotations.iter_mut().filter_map(Value::as_object_mut) {
        a.entry("ground_truth").or_insert(Value::Bool(true));
    }
}

/// One task from a JSON value: `{"data": {...}, "annotations": [...], "predictions": [...]}`,
/// or a plain object that is the task data itself. Annotations name their author among
/// `authors`.
///
/// # Errors
/// What is wrong with the task, in words for its file's report (an unknown author, a bad
/// timestamp, annotations without `data`).
pub fn task_from_value(v: Value, authors: &Authors) -> Result<NewTask, String> {
    let Value::Object(mut obj) = v else {
        return Err("a task must be a JSON object".into());
    };
    match obj.remove("data") {
        Some(Value::Object(data)) => {
            let annotations = match obj.remove("annotations") {
                None | Some(Value::Null) => vec![],
                Some(Value::Array(items)) => {
                    let each = items
                        .into_iter()
                        .enumerate()
                        .map(|(i, a)| annotation(a, authors).map_err(|e| format!("annotation {i}: {e}")));
                    each.collect::<Result<_, _>>()?
                }
                Some(_) => return Err("\"annotations\" must be a list".into()),
            };
            let predictions = match obj.remove("predictions") {
                None | Some(Value::Null) => vec![],
                Some(Value::Array(items)) => {
                    let each = items
                        .into_iter()
                        .enumerate()
                        .map(|(i, p)| prediction(p).map_err(|e| format!("prediction {i}: {e}")));
                    each.collect::<Result<_, _>>()?
                }
                Some(_) => return Err("\"predictions\" must be a list".into()),
            };
            let meta = obj.remove("meta").filter(Value::is_object).unwrap_or(Value::Object(Default::default()));
            Ok(NewTask { data: Value::Object(data), meta, annotations, predictions })
        }
        Some(other) => {
            // "data" that is not an object is ordinary task data (Label Studio's "plain dict").
            obj.insert("data".into(), other);
            plain(obj)
        }
        None => plain(obj),
    }
}

fn plain(obj: serde_json::Map<String, Value>) -> Result<NewTask, String> {
    if obj.contains_key("annotations") || obj.contains_key("predictions") {
        return Err("\"annotations\" and \"predictions\" need the task data under a \"data\" object".into());
    }
    Ok(NewTask { data: Value::Object(obj), ..Default::default() })
}

/// The result list of an annotation or prediction: `{"result": [...]}` or a bare list.
fn result_of(v: &mut Value) -> Result<Value, String> {
    match v {
        Value::Array(_) => Ok(v.take()),
        Value::Object(o) => match o.remove("result") {
            Some(r @ Value::Array(_)) => Ok(r),
            None | Some(Value::Null) => Ok(Value::Array(vec![])),
            Some(_) => Err("\"result\" must be a list".into()),
        },
        _ => Err("an annotation or prediction must be an object".into()),
    }
}

/// An annotation as Label Studio's `AnnotationSerializer` takes it from a storage's task file
/// (`io_storages/base_models.py::add_task`): `ground_truth` and `was_cancelled` default to
/// false, `lead_time` in seconds. Unlike Label Studio, which drops the file's `created_at` and
/// `updated_at` for its own clock and drops an annotation with an unknown author silently, the
/// timestamps are kept and an unknown author is an error of the task.
fn annotation(mut v: Value, authors: &Authors) -> Result<NewAnnotation, String> {
    let result = result_of(&mut v)?;
    let created_at = timestamp(&v, "created_at")?;
    Ok(NewAnnotation {
        result,
        completed_by: authors.resolve(v.get("completed_by"))?,
        was_cancelled: v.get("was_cancelled").and_then(Value::as_bool).unwrap_or(false),
        ground_truth: v.get("ground_truth").and_then(Value::as_bool).unwrap_or(false),
        lead_time: v.get("lead_time").and_then(Value::as_f64),
        updated_at: timestamp(&v, "updated_at")?.or_else(|| created_at.clone()),
        created_at,
    })
}

fn prediction(mut v: Value) -> Result<NewPrediction, String> {
    let result = result_of(&mut v)?;
    Ok(NewPrediction {
        result,
        score: v.get("score").and_then(Value::as_f64),
        model_version: v.get("model_version").and_then(Value::as_str).unwrap_or_default().to_string(),
        created_at: timestamp(&v, "created_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `completed_by` as Label Studio's importer reads it: an id, an object whose email decides,
    /// null or absent; anything else is refused in its words.
    #[test]
    fn authors_are_found_by_id_or_email() {
        let authors = Authors::new([(1, "a@x".to_string()), (7, "b@x".to_string())]);
        let rows: [(Value, Result<Option<i64>, &str>); 8] = [
            (json!(7), Ok(Some(7))),
            (json!({"email": "a@x", "id": 7}), Ok(Some(1))),
            (json!(null), Ok(None)),
            (json!(2), Err("Unknown annotator's ID 2")),
            (json!(1.5), Err("Unknown annotator's ID 1.5")),
            (json!({"email": "c@x"}), Err("Unknown annotator's email c@x")),
            (json!({"id": 1}), Err("It's expected to have 'email' field in 'completed_by' data in annotations")),
            (json!([1]), Err("Import data contains completed_by=[1] which is not a valid annotator's email or ID")),
        ];
        for (v, want) in rows {
            assert_eq!(authors.resolve(Some(&v)), want.map_err(str::to_string), "{v}");
        }
        assert_eq!(authors.resolve(None), Ok(None));
    }

    #[test]
    fn timestamps_are_kept_in_label_studios_format() {
        let at = |v: Value| timestamp(&json!({ "created_at": v }), "created_at");
        assert_eq!(at(json!("2021-03-09T21:52:49.513742Z")), Ok(Some("2021-03-09T21:52:49.513742Z".into())));
        assert_eq!(at(json!("2021-03-10T08:00:00+02:00")), Ok(Some("2021-03-10T06:00:00.000000Z".into())));
        assert_eq!(at(json!(" 2021-03-09T21:52:49.5 ")), Ok(Some("2021-03-09T21:52:49.500000Z".into())));
        assert_eq!(at(json!(null)), Ok(None));
        assert!(at(json!("2021-03-09")).unwrap_err().starts_with("\"created_at\" is not a date-time"));
        assert_eq!(at(json!(5)), Err("\"created_at\" must be a date-time string, not 5".to_string()));
    }

    /// Every field of an annotation and a prediction survives; `updated_at` defaults to `created_at`.
    #[test]
    fn annotations_and_predictions_keep_their_fields() {
        let t = task_from_value(
            json!({"data": {"t": 1},
                   "annotations": [{"result": [{"v": 1}], "was_cancelled": true, "ground_truth": true, "lead_time": 3.5,
                                    "created_at": "2021-01-01T00:00:00Z", "completed_by": 1}],
                   "predictions": [{"result": [], "score": 0.5, "model_version": "m", "created_at": "2021-01-02T00:00:00Z"}]}),
            &Authors::new([(1, "a@x".to_string())]),
        )
        .unwrap();
        let a = &t.annotations[0];
        assert_eq!(
            (&a.result, a.completed_by, a.was_cancelled, a.ground_truth),
            (&json!([{"v": 1}]), Some(1), true, true)
        );
        assert_eq!((a.lead_time, a.created_at.as_deref()), (Some(3.5), Some("2021-01-01T00:00:00.000000Z")));
        assert_eq!(a.updated_at, a.created_at);
        let p = &t.predictions[0];
        assert_eq!(
            (p.score, p.model_version.as_str(), p.created_at.as_deref()),
            (Some(0.5), "m", Some("2021-01-02T00:00:00.000000Z"))
        );
        let e =
            task_from_value(json!({"data": {}, "predictions": [{}, {"result": 1}]}), &Authors::default()).unwrap_err();
        assert_eq!(e, "prediction 1: \"result\" must be a list");
    }

    /// Project import takes an annotation as ground truth unless it says otherwise; a storage's
    /// task file does not.
    #[test]
    fn project_import_marks_ground_truth_by_default() {
        let task = json!({"data": {}, "annotations": [{"result": []}, {"result": [], "ground_truth": false}, 3]});
        let truths = |t: Value| -> Vec<bool> {
            let mut t = t;
            t["annotations"].as_array_mut().unwrap().pop();
            task_from_value(t, &Authors::default()).unwrap().annotations.iter().map(|a| a.ground_truth).collect()
        };
        assert_eq!(truths(task.clone()), [false, false]);
        let mut imported = task;
        ground_truth_by_default(&mut imported);
        assert_eq!(imported["annotations"][2], json!(3));
        assert_eq!(truths(imported), [true, false]);
        let mut plain = json!({"text": "x", "annotations": "not a list"});
        ground_truth_by_default(&mut plain);
        assert_eq!(plain, json!({"text": "x", "annotations": "not a list"}));
    }
}
