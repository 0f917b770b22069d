//! A minimal JSON writer for `--json` output: objects, arrays, strings, integers and
//! booleans, written in insertion order, and a reader for the same subset, so that `sim
//! sweep merge` can read back what sweeps wrote. Enough for the simulator's reports; not a
//! general serialiser (no floating-point or negative numbers).

use std::fmt::Write as _;

/// A JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An unsigned integer.
    Number(u64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, keys in insertion order.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// An object from key-value pairs.
    pub fn object(entries: impl IntoIterator<Item = (&'static str, Json)>) -> Json {
        Json::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// A string value.
    pub fn string(text: impl Into<String>) -> Json {
        Json::String(text.into())
    }

    /// The compact text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            Json::Number(value) => {
                let _ = write!(out, "{value}");
            }
            Json::String(text) => write_string(out, text),
            Json::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(entries) => {
                out.push('{');
                for (index, (key, value)) in entries.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    write_string(out, key);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// How deeply values may nest when read: the simulator writes at most three levels, and a
/// bound keeps the recursive reader's stack bounded whatever the input.
pub const DEPTH_MAX: usize = 16;

impl Json {
    /// Reads one value from `text` (surrounding whitespace allowed): the subset `render`
    /// writes, with any JSON string escape. The error says where and what is wrong.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut reader = Reader { bytes: text.as_bytes(), at: 0 };
        let value = reader.value(0)?;
        reader.skip_space();
        if reader.at != reader.bytes.len() {
            return Err(reader.error("text after the value"));
        }
        Ok(value)
    }

    /// The value of `key` in an object (the first, if it repeats); `None` for a missing
    /// key or a value that is not an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_u64(&self) -> Option<u64> {
        if let Json::Number(value) = self { Some(*value) } else { None }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        if let Json::String(text) = self { Some(text) } else { None }
    }

    /// The items, if this is an array.
    pub fn as_array(&self) -> Option<&[Json]> {
        if let Json::Array(items) = self { Some(items) } else { None }
    }
}

/// A cursor over the text being read.
struct Reader<'t> {
    bytes: &'t [u8],
    at: usize,
}

