//! Task files to tasks, with Label Studio's rules (`io_storages/utils.py::load_tasks_json_lso`,
//! `base_models.py::add_task`), except that a bad file is reported instead of failing the sync,
//! and a bad task in a file is reported and skipped instead of failing the file.

use serde_json::Value;

use super::stream::{Rows, TaskStream};
use crate::domain::{NewAnnotation, NewPrediction, NewTask};

/// Extensions accepted in JSON mode; a key without an extension passes too (as in Label Studio).
const TASK_EXTENSIONS: [&str; 2] = ["json", "jsonl"];

/// The tasks of one task file, and the bad tasks skipped in it ([`super::stream`]).
#[derive(Debug, Default)]
pub struct ParsedFile {
    /// `(row, task)`: row `None` for a file that is one task, else the element's position in a
    /// JSON array or the task's among the non-blank JSONL lines (0-based).
    pub rows: Rows,
    /// What was wrong with each skipped task, where it is (at most [`super::stream::MAX_REPORTED`]).
    pub problems: Vec<String>,
    /// How many tasks were skipped.
    pub skipped: u64,
}

/// Parses the object `key` holding `bytes`, whole, into tasks: [`TaskStream`] fed one chunk.
///
/// `check_extension` refuses file names whose extension is not a task format (files in object
/// stores and directories; a key-value store's keys are not file names).
///
/// # Errors
/// A message naming what is wrong with the file as a whole (extension, emptiness, encoding,
/// syntax and where), without the content.
pub fn parse_task_file(key: &str, bytes: &[u8], check_extension: bool) -> Result<ParsedFile, String> {
    let mut stream = TaskStream::new(key, check_extension)?;
    let mut rows = Vec::new();
    stream.feed(bytes, &mut rows)?;
    stream.finish(&mut rows)?;
    Ok(ParsedFile { rows, problems: stream.problems, skipped: stream.skipped })
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_task_file_(key: &str, bytes: &[u8]) -> Result<Vec<(Option<i64>, NewTask)>, String> {
        let parsed = parse_task_file(key, bytes, true)?;
        match parsed.problems.first() {
            Some(p) => Err(p.clone()),
            None => Ok(parsed.rows),
        }
    }

    #[test]
    fn key_value_keys_are_not_file_names() {
        assert_eq!(parse_task_file("tasks:v1.2", br#"{"t": 1}"#, false).unwrap().rows.len(), 1);
        assert!(parse_task_file("tasks:v1.2", br#"{"t": 1}"#, true).is_err());
    }

    fn data(rows: &[(Option<i64>, NewTask)]) -> Vec<(Option<i64>, Value)> {
        rows.iter().map(|(r, t)| (*r, t.data.clone())).collect()
    }

    #[test]
    fn dict_array_and_jsonl() {
        assert_eq!(data(&parse_task_file_("a.json", br#"{"text": "x"}"#).unwrap()), vec![(None, json!({"text": "x"}))]);
        assert_eq!(
            data(&parse_task_file_("a.json", br#" [{"t": 1}, {"data": {"t": 2}}]"#).unwrap()),
            vec![(Some(0), json!({"t": 1})), (Some(1), json!({"t": 2}))]
        );
        assert_eq!(
            data(&parse_task_file_("a.jsonl", b"{\"t\": 1}\n\n{\"t\": 2}\n").unwrap()),
            vec![(Some(0), json!({"t": 1})), (Some(1), json!({"t": 2}))]
        );
        assert_eq!(data(&parse_task_file_("noext", br#"{"t": 1}"#).unwrap()), vec![(None, json!({"t": 1}))]);
    }

    #[test]
    fn data_with_annotations_and_predictions() {
        let rows = parse_task_file_(
            "t.json",
            br#"{"data": {"image": "x.jpg"}, "annotations": [{"result": [{"a": 1}]}], "predictions": [{"result": [], "score": 0.5, "model_version": "m1"}]}"#,
        )
        .unwrap();
        let t = &rows[0].1;
        assert_eq!(t.data, json!({"image": "x.jpg"}));
        assert_eq!(t.annotations[0].result, json!([{"a": 1}]));
        assert_eq!((t.predictions[0].score, t.predictions[0].model_version.as_str()), (Some(0.5), "m1"));
    }

    #[test]
    fn bad_files_say_why() {
        assert_eq!(parse_task_file_("a.json", b"  \n").unwrap_err(), "the file is empty");
        assert!(parse_task_file_("a.txt", b"{}").unwrap_err().starts_with("\".txt\" is not a task file extension"));
        assert!(parse_task_file_("a.json", b"{\"t\": ").unwrap_err().starts_with("invalid JSON"));
        assert_eq!(parse_task_file_("a.json", b"{\"t\": \xff}").unwrap_err(), "not UTF-8 text (byte 6)");
        assert!(parse_task_file_("a.json", b"hello").unwrap_err().starts_with("not JSON-formatted tasks"));
        assert_eq!(parse_task_file_("a.json", b"[1]").unwrap_err(), "element 0: a task must be a JSON object");
        assert!(parse_task_file_("a.json", br#"{"annotations": []}"#).unwrap_err().contains("need the task data"));
        assert!(parse_task_file_("a.jsonl", b"{\"t\": 1}\n{oops\n").unwrap_err().starts_with("line 2: invalid JSON"));
    }
}
