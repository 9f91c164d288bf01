//! Task files read as a stream: bytes go in chunk by chunk (ranged reads of the object), tasks
//! come out as soon as they are complete, so a file of any size is read with memory for one
//! chunk and one task, never the whole file or all its tasks.
//!
//! The formats are Label Studio's (`io_storages/utils.py::load_tasks_json_lso`): one JSON
//! object (one task, row `None`), a JSON array (row = element index) or JSON Lines (row = the
//! task's position among the non-blank lines). A task that is wrong in a way that leaves the
//! rest readable (a JSONL line that is not JSON or not a task, an array element that is not a
//! task) is reported and skipped, and the other tasks import; a syntax error inside an array
//! ends the file there: the elements before it import. Label Studio fails the whole file on the
//! first bad task instead.

use serde_json::Value;

use std::sync::Arc;

use super::parse::{Authors, check_extension, task_from_value};
use crate::domain::NewTask;

/// Rows of one file, in order: `(row, task)`; row `None` for a file that is one task, else the
/// element's position in a JSON array or the task's among the non-blank JSONL lines (0-based).
pub type Rows = Vec<(Option<i64>, NewTask)>;

/// Bad tasks reported per file at most (the rest are counted in [`TaskStream::skipped`]).
pub const MAX_REPORTED: usize = 10;
/// Largest single task (a JSONL line, an array element, a one-object file), bytes: a task must
/// fit in memory, a file need not.
pub const MAX_TASK_BYTES: usize = 64 << 20;

/// What the file is, once its first bytes are seen.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    /// Nothing but whitespace (and a BOM) so far.
    Unknown,
    /// A JSON array: the scanner stands inside it.
    Array,
    /// Starts with `{`: one object, or JSON Lines when a second value follows the first line.
    ObjectOrLines,
    /// JSON Lines, decided.
    Lines,
    /// The array's closing `]` was read: only whitespace may follow.
    ArrayDone,
    /// One object over several lines: kept whole until the end.
    Whole,
}

/// An incremental reader of one task file. [`TaskStream::feed`] each chunk in order, then
/// [`TaskStream::finish`]; both append the tasks completed so far to `out`.
pub struct TaskStream {
    format: Format,
    /// Bytes received and not yet consumed (an incomplete line, element or object).
    pending: Vec<u8>,
    /// Where scanning stopped in `pending` (array scanning resumes there, not at 0).
    scanned: usize,
    /// Array scanner state at `scanned`: nesting depth inside the array, inside a string, after
    /// a backslash, whether the current element has started.
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// Line number (1-based) of `pending[0]`, for messages.
    line: u64,
    /// Line number at `pending[scanned]` (array scanning).
    scan_line: u64,
    /// Next row number: array index, or JSONL task count.
    row: i64,
    /// JSON Lines: the first line's task, held until a second line decides between one object
    /// (row `None`) and JSON Lines (row 0).
    first: Option<(u64, Value)>,
    /// Problems found, for the run's traceback; `skipped` counts the bad tasks.
    pub problems: Vec<String>,
    pub skipped: u64,
    /// The UTF-8 check carries a split character over to the next chunk.
    utf8_carry: Vec<u8>,
    bytes_seen: u64,
    /// Who annotations may name as `completed_by`.
    authors: Arc<Authors>,
}

impl TaskStream {
    /// A reader for the object `key`. `check_ext` refuses file names whose extension is not a
    /// task format (files in object stores and directories; a key-value store's keys are not
    /// file names).
    ///
    /// # Errors
    /// The extension is not a task file's.
    pub fn new(key: &str, check_ext: bool) -> Result<TaskStream, String> {
        if check_ext {
            check_extension(key)?;
        }
        Ok(TaskStream {
            format: Format::Unknown,
            pending: Vec::new(),
            scanned: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            line: 1,
            scan_line: 1,
            row: 0,
            first: None,
            problems: Vec::new(),
            skipped: 0,
            utf8_carry: Vec::new(),
            bytes_seen: 0,
            authors: Arc::default(),
        })
    }

    /// Lets annotations name these users as `completed_by` (by default none).
    pub fn with_authors(mut self, authors: Arc<Authors>) -> TaskStream {
        self.authors = authors;
        self
    }