impl Reader<'_> {
    fn error(&self, what: &str) -> String {
        format!("invalid JSON at byte {}: {what}", self.at)
    }

    fn skip_space(&mut self) {
        while self.bytes.get(self.at).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        let found = self.bytes.get(self.at) == Some(&byte);
        if found {
            self.at += 1;
        }
        found
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > DEPTH_MAX {
            return Err(self.error("values nest too deeply"));
        }
        self.skip_space();
        match self.bytes.get(self.at) {
            None => Err(self.error("the text ends where a value should be")),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'"') => self.string().map(Json::String),
            Some(b'0'..=b'9') => self.number(),
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Ok(Json::Array(items));
                }
                // Each iteration consumes at least one item and a separator: bounded by
                // the text's length.
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b']') {
                        return Ok(Json::Array(items));
                    }
                    if !self.eat(b',') {
                        return Err(self.error("expected , or ] in an array"));
                    }
                }
            }
            Some(b'{') => {
                self.at += 1;
                let mut entries = Vec::new();
                if self.eat(b'}') {
                    return Ok(Json::Object(entries));
                }
                // As for arrays: each iteration consumes an entry.
                loop {
                    self.skip_space();
                    if self.bytes.get(self.at) != Some(&b'"') {
                        return Err(self.error("expected a string key"));
                    }
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return Err(self.error("expected : after a key"));
                    }
                    entries.push((key, self.value(depth + 1)?));
                    if self.eat(b'}') {
                        return Ok(Json::Object(entries));
                    }
                    if !self.eat(b',') {
                        return Err(self.error("expected , or } in an object"));
                    }
                }
            }
            Some(_) => Err(self.error(
                "expected a value (numbers are unsigned integers: the simulator writes no other)",
            )),
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        if self.bytes.get(self.at).is_some_and(|b| matches!(b, b'.' | b'e' | b'E')) {
            return Err(self.error("a number that is not an unsigned integer"));
        }
        // Digits only, so the text is ASCII.
        let digits = core::str::from_utf8(&self.bytes[start..self.at]).unwrap_or_default();
        digits.parse::<u64>().map(Json::Number).map_err(|_| self.error("a number above 2^64 - 1"))
    }

    /// A string, starting at its opening quote.
    fn string(&mut self) -> Result<String, String> {
        debug_assert_eq!(self.bytes.get(self.at), Some(&b'"'));
        self.at += 1;
        let mut bytes = Vec::new();
        // Each iteration consumes at least one byte of the text.
        loop {
            let Some(&byte) = self.bytes.get(self.at) else {
                return Err(self.error("a string does not end"));
            };
            self.at += 1;
            match byte {
                b'"' => break,
                b'\\' => {
                    let Some(&escape) = self.bytes.get(self.at) else {
                        return Err(self.error("a string does not end"));
                    };
                    self.at += 1;
                    let c = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(self.error("an unknown escape in a string")),
                    };
                    let mut buffer = [0; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                }
                byte if byte < 0x20 => {
                    return Err(self.error("a control character inside a string"));
                }
                byte => bytes.push(byte),
            }
        }
        // The input was a `&str` and escapes were written as UTF-8: valid UTF-8.
        String::from_utf8(bytes).map_err(|_| self.error("a string that is not UTF-8"))
    }

    /// The character of `\uXXXX` (after the `u`), joining a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let first = self.hex4()?;
        let code = if (0xd800..0xdc00).contains(&first) {
            if !self.bytes[self.at..].starts_with(b"\\u") {
                return Err(self.error("a lone surrogate in a \\u escape"));
            }
            self.at += 2;
            let second = self.hex4()?;
            if !(0xdc00..0xe000).contains(&second) {
                return Err(self.error("a lone surrogate in a \\u escape"));
            }
            0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
        } else {
            first
        };
        char::from_u32(code).ok_or_else(|| self.error("a lone surrogate in a \\u escape"))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits =
            self.bytes.get(self.at..self.at + 4).ok_or_else(|| self.error("a short \\u escape"))?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(self.error("a bad \\u escape"));
        }
        // Four ASCII hex digits: valid UTF-8 and below 2^16.
        let text = core::str::from_utf8(digits).unwrap_or_default();
        let value = u32::from_str_radix(text, 16).unwrap_or_default();
        self.at += 4;
        Ok(value)
    }
}

fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings are escaped; structure is written in order.
    #[test]
    fn renders() {
        let value = Json::object([
            ("name", Json::string("a \"b\"\n\u{1}")),
            ("list", Json::Array(vec![Json::Number(1), Json::Bool(false), Json::Null])),
        ]);
        assert_eq!(value.render(), r#"{"name":"a \"b\"\n\u0001","list":[1,false,null]}"#);
    }

    /// What `render` writes, `parse` reads back as the same value; standard escapes and
    /// whitespace are read; anything else is an error that says where.
    #[test]
    fn parses_what_it_renders() {
        let value = Json::object([
            ("name", Json::string("a \"b\"\n\u{1}\\ é ✓")),
            ("list", Json::Array(vec![Json::Number(u64::MAX), Json::Bool(true), Json::Null])),
            ("empty", Json::object([])),
            ("nested", Json::object([("items", Json::Array(vec![]))])),
        ]);
        assert_eq!(Json::parse(&value.render()), Ok(value.clone()));
        let spaced = " { \"a\" : [ 1 , \"\\u00e9\\ud83d\\ude00\\/\" ] } ";
        let parsed = Json::parse(spaced).expect("valid");
        assert_eq!(parsed.get("a").and_then(Json::as_array).map(<[Json]>::len), Some(2));
        assert_eq!(parsed.get("a").unwrap().as_array().unwrap()[1].as_str(), Some("é😀/"));
        for (bad, what) in [
            ("", "ends where a value"),
            ("-1", "unsigned integers"),
            ("1.5", "not an unsigned integer"),
            ("18446744073709551616", "above 2^64"),
            ("{\"a\" 1}", "expected :"),
            ("[1 2]", "expected , or ]"),
            ("\"abc", "does not end"),
            ("\"\\ud800\"", "lone surrogate"),
            ("{} x", "text after the value"),
            (&"[".repeat(DEPTH_MAX + 2), "nest too deeply"),
        ] {
            let error = Json::parse(bad).expect_err(bad);
            assert!(error.contains(what), "{bad:?}: {error}");
        }
    }
}
