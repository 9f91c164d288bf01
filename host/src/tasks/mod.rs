//! Task data: parsing task files (JSON, JSON array, JSONL) into tasks, and presenting task data
//! as Label Studio does.

pub mod document;
pub mod parse;
pub mod resolver;
pub mod uri;

pub use parse::{parse_task_file, task_from_value};

use std::sync::LazyLock;

use regex::Regex;

/// Key under which blob-mode tasks store their URI (Label Studio's `settings.DATA_UNDEFINED_NAME`).
pub const DATA_UNDEFINED: &str = "$undefined$";

/// The first data field an object tag of the label config reads (`<Image value="$image"/>` gives
/// `image`). Label Studio shows `$undefined$` under this name
/// (`core/label_config.py::replace_task_data_undefined_with_config_field`).
pub fn first_data_key(label_config: &str) -> Option<String> {
    static VALUE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"\bvalue\s*=\s*"\$([A-Za-z0-9_.\-]+)""#).unwrap());
    VALUE.captures(label_config).map(|c| c[1].to_string())
}

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
        let cfg = r#"<View><Image name="img" value="$image"/><Choices name="c" toName="img"><Choice value="cat"/></Choices><Text name="t" value="$text"/></View>"#;
        assert_eq!(first_data_key(cfg).as_deref(), Some("image"));
        let mut data = json!({"$undefined$": "/data/local-files/?d=a.jpg"});
        rename_undefined(&mut data, first_data_key(cfg).as_deref());
        assert_eq!(data, json!({"image": "/data/local-files/?d=a.jpg"}));
        assert_eq!(first_data_key("<View></View>"), None);
    }
}