    /// Takes the next chunk of the file.
    ///
    /// # Errors
    /// The file cannot be read on: not UTF-8, not a task format, or a syntax error inside an
    /// array. Tasks completed before the error are in `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Rows) -> Result<(), String> {
        self.check_utf8(chunk)?;
        self.bytes_seen += chunk.len() as u64;
        self.pending.extend_from_slice(chunk);
        self.drain(out, false)
    }

    /// Ends the file.
    ///
    /// # Errors
    /// As [`TaskStream::feed`], and an empty file or array, an unterminated array or object.
    pub fn finish(&mut self, out: &mut Rows) -> Result<(), String> {
        if !self.utf8_carry.is_empty() {
            return Err(format!("not UTF-8 text (byte {})", self.bytes_seen - self.utf8_carry.len() as u64));
        }
        self.drain(out, true)?;
        match self.format {
            Format::Unknown => Err("the file is empty".into()),
            Format::Array => Err("invalid JSON array: the file ends before the array is closed".into()),
            Format::ArrayDone if self.row == 0 => Err("the JSON array is empty".into()),
            _ => Ok(()),
        }
    }

    /// Checks that the file is UTF-8 so far; a character split between chunks is carried over.
    fn check_utf8(&mut self, chunk: &[u8]) -> Result<(), String> {
        let carried = self.utf8_carry.len();
        let joined;
        let bytes: &[u8] = if carried == 0 {
            chunk
        } else {
            joined = [std::mem::take(&mut self.utf8_carry).as_slice(), chunk].concat();
            &joined
        };
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                self.utf8_carry = bytes[e.valid_up_to()..].to_vec();
                Ok(())
            }
            Err(e) => {
                Err(format!("not UTF-8 text (byte {})", self.bytes_seen - carried as u64 + e.valid_up_to() as u64))
            }
        }
    }

    fn drain(&mut self, out: &mut Rows, eof: bool) -> Result<(), String> {
        loop {
            match self.format {
                Format::Unknown => {
                    let skip = leading_blank(&self.pending);
                    self.consume(skip);
                    // A byte-order mark cut by the chunk's end: wait for the rest of it.
                    let bom = "\u{feff}".as_bytes();
                    if !eof && !self.pending.is_empty() && bom.starts_with(&self.pending) {
                        return Ok(());
                    }
                    match self.pending.first() {
                        None => return Ok(()),
                        Some(b'[') => {
                            self.consume(1);
                            self.format = Format::Array;
                            (self.scanned, self.scan_line) = (0, self.line);
                        }
                        Some(b'{') => self.format = Format::ObjectOrLines,
                        Some(_) => {
                            return Err(
                                "not JSON-formatted tasks (expected a JSON object, a JSON array or JSON Lines)".into(),
                            );
                        }
                    }
                }
                Format::Array => return self.array(out, eof),
                Format::ArrayDone => {
                    let skip = leading_blank(&self.pending);
                    self.consume(skip);
                    if !self.pending.is_empty() {
                        return Err(format!("invalid JSON array: trailing characters at line {}", self.line));
                    }
                    return Ok(());
                }
                Format::ObjectOrLines | Format::Lines => return self.lines(out, eof),
                Format::Whole => return self.whole_object(out, eof),
            }
        }
    }

    /// Drops `n` consumed bytes from the front of `pending`, counting their lines.
    fn consume(&mut self, n: usize) {
        self.line += newlines(&self.pending[..n]);
        self.pending.drain(..n);
        self.scanned = self.scanned.saturating_sub(n);
    }

    /// JSON Lines (or one object): each complete line is a task. A file starting with `{`
    /// whose first non-blank line is not a whole JSON value is one object spread over lines.
    fn lines(&mut self, out: &mut Rows, eof: bool) -> Result<(), String> {
        let mut pos = 0;
        let mut line_no = self.line;
        let result = loop {
            let rest = &self.pending[pos..];
            // The first line's bytes before `scanned` were searched already (a long line fed
            // in many slices is scanned once, not once per slice).
            let searched = if pos == 0 { self.scanned.min(rest.len()) } else { 0 };
            let end = match rest[searched..].iter().position(|&b| b == b'\n') {
                Some(i) => searched + i + 1,
                None if eof && !rest.is_empty() => rest.len(),
                None => {
                    self.scanned = rest.len();
                    break Ok(());
                }
            };
            self.scanned = 0;
            // JSON's whitespace only: a line starting with U+00A0 is not JSON, as for any parser.
            let text = std::str::from_utf8(&rest[..end]).expect("checked UTF-8").trim_matches(JSON_BLANK);
            let this_line = line_no;
            if text.is_empty() {
                pos += end;
                line_no += 1;
                continue;
            }
            if self.format == Format::ObjectOrLines && self.first.is_none() {
                let parsed = serde_json::from_str::<Value>(text);
                // A broken line written as one object (`{...}`) followed by a line that is a
                // JSON value by itself is JSON Lines, not an object over several lines (after
                // an object's line ending in `}` comes `,`, `]` or `}`, never a value): it is
                // reported and the other lines import (Label Studio fails the whole file).
                let lines_follow = match &parsed {
                    Err(_) if text.len() > 1 && text.starts_with('{') && text.ends_with('}') => {
                        next_line_is_a_value(&rest[end..], eof)
                    }
                    _ => Some(false),
                };
                match (parsed, lines_follow) {
                    (Ok(v), _) => self.first = Some((this_line, v)),
                    (Err(e), Some(true)) => {
                        self.format = Format::Lines;
                        self.row += 1;
                        self.bad(format!("line {this_line}: invalid JSON: {e}"));
                    }
                    // The next line has not come yet: decide when it has.
                    (Err(_), None) => {
                        self.scanned = 0;
                        break Ok(());
                    }
                    // Not one line: one object over many lines, read whole at the end.
                    (Err(_), Some(false)) => {
                        self.consume_lines(pos, line_no);
                        self.format = Format::Whole;
                        return self.whole_object(out, eof);
                    }
                }
            } else {
                let v = serde_json::from_str::<Value>(text);
                self.flush_first(out, false);
                self.format = Format::Lines;
                match v {
                    Ok(v) => self.push(out, v, this_line),
                    // Its row is used up all the same: rows stay the tasks' positions among
                    // the non-blank lines, so fixing the line later moves no other task.
                    Err(e) => {
                        self.row += 1;
                        self.bad(format!("line {this_line}: invalid JSON: {e}"));
                    }
                }
            }
            pos += end;
            line_no += 1;
        };
        self.consume_lines(pos, line_no);
        if self.pending.len() > MAX_TASK_BYTES {
            return Err(format!("line {} is longer than {} MiB", self.line, MAX_TASK_BYTES >> 20));
        }
        if eof {
            self.flush_first(out, true);
        }
        result
    }

    /// Drops the first `n` bytes of `pending`, which end line `line - 1`.
    fn consume_lines(&mut self, n: usize, line: u64) {
        self.pending.drain(..n);
        self.line = line;
    }

    /// The first line's task, once the file is known to be JSON Lines (`more`: row 0) or one
    /// object (row `None`).
    fn flush_first(&mut self, out: &mut Rows, at_eof: bool) {
        if let Some((line, v)) = self.first.take() {
            if at_eof && self.format == Format::ObjectOrLines {
                match task_from_value(v, &self.authors) {
                    Ok(t) => out.push((None, t)),
                    Err(e) => self.bad(e),
                }
                self.row = 1;
            } else {
                self.push(out, v, line);
            }
        }
    }

    /// One object spread over several lines: kept until the end, then parsed whole.
    fn whole_object(&mut self, out: &mut Rows, eof: bool) -> Result<(), String> {
        if self.pending.len() > MAX_TASK_BYTES {
            return Err(format!("one JSON object of more than {} MiB: split it into tasks", MAX_TASK_BYTES >> 20));
        }
        if !eof {
            return Ok(());
        }
        let text = std::str::from_utf8(&self.pending).expect("checked UTF-8");
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return Err(format!("invalid JSON: {e}")),
        };
        self.pending.clear();
        let t = task_from_value(v, &self.authors)?;
        out.push((None, t));
        self.row = 1;
        Ok(())
    }

    fn push(&mut self, out: &mut Rows, v: Value, line: u64) {
        let row = self.row;
        self.row += 1;
        match task_from_value(v, &self.authors) {
            Ok(t) => out.push((Some(row), t)),
            Err(e) => self.bad(format!("line {line}: {e}")),
        }
    }

    fn bad(&mut self, message: String) {
        self.skipped += 1;
        if self.problems.len() < MAX_REPORTED {
            self.problems.push(message);
        }
    }

    /// Inside an array: cut complete elements at depth-0 commas and the closing `]`. Lines are
    /// counted as the scan passes them (once per byte), for messages.
    fn array(&mut self, out: &mut Rows, eof: bool) -> Result<(), String> {
        let mut start = 0;
        // Line at `start` (the current element's first byte) and at `i`.
        let mut start_line = self.line;
        let mut line = self.scan_line;
        let mut i = self.scanned;
        while i < self.pending.len() {
            let b = self.pending[i];
            if b == b'\n' {
                line += 1;
            }
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' if self.depth > 0 => self.depth -= 1,
                    b',' | b']' if self.depth == 0 => {
                        let element = &self.pending[start..i];
                        let closing = b == b']';
                        let lead = leading_blank(element);
                        let element_line = start_line + newlines(&element[..lead]);
                        if lead == element.len() && closing && self.row == 0 {
                            // `[]` or `[ ]`: no element.
                        } else if lead == element.len() {
                            return Err(format!("invalid JSON array: expected a value at line {element_line}"));
                        } else {
                            let parsed: Result<Value, _> = serde_json::from_slice(element);
                            let row = self.row;
                            self.row += 1;
                            match parsed {
                                Ok(v) => match task_from_value(v, &self.authors) {
                                    Ok(t) => out.push((Some(row), t)),
                                    Err(e) => self.bad(format!("element {row}: {e}")),
                                },
                                Err(e) => {
                                    return Err(format!(
                                        "invalid JSON array: element {row} (line {element_line}): {e}"
                                    ));
                                }
                            }
                        }
                        start = i + 1;
                        start_line = line;
                        if closing {
                            self.consume(start);
                            self.scanned = 0;
                            self.format = Format::ArrayDone;
                            return self.drain(out, eof);
                        }
                    }
                    b'}' | b']' => {
                        return Err(format!("invalid JSON array: unexpected '{}' at line {line}", b as char));
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        self.consume(start);
        self.scanned = self.pending.len();
        self.scan_line = line;
        if self.pending.len() > MAX_TASK_BYTES {
            return Err(format!(
                "invalid JSON array: element {} is larger than {} MiB",
                self.row,
                MAX_TASK_BYTES >> 20
            ));
        }
        Ok(())
    }
}

fn newlines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// JSON's insignificant whitespace (RFC 8259, section 2).
const JSON_BLANK: &[char] = &[' ', '\t', '\n', '\r'];

/// Whether the first non-blank line of `after` is a JSON value by itself; `None` while that
/// line is not complete (more bytes are to come).
fn next_line_is_a_value(after: &[u8], eof: bool) -> Option<bool> {
    let mut rest = after;
    loop {
        let (line, more) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None if eof => (rest, None),
            None => return None,
        };
        let Ok(text) = std::str::from_utf8(line) else { return Some(false) };
        let text = text.trim_matches(JSON_BLANK);
        if !text.is_empty() {
            return Some(serde_json::from_str::<Value>(text).is_ok());
        }
        match more {
            Some(more) => rest = more,
            None => return Some(false),
        }
    }
}

