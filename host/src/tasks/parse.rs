//! One task from its JSON, and which file names hold tasks, with Label Studio's rules
//! (`io_storages/utils.py::load_tasks_json_lso`, `base_models.py::add_task`). Task files as a
//! whole are read by [`super::stream`].

use serde_json::Value;

use crate::domain::{NewAnnotation, NewPrediction, NewTask};

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

/// One task from a JSON value: `{"data": {...}, "annotations": [...], "predictions": [...]}`,
/// or a plain object that is the task data itself.
pub fn task_from_value(v: Value) -> Result<NewTask, String> {
    let Value::Object(mut obj) = v else {
        return Err("a task must be a JSON object".into());
    };
    match obj.remove("data") {
        Some(Value::Object(data)) => {
            let annotations = match obj.remove("annotations") {
                None | Some(Value::Null) => vec![],
                Some(Value::Array(items)) => items.into_iter().map(annotation).collect::<Result<_, _>>()?,
                Some(_) => return Err("\"annotations\" must be a list".into()),
            };
            let predictions = match obj.remove("predictions") {
                None | Some(Value::Null) => vec![],
                Some(Value::Array(items)) => items.into_iter().map(prediction).collect::<Result<_, _>>()?,
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

fn annotation(mut v: Value) -> Result<NewAnnotation, String> {
    let result = result_of(&mut v)?;
    Ok(NewAnnotation {
        result,
        completed_by: None,
        was_cancelled: v.get("was_cancelled").and_then(Value::as_bool).unwrap_or(false),
        ground_truth: v.get("ground_truth").and_then(Value::as_bool).unwrap_or(false),
        lead_time: v.get("lead_time").and_then(Value::as_f64),
    })
}

fn prediction(mut v: Value) -> Result<NewPrediction, String> {
    let result = result_of(&mut v)?;
    Ok(NewPrediction {
        result,
        score: v.get("score").and_then(Value::as_f64),
        model_version: v.get("model_version").and_then(Value::as_str).unwrap_or_default().to_string(),
    })
}
