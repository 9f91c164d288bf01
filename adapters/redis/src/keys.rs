//! Key rules: the `SCAN MATCH` pattern of a key prefix, and the listing cursor handed to the host.

use stowage_sdk::Error;

/// Escapes Redis glob metacharacters (`*`, `?`, `[`, `]`, `\`) so `text` matches itself only.
pub fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `MATCH` pattern of keys starting with `path` then `prefix` (both literal).
pub fn scan_pattern(path: &str, prefix: &str) -> String {
    format!("{}{}*", glob_escape(path), glob_escape(prefix))
}

/// Where a listing stands: the `SCAN` cursor to continue from (`"0"` once the iteration ended)
/// and keys a `SCAN` batch returned beyond the previous page, listed first on the next one
/// (a batch can exceed its `COUNT` hint; a page never exceeds its size).
///
/// Text form: the SCAN cursor, then `:` and a JSON array of the pending keys when there are any
/// (`"1536"`, `"0:[\"a\",\"b\"]"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListCursor {
    pub scan: String,
    pub pending: Vec<String>,
}

impl ListCursor {
    pub fn encode(&self) -> String {
        if self.pending.is_empty() {
            self.scan.clone()
        } else {
            let pending = serde_json::to_string(&self.pending).expect("strings serialize");
            format!("{}:{pending}", self.scan)
        }
    }

    /// # Errors
    /// `invalid-config` for text no `encode` made.
    pub fn decode(text: &str) -> Result<ListCursor, Error> {
        let bad = || Error::InvalidConfig(format!("{text:?} is not a redis listing cursor"));
        let (scan, pending) = match text.split_once(':') {
            None => (text, Vec::new()),
            Some((scan, pending)) => (scan, serde_json::from_str::<Vec<String>>(pending).map_err(|_| bad())?),
        };
        if scan.is_empty() || !scan.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(ListCursor { scan: scan.to_string(), pending })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_metacharacters_are_escaped() {
        assert_eq!(glob_escape("tasks:"), "tasks:");
        assert_eq!(glob_escape(r"a*b?c[d]e\f"), r"a\*b\?c\[d\]e\\f");
        assert_eq!(glob_escape("^!-{}"), "^!-{}", "only * ? [ ] \\ are special in Redis globs");
        assert_eq!(scan_pattern("", ""), "*");
        assert_eq!(scan_pattern("tasks:", ""), "tasks:*");
        assert_eq!(scan_pattern("t[1]*", "x?"), r"t\[1\]\*x\?*");
    }

    #[test]
    fn cursors_round_trip() {
        for c in [
            ListCursor { scan: "1536".into(), pending: vec![] },
            ListCursor { scan: "0".into(), pending: vec!["a".into(), "with:colon \"q\"".into(), "日本".into()] },
            ListCursor { scan: "18446744073709551615".into(), pending: vec!["".into()] },
        ] {
            assert_eq!(ListCursor::decode(&c.encode()).unwrap(), c);
        }
        assert_eq!(ListCursor { scan: "12".into(), pending: vec![] }.encode(), "12");
        for bad in ["", "x", "12:", "12:not json", ":[]", "-1", "1 2"] {
            assert!(matches!(ListCursor::decode(bad), Err(Error::InvalidConfig(_))), "{bad}");
        }
    }
}
