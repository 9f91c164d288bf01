//! Task data: parsing task files (JSON, JSON array, JSONL) into tasks, and presenting task data
//! as Label Studio does.

pub mod document;
pub mod label_config;
pub mod parse;
pub mod resolver;
pub mod stream;
pub mod uri;

pub use label_config::first_data_key;
pub use parse::{Authors, ground_truth_by_default, task_from_value};
pub use stream::{ParsedFile, parse_task_file};

/// Key under which blob-mode tasks store their URI (Label Studio's `settings.DATA_UNDEFINED_NAME`).
pub const DATA_UNDEFINED: &str = "$undefined$";

/// Renames the `$undefined$` key of task data to `key`, when there is such a key and no field of
/// that name already.
pub fn rename_undefined(data: &mut serde_json::Value, key: Option<&str>) {
    let (Some(key), Some(obj)) = (key, data.as_object_mut()) else { return };
    if obj.contains_key(key) {
        return;
    }
    if let Some(v) = obj.remove(DATA_UNDEFINED) {
        obj.insert(key.to_string(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn undefined_is_shown_under_the_first_object_tag_value() {
        let cfg = r#"<View><Image name="img" value="$image"/><Text name="t" value="$text"/></View>"#;
        assert_eq!(first_data_key(cfg).as_deref(), Some("image"));
        let mut data = json!({"$undefined$": "/data/local-files/?d=a.jpg"});
        rename_undefined(&mut data, first_data_key(cfg).as_deref());
        assert_eq!(data, json!({"image": "/data/local-files/?d=a.jpg"}));
    }
}
