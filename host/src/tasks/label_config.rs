//! The project's labeling config (Label Studio's XML `label_config`), read with a maintained XML
//! parser: whether it is well-formed, and which data field its first object tag reads.

use std::sync::Mutex;

/// Checks that `config` is one well-formed XML document.
///
/// # Errors
/// The parser's message, with line and column (`roxmltree`'s wording).
pub fn check(config: &str) -> Result<(), String> {
    roxmltree::Document::parse(config).map(drop).map_err(|e| e.to_string())
}

/// The data field the first object tag reads: `<Image name="img" value="$image"/>` gives
/// `image`. Tags are taken in document order; comments, CDATA, processing instructions and tags
/// whose `value` is not a `$variable` (`View`, `Header`, `Choice value="cat"`) are passed over.
/// Label Studio shows blob-mode tasks' `$undefined$` under this name
/// (`core/label_config.py::replace_task_data_undefined_with_config_field`, which takes the first
/// of the project's `data_types`). `None` for a config that is not well-formed or has no such tag.
///
/// Called for every task shown or exported, mostly with the same config: the last answer is
/// kept, so a page of 10,000 tasks parses the XML once.
pub fn first_data_key(config: &str) -> Option<String> {
    static LAST: Mutex<Option<(String, Option<String>)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, key)) = last.as_ref().filter(|(seen, _)| seen == config) {
        return key.clone();
    }
    let key = read_data_key(config);
    *last = Some((config.to_string(), key.clone()));
    key
}

fn read_data_key(config: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(config).ok()?;
    doc.descendants()
        .filter(roxmltree::Node::is_element)
        .filter_map(|n| n.attribute("value")?.strip_prefix('$').map(str::to_string))
        .find(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One row per way of writing the same config; each gives the key shown.
    #[test]
    fn the_first_object_tag_value_names_the_data_key() {
        let rows: [(&str, Option<&str>); 9] = [
            (r#"<View><Image name="img" value="$image"/><Text name="t" value="$text"/></View>"#, Some("image")),
            (r#"<View><Image name='img' value='$photo'/></View>"#, Some("photo")),
            (r#"<View><Image name="i" value = "$spaced" /></View>"#, Some("spaced")),
            (r#"<View><!-- <Image value="$commented"/> --><Audio name="a" value="$audio"/></View>"#, Some("audio")),
            (r#"<View><Header value="Pick one"/><Text name="t" value="$text"/></View>"#, Some("text")),
            (r#"<View><![CDATA[<Image value="$cdata"/>]]><Text name="t" value="$body"/></View>"#, Some("body")),
            (
                r#"<View><Choices name="c" toName="t"><Choice value="cat"/></Choices><HyperText name="t" value="$html"/></View>"#,
                Some("html"),
            ),
            (r#"<View><Header value="$title"/><Image name="i" value="$image"/></View>"#, Some("title")),
            (r#"<View><Text name="t" value="plain"/></View>"#, None),
        ];
        for (config, key) in rows {
            assert_eq!(first_data_key(config).as_deref(), key, "{config}");
            assert_eq!(check(config), Ok(()), "{config}");
        }
        assert_eq!(first_data_key("<View></View>"), None);
    }

    #[test]
    fn a_config_that_is_not_well_formed_xml_is_refused_with_the_parsers_message() {
        for (config, message) in [
            ("<View><Image name=\"i\" value=\"$image\"></View>", "expected 'Image' tag, not 'View' at 1:38"),
            ("<View>", "the root node was opened but never closed"),
            ("", "the document does not have a root node"),
            ("<View a=1/>", "expected a quote not '1' at 1:9"),
        ] {
            assert_eq!(check(config), Err(message.to_string()), "{config}");
            assert_eq!(first_data_key(config), None);
        }
    }

    proptest! {
        /// Arbitrary text never panics the reader, and a key, when found, is a value of the text.
        #[test]
        fn any_text_is_read_without_panicking(config in ".{0,200}") {
            if let Some(key) = first_data_key(&config) {
                prop_assert!(config.contains(&key));
            }
        }

        /// A config built around any variable name gives that name back, however it is quoted.
        #[test]
        fn the_variable_comes_back_whatever_the_quoting(name in "[A-Za-z_][A-Za-z0-9_]{0,20}", single in any::<bool>()) {
            let q = if single { '\'' } else { '"' };
            let config = format!("<View><!-- x --><Header value={q}Title{q}/><Image name={q}i{q} value={q}${name}{q}/></View>");
            prop_assert_eq!(first_data_key(&config), Some(name));
        }
    }
}