/// JSON's whitespace and a UTF-8 byte-order mark at the start of `b`.
fn leading_blank(b: &[u8]) -> usize {
    let mut n = 0;
    loop {
        if b[n..].starts_with("\u{feff}".as_bytes()) {
            n += 3;
        } else if b.get(n).is_some_and(|&c| JSON_BLANK.contains(&char::from(c))) {
            n += 1;
        } else {
            return n;
        }
    }
}

/// The tasks of one task file read whole, and the bad tasks skipped in it.
#[derive(Debug, Default)]
pub struct ParsedFile {
    /// `(row, task)`: row `None` for a file that is one task, else the element's position in a
    /// JSON array or the task's among the non-blank JSONL lines (0-based).
    pub rows: Rows,
    /// What was wrong with each skipped task, where it is (at most [`MAX_REPORTED`]).
    pub problems: Vec<String>,
    /// How many tasks were skipped.
    pub skipped: u64,
}

/// Parses the object `key` holding `bytes`, whole, into tasks: a [`TaskStream`] fed one chunk.
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// What reading a file gave: the rows as (row, data), the problems, and the error that
    /// ended the file, if any.
    type Read = (Vec<(Option<i64>, Value)>, Vec<String>, Option<String>);

    /// Reads `bytes` in chunks of `chunk` bytes.
    fn read(bytes: &[u8], chunk: usize) -> Read {
        let mut s = TaskStream::new("t.json", true).unwrap();
        let mut out = Vec::new();
        let mut error = None;
        for c in bytes.chunks(chunk.max(1)) {
            if let Err(e) = s.feed(c, &mut out) {
                error = Some(e);
                break;
            }
        }
        if error.is_none() {
            error = s.finish(&mut out).err();
        }
        let problems = s.problems.clone();
        (out.into_iter().map(|(r, t)| (r, t.data)).collect(), problems, error)
    }

    /// Every chunking of each file gives the same rows as reading it whole.
    #[test]
    fn chunks_of_any_size_give_the_same_tasks() {
        let files: [&[u8]; 6] = [
            br#"{"text": "one"}"#,
            b"\xef\xbb\xbf [{\"t\": \"a,]}\"}, {\"data\": {\"t\": [1, {\"x\": \"\\\"\"}]}}]\n",
            b"{\"t\": 1}\n\n{\"t\": \"\xc3\xa9\"}\r\n{\"t\": 3}",
            b"{\n  \"text\": \"pretty\"\n}\n",
            b"[\n  {\"t\": 1},\n  {\"t\": 2}\n]",
            "{\"t\": \"日本\"}\n{\"t\": \"語\"}\n".as_bytes(),
        ];
        for file in files {
            let whole = read(file, file.len());
            assert_eq!((&whole.1, &whole.2), (&vec![], &None), "{}", String::from_utf8_lossy(file));
            for chunk in 1..file.len() {
                assert_eq!(read(file, chunk), whole, "chunk {chunk} of {}", String::from_utf8_lossy(file));
            }
        }
        assert_eq!(read(files[0], 3).0, [(None, json!({"text": "one"}))]);
        assert_eq!(read(files[1], 5).0, [(Some(0), json!({"t": "a,]}"})), (Some(1), json!({"t": [1, {"x": "\""}]}))]);
        assert_eq!(
            read(files[2], 2).0,
            [(Some(0), json!({"t": 1})), (Some(1), json!({"t": "é"})), (Some(2), json!({"t": 3}))]
        );
        assert_eq!(read(files[3], 4).0, [(None, json!({"text": "pretty"}))]);
    }

    /// A bad JSONL line or array element is reported with where it is and skipped; a syntax
    /// error inside an array ends the file after the elements before it.
    #[test]
    fn bad_tasks_are_reported_with_their_line_and_the_rest_imports() {
        let (rows, problems, error) = read(b"{\"t\": 1}\n{oops\n[2]\n{\"t\": 4}\n", 7);
        // Rows are positions among the non-blank lines, bad lines included.
        assert_eq!(rows, [(Some(0), json!({"t": 1})), (Some(3), json!({"t": 4}))]);
        assert_eq!(error, None);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].starts_with("line 2: invalid JSON: key must be a string"), "{problems:?}");
        assert_eq!(problems[1], "line 3: a task must be a JSON object");

        // A broken first line of JSON Lines: that line is reported, the others import (after
        // blank lines too, at any chunk size); a broken pretty-printed object stays one error.
        for chunk in [1, 5, 100] {
            let (rows, problems, error) = read(b"\n{\"t\": oops}\n\n{\"t\": 2}\n{\"t\": 3}", chunk);
            assert_eq!(rows, [(Some(1), json!({"t": 2})), (Some(2), json!({"t": 3}))], "chunk {chunk}");
            assert_eq!(error, None);
            assert_eq!(problems.len(), 1);
            assert!(problems[0].starts_with("line 2: invalid JSON: expected value"), "{problems:?}");
        }
        // Decided at the second line: its tasks come before the file ends (not held whole).
        let mut stream = TaskStream::new("t.jsonl", true).unwrap();
        let mut out = Vec::new();
        stream.feed(b"{\"t\": oops}\n{\"t\": 2}\n{\"t\": 3}\n", &mut out).unwrap();
        assert_eq!(
            out.into_iter().map(|(r, t)| (r, t.data)).collect::<Vec<_>>(),
            [(Some(1), json!({"t": 2})), (Some(2), json!({"t": 3}))]
        );
        // Only JSON's whitespace is blank: a line led by U+00A0 is no JSON.
        let (rows, problems, _) = read("{\"t\": 1}\n\u{a0}{\"t\": 2}\n".as_bytes(), 3);
        assert_eq!(rows, [(Some(0), json!({"t": 1}))]);
        assert!(problems[0].starts_with("line 2: invalid JSON: expected value"), "{problems:?}");
        let (rows, problems, error) = read(b"{\n  \"t\": oops\n}\n{\"t\": 2}\n", 4);
        assert_eq!((rows.len(), problems.len()), (0, 0));
        let error = error.unwrap();
        assert!(error.starts_with("invalid JSON: expected value"), "{error}");

        let (rows, problems, error) = read(b"[{\"t\": 1}, 5, {\"t\": 3}]", 4);
        assert_eq!(
            (rows, problems, error),
            (
                vec![(Some(0), json!({"t": 1})), (Some(2), json!({"t": 3}))],
                vec!["element 1: a task must be a JSON object".to_string()],
                None
            )
        );

        let (rows, _, error) = read(b"[{\"t\": 1},\n {\"t\": nope}, {\"t\": 3}]", 6);
        assert_eq!(rows, [(Some(0), json!({"t": 1}))]);
        let error = error.unwrap();
        assert!(error.starts_with("invalid JSON array: element 1 (line 2): expected ident"), "{error}");

        for (file, message) in [
            (&b"  \n"[..], "the file is empty"),
            (b"[]", "the JSON array is empty"),
            (b"[{\"t\": 1}", "invalid JSON array: the file ends before the array is closed"),
            (b"[{\"t\": 1}] x", "invalid JSON array: trailing characters at line 1"),
            (b"[{\"t\": 1},]", "invalid JSON array: expected a value at line 1"),
            (b"hello", "not JSON-formatted tasks (expected a JSON object, a JSON array or JSON Lines)"),
            (b"{\"t\": \xff}", "not UTF-8 text (byte 6)"),
            (b"{\"t\": \"\xc3", "not UTF-8 text (byte 7)"),
        ] {
            assert_eq!(read(file, 1).2.as_deref(), Some(message), "{}", String::from_utf8_lossy(file));
            assert_eq!(read(file, file.len()).2.as_deref(), Some(message), "{}", String::from_utf8_lossy(file));
        }
        assert_eq!(read(b"{\"t\":\n", 3).2.as_deref().map(|e| e.starts_with("invalid JSON: EOF")), Some(true));
    }

    fn task_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
        ];
        let tree = leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\",\\[\\]{}]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        prop::collection::btree_map("[a-z]{1,3}", tree, 0..4).prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    proptest! {
        /// Any list of tasks, written as an array or as JSON Lines (pretty or not) and cut into
        /// chunks anywhere, reads back as exactly those tasks in order.
        #[test]
        fn any_tasks_read_back_whatever_the_chunks(
            tasks in prop::collection::vec(task_value(), 1..8),
            chunk in 1usize..64,
            lines in any::<bool>(),
            pretty in any::<bool>(),
        ) {
            let file = if lines {
                tasks.iter().map(|t| t.to_string()).collect::<Vec<_>>().join("\n")
            } else if pretty {
                serde_json::to_string_pretty(&tasks).unwrap()
            } else {
                serde_json::to_string(&tasks).unwrap()
            };
            let (rows, problems, error) = read(file.as_bytes(), chunk);
            prop_assert_eq!(error, None);
            prop_assert!(problems.is_empty());
            let single = lines && tasks.len() == 1;
            let want: Vec<(Option<i64>, Value)> = tasks.iter().enumerate().map(|(i, t)| {
                let data = task_from_value(t.clone(), &Authors::default()).map(|t| t.data);
                ((!single).then_some(i as i64), data)
            }).filter_map(|(r, d)| d.ok().map(|d| (r, d))).collect();
            prop_assert_eq!(rows, want);
        }

        /// Arbitrary bytes never panic the reader, in any chunking.
        #[test]
        fn any_bytes_are_read_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..200), chunk in 1usize..32) {
            let _ = read(&bytes, chunk);
        }
    }
}

#[cfg(test)]
mod whole_file_tests {
    use super::*;
    use crate::domain::NewTask;
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
