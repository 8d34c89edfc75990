//! JSON output byte-compatible with Go's `encoding/json`, plus the few Go
//! formatting helpers (`%q`) and decoding rules the CNI libraries rely on.
//!
//! serde_json's pretty printer differs from Go in string escaping: Go escapes
//! `<`, `>`, `&`, U+2028 and U+2029, so we write JSON ourselves.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// `json.Marshal`: compact, no trailing newline.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, None, 0);
    out
}

/// `json.MarshalIndent(v, "", "    ")`: no trailing newline.
pub fn to_string_indent(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, Some("    "), 0);
    out
}

fn newline(out: &mut String, indent: Option<&str>, depth: usize) {
    if let Some(unit) = indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(unit);
        }
    }
}

fn write_value(out: &mut String, v: &Value, indent: Option<&str>, depth: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            // Go's Indent keeps empty arrays and objects compact.
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write_value(out, item, indent, depth + 1);
            }
            newline(out, indent, depth);
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                write_str(out, k);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_value(out, item, indent, depth + 1);
            }
            newline(out, indent, depth);
            out.push('}');
        }
    }
}

/// A JSON string with Go's escaping (HTML-safe, U+2028/U+2029 escaped).
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `strconv.Quote` (what `%q` prints for a string): double quotes,
/// backslash escapes for `"` and `\`, C escapes for the usual control
/// characters, `\xNN` for other ASCII controls and `\uNNNN`/`\UNNNNNNNN`
/// for non-printable code points. The one `%q` of the workspace (crates/firewall
/// re-exports it as `go_quote`).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.IsPrint`, closely enough: no control characters and no
/// spaces other than U+0020 (so U+00A0 is escaped, as in Go).
fn go_is_print(c: char) -> bool {
    c == ' ' || (!c.is_control() && !c.is_whitespace())
}

/// Go's `%q` for a `[]string`: `["a" "b"]`.
pub fn quote_list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s.as_ref())).collect();
    format!("[{}]", quoted.join(" "))
}

/// Go's `%s` / `%v` for a `[]string`: `[a b]`.
pub fn plain_list<S: AsRef<str>>(items: &[S]) -> String {
    let plain: Vec<&str> = items.iter().map(|s| s.as_ref()).collect();
    format!("[{}]", plain.join(" "))
}

/// The JSON kind name Go uses in "cannot unmarshal X into ..." messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Splits an object the way Go's decoder assigns keys to struct fields: a key
/// matches a field exactly or case-insensitively, and the last matching key
/// wins. Returns the value per known field (same order as `known`) and the
/// keys that match no field.
pub fn split_fields<'a>(
    obj: &'a Map<String, Value>,
    known: &[&str],
) -> (Vec<Option<&'a Value>>, Map<String, Value>) {
    let mut found: Vec<Option<&'a Value>> = vec![None; known.len()];
    let mut extra = Map::new();
    for (k, v) in obj {
        let idx = known
            .iter()
            .position(|f| f == k)
            .or_else(|| known.iter().position(|f| f.eq_ignore_ascii_case(k)));
        match idx.and_then(|i| found.get_mut(i)) {
            Some(slot) => *slot = Some(v),
            None => {
                extra.insert(k.clone(), v.clone());
            }
        }
    }
    (found, extra)
}

/// One field of a JSON object, with Go's key matching (see [`split_fields`]).
pub fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let mut hit = None;
    for (k, v) in obj {
        if k == name || k.eq_ignore_ascii_case(name) {
            hit = Some(v);
        }
    }
    hit
}

/// Go's `encoding/json` syntax error text for the common cases, so messages
/// read like the Go plugins' (`unexpected end of JSON input`, ...).
pub fn syntax_error_text(input: &[u8], err: &serde_json::Error) -> String {
    if err.is_eof() || input.iter().all(|b| b.is_ascii_whitespace()) {
        return "unexpected end of JSON input".to_string();
    }
    err.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn indent_matches_go_layout() {
        let v = json!({"a": [], "b": {}, "c": [1, {"d": "x"}], "e": null});
        let want = "{\n    \"a\": [],\n    \"b\": {},\n    \"c\": [\n        1,\n        {\n            \"d\": \"x\"\n        }\n    ],\n    \"e\": null\n}";
        assert_eq!(to_string_indent(&v), want);
        assert_eq!(
            to_string(&v),
            r#"{"a":[],"b":{},"c":[1,{"d":"x"}],"e":null}"#
        );
    }

    #[test]
    fn strings_escape_like_go() {
        let v = json!("<a&b>\u{2028}\u{1}\n\"\\é/");
        assert_eq!(
            to_string(&v),
            r#""\u003ca\u0026b\u003e\u2028\u0001\n\"\\é/""#
        );
    }

    #[test]
    fn quote_like_go() {
        assert_eq!(quote("a\"b\n\u{1}"), r#""a\"b\n\x01""#);
        assert_eq!(quote_list(&["0.1.0", "0.2.0"]), r#"["0.1.0" "0.2.0"]"#);
        assert_eq!(plain_list(&["/a", "/b"]), "[/a /b]");
        assert_eq!(plain_list::<&str>(&[]), "[]");
    }

    #[test]
    fn fields_match_case_insensitively_last_wins() {
        let v = json!({"name": "a", "NAME": "b", "other": 1});
        let obj = v.as_object().unwrap();
        let (found, extra) = split_fields(obj, &["name"]);
        assert_eq!(found[0], Some(&json!("b")));
        assert_eq!(extra.len(), 1);
        assert_eq!(field(obj, "Name"), Some(&json!("b")));
    }
}
