//! XML-RPC codec: `methodCall` in, `methodResponse` / `fault` out, byte for byte as
//! supervisord produces them (Python's `xmlrpc.client.dumps`: `<?xml version='1.0'?>`, `\n`
//! after every element line, strings as `<string>`, ints as `<int>`, booleans as `0`/`1`).
//!
//! The reader is a small hand-written XML parser for the subset XML-RPC uses: elements
//! (attributes are skipped), text with the five named entities and character references,
//! CDATA, comments and processing instructions. DOCTYPE is refused (no entity expansion).
//! It works on a validated `&str` with byte offsets and never slices at a non-boundary, so
//! no input can panic it; every error carries the line and column it was found at.
//!
//! Value types read: `int`/`i4` (also `i1`, `i2`, `i8`), `boolean`, `string` (and untyped
//! `<value>text</value>`), `double`, `dateTime.iso8601`, `base64`, `array`, `struct`, `nil`.

use std::fmt::Write as _;

use base64::DecodeError;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::NaiveDateTime;

/// Elements may nest this deep (a nested array costs three levels: value, array, data).
pub const MAX_DEPTH: usize = 256;

/// An XML-RPC value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Bool(bool),
    String(String),
    Double(f64),
    DateTime(NaiveDateTime),
    Base64(Vec<u8>),
    Array(Vec<Value>),
    /// Members in document order.
    Struct(Vec<(String, Value)>),
    Nil,
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// A struct from `(name, value)` pairs.
    pub fn record<const N: usize>(members: [(&str, Value); N]) -> Value {
        Value::Struct(
            members
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    /// A struct member by name.
    pub fn member(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(m) => m.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The XML-RPC type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Bool(_) => "boolean",
            Value::String(_) => "string",
            Value::Double(_) => "double",
            Value::DateTime(_) => "dateTime.iso8601",
            Value::Base64(_) => "base64",
            Value::Array(_) => "array",
            Value::Struct(_) => "struct",
            Value::Nil => "nil",
        }
    }
}

/// A parsed `methodCall`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    pub params: Vec<Value>,
}

/// An XML-RPC fault: `faultCode` and `faultString`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: i32,
    pub string: String,
}

/// Why a document could not be read, located in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {col}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

// ---------------------------------------------------------------------------------------
// Writing

const DECL: &str = "<?xml version='1.0'?>\n";

/// A successful `methodResponse` carrying `v`.
pub fn response(v: &Value) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(DECL);
    out.push_str("<methodResponse>\n<params>\n<param>\n");
    write_value(&mut out, v);
    out.push_str("</param>\n</params>\n</methodResponse>\n");
    out
}

/// A fault `methodResponse`.
pub fn fault_response(f: &Fault) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(DECL);
    out.push_str("<methodResponse>\n<fault>\n");
    write_value(
        &mut out,
        &Value::record([
            ("faultCode", Value::Int(i64::from(f.code))),
            ("faultString", Value::str(f.string.clone())),
        ]),
    );
    out.push_str("</fault>\n</methodResponse>\n");
    out
}

/// A `methodCall` (what a client sends; used by tests and tools).
pub fn call(method: &str, params: &[Value]) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(DECL);
    out.push_str("<methodCall>\n<methodName>");
    escape_into(&mut out, method);
    out.push_str("</methodName>\n<params>\n");
    for p in params {
        out.push_str("<param>\n");
        write_value(&mut out, p);
        out.push_str("</param>\n");
    }
    out.push_str("</params>\n</methodCall>\n");
    out
}

/// supervisord's `capped_int`: XML-RPC ints are 32-bit; larger values saturate.
pub fn capped(i: i64) -> i64 {
    i.clamp(i64::from(i32::MIN), i64::from(i32::MAX))
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Int(i) => {
            let _ = writeln!(out, "<value><int>{}</int></value>", capped(*i));
        }
        Value::Bool(b) => {
            let _ = writeln!(out, "<value><boolean>{}</boolean></value>", u8::from(*b));
        }
        Value::String(s) => {
            out.push_str("<value><string>");
            escape_into(out, s);
            out.push_str("</string></value>\n");
        }
        Value::Double(d) => {
            let _ = writeln!(out, "<value><double>{d:?}</double></value>");
        }
        Value::DateTime(t) => {
            let _ = writeln!(
                out,
                "<value><dateTime.iso8601>{}</dateTime.iso8601></value>",
                t.format("%Y%m%dT%H:%M:%S")
            );
        }
        Value::Base64(b) => {
            out.push_str("<value><base64>\n");
            // Python's base64.encodebytes: lines of 76 characters, each ending in \n.
            let enc = base64_encode(b);
            for line in enc.as_bytes().chunks(76) {
                out.push_str(std::str::from_utf8(line).unwrap_or_default());
                out.push('\n');
            }
            out.push_str("</base64></value>\n");
        }
        Value::Array(items) => {
            out.push_str("<value><array><data>\n");
            for item in items {
                write_value(out, item);
            }
            out.push_str("</data></array></value>\n");
        }
        Value::Struct(members) => {
            out.push_str("<value><struct>\n");
            for (k, v) in members {
                out.push_str("<member>\n<name>");
                escape_into(out, k);
                out.push_str("</name>\n");
                write_value(out, v);
                out.push_str("</member>\n");
            }
            out.push_str("</struct></value>\n");
        }
        Value::Nil => out.push_str("<value><nil/></value>\n"),
    }
}

/// Python's `xmlrpc.client.escape` (`&`, `<`, `>`), plus: characters XML 1.0 cannot carry
/// at all (control characters such as the ESC of colour codes in a log) become U+FFFD, so
/// the client's parser never rejects the document.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

// ---------------------------------------------------------------------------------------
// Reading: a tiny DOM

#[derive(Debug)]
struct Elem {
    name: String,
    at: usize,
    children: Vec<Node>,
}

#[derive(Debug)]
enum Node {
    Elem(Elem),
    Text(String),
}

enum Tok<'a> {
    Open {
        name: &'a str,
        empty: bool,
        at: usize,
    },
    Close {
        name: &'a str,
        at: usize,
    },
    Text(String),
}

struct Lexer<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let tail = hay.get(from..)?;
    tail.windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from + i)
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':') || b >= 0x80
}

impl<'a> Lexer<'a> {
    fn err(&self, at: usize, message: impl Into<String>) -> ParseError {
        located(self.s, at, message)
    }

    fn starts_with(&self, p: &[u8]) -> bool {
        self.b.get(self.pos..).is_some_and(|t| t.starts_with(p))
    }

    fn skip_ws(&mut self) {
        while self
            .b
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn name(&mut self) -> Result<&'a str, ParseError> {
        let start = self.pos;
        while self.b.get(self.pos).copied().is_some_and(is_name_char) {
            self.pos += 1;
        }
        let name = self.s.get(start..self.pos).unwrap_or_default();
        match name.as_bytes().first() {
            None => Err(self.err(start, "expected an element name")),
            Some(c) if c.is_ascii_digit() || matches!(c, b'-' | b'.') => {
                Err(self.err(start, format!("{name:?} is not a valid element name")))
            }
            Some(_) => Ok(name),
        }
    }

    /// Skip past `end`, or fail with `what` located at `start`.
    fn skip_past(&mut self, start: usize, end: &[u8], what: &str) -> Result<(), ParseError> {
        match find(self.b, self.pos, end) {
            Some(i) => {
                self.pos = i + end.len();
                Ok(())
            }
            None => Err(self.err(start, format!("unterminated {what}"))),
        }
    }

    fn next(&mut self) -> Result<Option<Tok<'a>>, ParseError> {
        loop {
            let start = self.pos;
            let Some(&c) = self.b.get(self.pos) else {
                return Ok(None);
            };
            if c != b'<' {
                let end = find(self.b, self.pos, b"<").unwrap_or(self.b.len());
                self.pos = end;
                let raw = self.s.get(start..end).unwrap_or_default();
                return Ok(Some(Tok::Text(decode_text(self.s, start, raw)?)));
            }
            if self.starts_with(b"<?") {
                self.pos += 2;
                self.skip_past(start, b"?>", "processing instruction (missing \"?>\")")?;
                continue;
            }
            if self.starts_with(b"<!--") {
                self.pos += 4;
                self.skip_past(start, b"-->", "comment (missing \"-->\")")?;
                continue;
            }
            if self.starts_with(b"<![CDATA[") {
                self.pos += 9;
                let body = self.pos;
                self.skip_past(start, b"]]>", "CDATA section (missing \"]]>\")")?;
                let text = self.s.get(body..self.pos - 3).unwrap_or_default();
                return Ok(Some(Tok::Text(text.to_string())));
            }
            if self.starts_with(b"<!") {
                return Err(self.err(
                    start,
                    "DOCTYPE and other declarations are not allowed in XML-RPC",
                ));
            }
            if self.starts_with(b"</") {
                self.pos += 2;
                let name = self.name()?;
                self.skip_ws();
                if self.b.get(self.pos) != Some(&b'>') {
                    return Err(self.err(self.pos, format!("expected '>' to close </{name}")));
                }
                self.pos += 1;
                return Ok(Some(Tok::Close { name, at: start }));
            }
            self.pos += 1;
            let name = self.name()?;
            loop {
                self.skip_ws();
                match self.b.get(self.pos) {
                    None => {
                        return Err(self.err(start, format!("unterminated start tag <{name}")));
                    }
                    Some(b'>') => {
                        self.pos += 1;
                        return Ok(Some(Tok::Open {
                            name,
                            empty: false,
                            at: start,
                        }));
                    }
                    Some(b'/') => {
                        if self.b.get(self.pos + 1) != Some(&b'>') {
                            return Err(self.err(self.pos, "expected '>' after '/'"));
                        }
                        self.pos += 2;
                        return Ok(Some(Tok::Open {
                            name,
                            empty: true,
                            at: start,
                        }));
                    }
                    Some(_) => self.attribute(name)?,
                }
            }
        }
    }

    /// `name = "value"`; the value is checked and dropped (XML-RPC has no attributes).
    fn attribute(&mut self, elem: &str) -> Result<(), ParseError> {
        let attr = self.name()?;
        self.skip_ws();
        if self.b.get(self.pos) != Some(&b'=') {
            return Err(self.err(
                self.pos,
                format!("expected '=' after attribute {attr} of <{elem}>"),
            ));
        }
        self.pos += 1;
        self.skip_ws();
        let q = match self.b.get(self.pos) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => {
                return Err(self.err(
                    self.pos,
                    format!("expected a quoted value for attribute {attr} of <{elem}>"),
                ));
            }
        };
        let open = self.pos;
        self.pos += 1;
        let Some(end) = find(self.b, self.pos, &[q]) else {
            return Err(self.err(open, format!("unterminated value of attribute {attr}")));
        };
        let raw = self.s.get(self.pos..end).unwrap_or_default();
        if raw.contains('<') {
            return Err(self.err(open, format!("'<' in the value of attribute {attr}")));
        }
        decode_text(self.s, self.pos, raw)?;
        self.pos = end + 1;
        Ok(())
    }
}

/// `(line, column)` of a byte offset, both 1-based, columns in characters.
fn line_col(s: &str, at: usize) -> (usize, usize) {
    let b = s.as_bytes();
    let before = b.get(..at.min(b.len())).unwrap_or_default();
    let line = before.iter().filter(|c| **c == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|c| *c == b'\n')
        .map_or(0, |i| i + 1);
    let col = before
        .get(line_start..)
        .unwrap_or_default()
        .iter()
        .filter(|c| (**c & 0xC0) != 0x80)
        .count()
        + 1;
    (line, col)
}

fn located(s: &str, at: usize, message: impl Into<String>) -> ParseError {
    let (line, col) = line_col(s, at);
    ParseError {
        line,
        col,
        message: message.into(),
    }
}

/// Decode entities and character references in `raw`, which starts at `offset` in `doc`.
fn decode_text(doc: &str, offset: usize, raw: &str) -> Result<String, ParseError> {
    if !raw.contains('&') {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    let mut pos = offset;
    while let Some(i) = rest.find('&') {
        out.push_str(rest.get(..i).unwrap_or_default());
        let after = rest.get(i + 1..).unwrap_or_default();
        let at = pos + i;
        let Some(semi) = after.find(';').filter(|s| *s <= 12) else {
            return Err(located(
                doc,
                at,
                "'&' must start an entity such as &amp; (write a literal '&' as &amp;)",
            ));
        };
        let ent = after.get(..semi).unwrap_or_default();
        let c = match ent {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => {
                let num = if let Some(h) = ent.strip_prefix("#x").or_else(|| ent.strip_prefix("#X"))
                {
                    u32::from_str_radix(h, 16).ok()
                } else if let Some(d) = ent.strip_prefix('#') {
                    d.parse::<u32>().ok()
                } else {
                    return Err(located(doc, at, format!("unknown entity &{ent};")));
                };
                num.and_then(char::from_u32).filter(|c| *c != '\0')
            }
        };
        let Some(c) = c else {
            return Err(located(
                doc,
                at,
                format!("&{ent}; is not a valid character reference"),
            ));
        };
        out.push(c);
        let consumed = i + 1 + semi + 1;
        rest = rest.get(consumed..).unwrap_or_default();
        pos += consumed;
    }
    out.push_str(rest);
    Ok(out)
}

fn parse_document(s: &str) -> Result<Elem, ParseError> {
    let s_body = s.strip_prefix('\u{FEFF}').unwrap_or(s);
    let skip = s.len() - s_body.len();
    let mut lx = Lexer {
        s,
        b: s.as_bytes(),
        pos: skip,
    };
    let mut stack: Vec<Elem> = Vec::new();
    let mut root: Option<Elem> = None;
    while let Some(tok) = lx.next()? {
        match tok {
            Tok::Text(t) => match stack.last_mut() {
                Some(parent) => match parent.children.last_mut() {
                    Some(Node::Text(prev)) => prev.push_str(&t),
                    _ => parent.children.push(Node::Text(t)),
                },
                None if t.trim().is_empty() => {}
                None => {
                    let at = lx.pos.saturating_sub(1);
                    return Err(lx.err(at, "text outside the document element"));
                }
            },
            Tok::Open { name, empty, at } => {
                if stack.is_empty() && root.is_some() {
                    return Err(lx.err(at, format!("a second document element <{name}>")));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(lx.err(at, format!("elements nested deeper than {MAX_DEPTH}")));
                }
                let e = Elem {
                    name: name.to_string(),
                    at,
                    children: Vec::new(),
                };
                if empty {
                    attach(&mut stack, &mut root, e);
                } else {
                    stack.push(e);
                }
            }
            Tok::Close { name, at } => {
                let Some(e) = stack.pop() else {
                    return Err(lx.err(at, format!("</{name}> closes nothing")));
                };
                if e.name != name {
                    let (l, c) = line_col(s, e.at);
                    return Err(lx.err(
                        at,
                        format!(
                            "</{name}> does not match <{}> (opened at line {l}, column {c})",
                            e.name
                        ),
                    ));
                }
                attach(&mut stack, &mut root, e);
            }
        }
    }
    if let Some(e) = stack.last() {
        let (l, c) = line_col(s, e.at);
        return Err(lx.err(
            s.len(),
            format!(
                "the document ends inside <{}> (opened at line {l}, column {c})",
                e.name
            ),
        ));
    }
    root.ok_or_else(|| lx.err(s.len(), "no document element (empty body?)"))
}

fn attach(stack: &mut [Elem], root: &mut Option<Elem>, e: Elem) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Elem(e)),
        None => *root = Some(e),
    }
}

// ---------------------------------------------------------------------------------------
// Reading: XML-RPC on the DOM

struct Reader<'a> {
    doc: &'a str,
}

impl Reader<'_> {
    fn err(&self, at: usize, message: impl Into<String>) -> ParseError {
        located(self.doc, at, message)
    }

    /// Child elements; non-blank text between them is an error.
    fn elements<'e>(&self, e: &'e Elem) -> Result<Vec<&'e Elem>, ParseError> {
        let mut out = Vec::new();
        for n in &e.children {
            match n {
                Node::Elem(c) => out.push(c),
                Node::Text(t) if t.trim().is_empty() => {}
                Node::Text(t) => {
                    return Err(self.err(
                        e.at,
                        format!("unexpected text {:?} in <{}>", preview(t), e.name),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The text of an element that must not hold elements.
    fn text(&self, e: &Elem) -> Result<String, ParseError> {
        let mut out = String::new();
        for n in &e.children {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Elem(c) => {
                    return Err(self.err(c.at, format!("<{}> cannot hold <{}>", e.name, c.name)));
                }
            }
        }
        Ok(out)
    }

    /// The one child element, which must be named `want`.
    fn only<'e>(&self, e: &'e Elem, want: &str) -> Result<&'e Elem, ParseError> {
        let els = self.elements(e)?;
        match els.as_slice() {
            [one] if one.name == want => Ok(one),
            [one] => Err(self.err(
                one.at,
                format!("expected <{want}> in <{}>, found <{}>", e.name, one.name),
            )),
            [] => Err(self.err(e.at, format!("<{}> must hold a <{want}>", e.name))),
            [_, second, ..] => Err(self.err(
                second.at,
                format!("<{}> must hold exactly one <{want}>", e.name),
            )),
        }
    }

    fn call(&self, root: &Elem) -> Result<Call, ParseError> {
        if root.name != "methodCall" {
            return Err(self.err(
                root.at,
                format!("expected <methodCall>, found <{}>", root.name),
            ));
        }
        let mut method = None;
        let mut params = Vec::new();
        for c in self.elements(root)? {
            match c.name.as_str() {
                "methodName" => method = Some(self.text(c)?.trim().to_string()),
                "params" => params = self.params(c)?,
                other => {
                    return Err(self.err(c.at, format!("unexpected <{other}> in <methodCall>")));
                }
            }
        }
        match method {
            Some(m) if !m.is_empty() => Ok(Call { method: m, params }),
            Some(_) => Err(self.err(root.at, "<methodName> is empty")),
            None => Err(self.err(root.at, "<methodCall> has no <methodName>")),
        }
    }

    fn params(&self, e: &Elem) -> Result<Vec<Value>, ParseError> {
        let mut out = Vec::new();
        for p in self.elements(e)? {
            if p.name != "param" {
                return Err(self.err(
                    p.at,
                    format!("expected <param> in <params>, found <{}>", p.name),
                ));
            }
            out.push(self.value(self.only(p, "value")?)?);
        }
        Ok(out)
    }

    fn value(&self, v: &Elem) -> Result<Value, ParseError> {
        let mut typed: Option<&Elem> = None;
        let mut text = String::new();
        for n in &v.children {
            match n {
                Node::Elem(c) if typed.is_none() => typed = Some(c),
                Node::Elem(c) => {
                    return Err(self.err(c.at, "<value> must hold a single typed element"));
                }
                Node::Text(t) => text.push_str(t),
            }
        }
        let Some(t) = typed else {
            // Untyped `<value>text</value>` is a string, whitespace kept.
            return Ok(Value::String(text));
        };
        if !text.trim().is_empty() {
            return Err(self.err(
                v.at,
                format!("text {:?} beside <{}> in <value>", preview(&text), t.name),
            ));
        }
        self.typed(t)
    }

    fn typed(&self, t: &Elem) -> Result<Value, ParseError> {
        match t.name.as_str() {
            "int" | "i4" | "i1" | "i2" | "i8" => {
                let s = self.text(t)?;
                s.trim().parse::<i64>().map(Value::Int).map_err(|_| {
                    self.err(
                        t.at,
                        format!("<{}> holds {:?}, not an integer", t.name, preview(&s)),
                    )
                })
            }
            "boolean" => match self.text(t)?.trim() {
                "1" | "true" => Ok(Value::Bool(true)),
                "0" | "false" => Ok(Value::Bool(false)),
                other => Err(self.err(
                    t.at,
                    format!("<boolean> holds {:?}; expected 0 or 1", preview(other)),
                )),
            },
            "string" => Ok(Value::String(self.text(t)?)),
            "double" => {
                let s = self.text(t)?;
                s.trim().parse::<f64>().map(Value::Double).map_err(|_| {
                    self.err(
                        t.at,
                        format!("<double> holds {:?}, not a number", preview(&s)),
                    )
                })
            }
            "dateTime.iso8601" => {
                let s = self.text(t)?;
                let v = s.trim();
                NaiveDateTime::parse_from_str(v, "%Y%m%dT%H:%M:%S")
                    .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S"))
                    .map(Value::DateTime)
                    .map_err(|_| {
                        self.err(
                            t.at,
                            format!(
                                "<dateTime.iso8601> holds {:?}; expected YYYYMMDDTHH:MM:SS",
                                preview(v)
                            ),
                        )
                    })
            }
            "base64" => {
                let s = self.text(t)?;
                base64_decode(&s)
                    .map(Value::Base64)
                    .map_err(|m| self.err(t.at, format!("<base64>: {m}")))
            }
            "array" => {
                let data = self.only(t, "data")?;
                let mut items = Vec::new();
                for v in self.elements(data)? {
                    if v.name != "value" {
                        return Err(self.err(
                            v.at,
                            format!("expected <value> in <data>, found <{}>", v.name),
                        ));
                    }
                    items.push(self.value(v)?);
                }
                Ok(Value::Array(items))
            }
            "struct" => {
                let mut members = Vec::new();
                for m in self.elements(t)? {
                    if m.name != "member" {
                        return Err(self.err(
                            m.at,
                            format!("expected <member> in <struct>, found <{}>", m.name),
                        ));
                    }
                    let mut name = None;
                    let mut value = None;
                    for c in self.elements(m)? {
                        match c.name.as_str() {
                            "name" if name.is_none() => name = Some(self.text(c)?),
                            "value" if value.is_none() => value = Some(self.value(c)?),
                            other => {
                                return Err(self.err(
                                    c.at,
                                    format!(
                                        "unexpected <{other}> in <member> (expected one <name> and one <value>)"
                                    ),
                                ));
                            }
                        }
                    }
                    match (name, value) {
                        (Some(n), Some(v)) => members.push((n, v)),
                        (None, _) => return Err(self.err(m.at, "<member> has no <name>")),
                        (_, None) => return Err(self.err(m.at, "<member> has no <value>")),
                    }
                }
                Ok(Value::Struct(members))
            }
            "nil" => {
                if self.text(t)?.trim().is_empty() {
                    Ok(Value::Nil)
                } else {
                    Err(self.err(t.at, "<nil> must be empty"))
                }
            }
            other => Err(self.err(
                t.at,
                format!(
                    "unknown value type <{other}> (expected int, i4, boolean, string, double, \
                     dateTime.iso8601, base64, array, struct or nil)"
                ),
            )),
        }
    }
}

fn preview(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().nth(40).is_some() {
        out.push('…');
    }
    out
}

fn as_text(body: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(body).map_err(|e| {
        let at = e.valid_up_to();
        // Locate in the valid prefix (which is a str by construction).
        let prefix = std::str::from_utf8(body.get(..at).unwrap_or_default()).unwrap_or_default();
        let (line, col) = line_col(prefix, at);
        ParseError {
            line,
            col,
            message: format!("the body is not valid UTF-8 (byte {at})"),
        }
    })
}

/// Read a `methodCall`.
pub fn parse_call(body: &[u8]) -> Result<Call, ParseError> {
    let doc = as_text(body)?;
    let root = parse_document(doc)?;
    Reader { doc }.call(&root)
}

/// Read a `methodResponse`: `Ok(value)` or `Err(fault)`. (For clients and tests.)
pub fn parse_response(body: &[u8]) -> Result<Result<Value, Fault>, ParseError> {
    let doc = as_text(body)?;
    let root = parse_document(doc)?;
    let r = Reader { doc };
    if root.name != "methodResponse" {
        return Err(r.err(
            root.at,
            format!("expected <methodResponse>, found <{}>", root.name),
        ));
    }
    let inner = r.elements(&root)?;
    match inner.as_slice() {
        [p] if p.name == "params" => {
            let param = r.only(p, "param")?;
            Ok(Ok(r.value(r.only(param, "value")?)?))
        }
        [f] if f.name == "fault" => {
            let v = r.value(r.only(f, "value")?)?;
            match (v.member("faultCode"), v.member("faultString")) {
                (Some(Value::Int(code)), Some(Value::String(s))) => Ok(Err(Fault {
                    code: i32::try_from(*code).unwrap_or(i32::MAX),
                    string: s.clone(),
                })),
                _ => Err(r.err(f.at, "<fault> needs faultCode (int) and faultString")),
            }
        }
        _ => Err(r.err(root.at, "<methodResponse> must hold <params> or <fault>")),
    }
}

// ---------------------------------------------------------------------------------------
// base64 (RFC 4648, standard alphabet): the `base64` crate, with Python's leniency on input

/// Padding optional and trailing bits ignored on input, as Python's `decodebytes` accepts;
/// canonical padded output.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

pub fn base64_encode(data: &[u8]) -> String {
    B64.encode(data)
}

/// Decode, ignoring ASCII whitespace (as Python's `decodebytes` does); padding optional. An
/// error names the character and its offset in `s`.
pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    // Offsets in `s` of the characters kept, to locate an error in the caller's text.
    let (at, compact): (Vec<usize>, Vec<u8>) = s
        .bytes()
        .enumerate()
        .filter(|(_, c)| !c.is_ascii_whitespace())
        .unzip();
    B64.decode(&compact).map_err(|e| match e {
        DecodeError::InvalidByte(i, b'=') => format!(
            "data after '=' padding at character {}",
            at.get(i).copied().unwrap_or(i)
        ),
        DecodeError::InvalidByte(i, c) => format!(
            "{:?} at character {} is not a base64 character",
            char::from(c),
            at.get(i).copied().unwrap_or(i)
        ),
        DecodeError::InvalidLength(_) | DecodeError::InvalidPadding => {
            "truncated base64 data".to_string()
        }
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn call_of(s: &str) -> Call {
        parse_call(s.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{s}"))
    }

    fn err_of(s: &str) -> String {
        parse_call(s.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn reads_what_python_xmlrpc_client_sends() {
        // Byte for byte what supervisorctl 4.3.0 sends (SUPERVISORD.md §4.6).
        let c = call_of(
            "<?xml version='1.0'?>\n<methodCall>\n<methodName>supervisor.startProcess</methodName>\n<params>\n<param>\n<value><string>multi:multi_01</string></value>\n</param>\n</params>\n</methodCall>\n",
        );
        assert_eq!(c.method, "supervisor.startProcess");
        assert_eq!(c.params, vec![Value::str("multi:multi_01")]);
        let c = call_of(
            "<?xml version='1.0'?>\n<methodCall>\n<methodName>supervisor.getAllProcessInfo</methodName>\n<params>\n</params>\n</methodCall>\n",
        );
        assert_eq!(c.params, vec![]);
    }

    #[test]
    fn every_value_type() {
        let c = call_of(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment -->
<methodCall><methodName>x.y</methodName><params>
<param><value><int> 42 </int></value></param>
<param><value><i4>-7</i4></value></param>
<param><value><boolean>1</boolean></value></param>
<param><value><boolean>0</boolean></value></param>
<param><value><string>a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; &#233;&#x1F600;</string></value></param>
<param><value>  untyped text </value></param>
<param><value></value></param>
<param><value><string/></value></param>
<param><value><double>-1.5e3</double></value></param>
<param><value><dateTime.iso8601>20260101T12:30:05</dateTime.iso8601></value></param>
<param><value><base64>aGVs
bG8=</base64></value></param>
<param><value><array><data><value><int>1</int></value><value>two</value></data></array></value></param>
<param><value><struct><member><name>k</name><value><boolean>1</boolean></value></member><member><name></name><value><nil/></value></member></struct></value></param>
<param><value><string><![CDATA[<raw & stuff>]]></string></value></param>
</params></methodCall>"#,
        );
        let want = vec![
            Value::Int(42),
            Value::Int(-7),
            Value::Bool(true),
            Value::Bool(false),
            Value::str("a <b> & \"c\" 'd' é😀"),
            Value::str("  untyped text "),
            Value::str(""),
            Value::str(""),
            Value::Double(-1500.0),
            Value::DateTime(
                NaiveDateTime::parse_from_str("2026-01-01 12:30:05", "%Y-%m-%d %H:%M:%S").unwrap(),
            ),
            Value::Base64(b"hello".to_vec()),
            Value::Array(vec![Value::Int(1), Value::str("two")]),
            Value::Struct(vec![
                ("k".into(), Value::Bool(true)),
                (String::new(), Value::Nil),
            ]),
            Value::str("<raw & stuff>"),
        ];
        assert_eq!(c.params, want);
        assert_eq!(c.method, "x.y");
    }

    #[test]
    fn params_may_be_missing() {
        let c = call_of("<methodCall><methodName>system.listMethods</methodName></methodCall>");
        assert!(c.params.is_empty());
    }

    #[test]
    fn writes_exactly_what_python_writes() {
        // Produced by Python 3.11's xmlrpc.client.dumps (SUPERVISORD.md §4.6).
        let body = response(&Value::str("3.0"));
        assert_eq!(
            body,
            "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><string>3.0</string></value>\n</param>\n</params>\n</methodResponse>\n"
        );
        assert_eq!(body.len(), 129);
        assert_eq!(
            response(&Value::Array(vec![
                Value::record([
                    ("a", Value::Int(1)),
                    ("b", Value::Bool(true)),
                    ("c", Value::str("x<&>\"'")),
                ]),
                Value::Double(1.5),
                Value::Array(vec![]),
            ])),
            "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n<value><struct>\n<member>\n<name>a</name>\n<value><int>1</int></value>\n</member>\n<member>\n<name>b</name>\n<value><boolean>1</boolean></value>\n</member>\n<member>\n<name>c</name>\n<value><string>x&lt;&amp;&gt;\"'</string></value>\n</member>\n</struct></value>\n<value><double>1.5</double></value>\n<value><array><data>\n</data></array></value>\n</data></array></value>\n</param>\n</params>\n</methodResponse>\n"
        );
        assert_eq!(
            fault_response(&Fault {
                code: 60,
                string: "ALREADY_STARTED: a".into()
            }),
            "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>60</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>ALREADY_STARTED: a</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n"
        );
        assert_eq!(
            call("supervisor.getVersion", &[]),
            "<?xml version='1.0'?>\n<methodCall>\n<methodName>supervisor.getVersion</methodName>\n<params>\n</params>\n</methodCall>\n"
        );
    }

    #[test]
    fn ints_are_capped_to_32_bits_and_bad_chars_replaced() {
        assert!(response(&Value::Int(1 << 40)).contains("<int>2147483647</int>"));
        assert!(response(&Value::Int(-(1 << 40))).contains("<int>-2147483648</int>"));
        assert!(response(&Value::str("\x1b[31mred\x00")).contains("\u{FFFD}[31mred\u{FFFD}"));
    }

    #[test]
    fn round_trips() {
        let v = Value::Array(vec![
            Value::Int(-3),
            Value::Bool(false),
            Value::str("é & <x>\n  "),
            Value::Double(0.1),
            Value::Base64((0u8..=255).collect()),
            Value::Struct(vec![("a b".into(), Value::Array(vec![Value::Nil]))]),
        ]);
        let c = call_of(&call("m.n", std::slice::from_ref(&v)));
        assert_eq!(c.params, vec![v.clone()]);
        assert_eq!(parse_response(response(&v).as_bytes()).unwrap(), Ok(v));
        let f = Fault {
            code: 10,
            string: "BAD_NAME: x".into(),
        };
        assert_eq!(
            parse_response(fault_response(&f).as_bytes()).unwrap(),
            Err(f)
        );
    }

    #[test]
    fn errors_are_located_and_precise() {
        assert_eq!(
            err_of(""),
            "line 1, column 1: no document element (empty body?)"
        );
        assert_eq!(
            err_of("<methodCall>\n<methodName>a.b</methodName>\n<params>\n</methodCall>"),
            "line 4, column 1: </methodCall> does not match <params> (opened at line 3, column 1)"
        );
        assert_eq!(
            err_of(
                "<methodCall><methodName>a.b</methodName><params><param><value><int>x1</int></value></param></params></methodCall>"
            ),
            "line 1, column 63: <int> holds \"x1\", not an integer"
        );
        assert_eq!(
            err_of("<methodCall><params/></methodCall>"),
            "line 1, column 1: <methodCall> has no <methodName>"
        );
        assert_eq!(
            err_of("<methodResponse/>"),
            "line 1, column 1: expected <methodCall>, found <methodResponse>"
        );
        assert_eq!(
            err_of("<methodCall><methodName>a&b</methodName></methodCall>"),
            "line 1, column 26: '&' must start an entity such as &amp; (write a literal '&' as &amp;)"
        );
        assert_eq!(
            err_of("<!DOCTYPE x [<!ENTITY a 'b'>]><methodCall/>"),
            "line 1, column 1: DOCTYPE and other declarations are not allowed in XML-RPC"
        );
        assert_eq!(
            err_of(
                "<methodCall><methodName>a.b</methodName><params><param><value><bogus/></value></param></params></methodCall>"
            ),
            "line 1, column 63: unknown value type <bogus> (expected int, i4, boolean, string, double, dateTime.iso8601, base64, array, struct or nil)"
        );
        assert_eq!(
            err_of("<methodCall><methodName>a.b</methodName>"),
            "line 1, column 41: the document ends inside <methodCall> (opened at line 1, column 1)"
        );
        assert!(
            parse_call(b"<methodCall>\xff</methodCall>")
                .unwrap_err()
                .to_string()
                .contains("not valid UTF-8 (byte 12)")
        );
        let deep = format!(
            "<methodCall><methodName>a.b</methodName><params><param>{}{}</param></params></methodCall>",
            "<value><array><data>".repeat(100),
            "</data></array></value>".repeat(100)
        );
        assert!(err_of(&deep).contains("nested deeper than 256"));
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes());
        }
        assert!(base64_decode("Zm9v!").is_err());
        assert!(base64_decode("Z").is_err());
    }

    /// Property: no input panics the reader, whatever it is. Random bytes, random XML-ish
    /// token soup, and every truncation and single-byte corruption of valid documents.
    #[test]
    fn no_input_panics() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let valid = [
            call(
                "supervisor.startProcess",
                &[Value::str("grp:x"), Value::Bool(true)],
            ),
            call(
                "system.multicall",
                &[Value::Array(vec![Value::record([
                    ("methodName", Value::str("a.b")),
                    (
                        "params",
                        Value::Array(vec![
                            Value::Int(1),
                            Value::Double(2.5),
                            Value::Base64(vec![0, 1, 2]),
                        ]),
                    ),
                ])])],
            ),
            response(&Value::Struct(vec![("k".into(), Value::str("v&<>"))])),
            "<methodCall><methodName>a</methodName><params><param><value><![CDATA[x]]>&#x41;<!--c--></value></param></params></methodCall>".to_string(),
        ];
        for doc in &valid {
            let b = doc.as_bytes();
            for cut in 0..=b.len() {
                let _ = parse_call(&b[..cut]);
                let _ = parse_response(&b[..cut]);
            }
            for _ in 0..2000 {
                let mut m = b.to_vec();
                let i = rng.random_range(0..m.len());
                m[i] = rng.random();
                let _ = parse_call(&m);
                let _ = parse_response(&m);
            }
        }
        let atoms: &[&str] = &[
            "<",
            ">",
            "</",
            "/>",
            "<?",
            "?>",
            "<!--",
            "-->",
            "<![CDATA[",
            "]]>",
            "&",
            ";",
            "&#",
            "&#x",
            "&amp;",
            "=",
            "\"",
            "'",
            " ",
            "\n",
            "value",
            "array",
            "data",
            "struct",
            "member",
            "name",
            "int",
            "string",
            "base64",
            "methodCall",
            "methodName",
            "params",
            "param",
            "methodResponse",
            "fault",
            "é",
            "\u{FEFF}",
            "1",
            "x",
        ];
        for _ in 0..20_000 {
            let n = rng.random_range(0..40);
            let s: String = (0..n)
                .map(|_| atoms[rng.random_range(0..atoms.len())])
                .collect();
            let _ = parse_call(s.as_bytes());
            let _ = parse_response(s.as_bytes());
        }
        for _ in 0..5_000 {
            let n = rng.random_range(0..200);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            let _ = parse_call(&bytes);
        }
    }
}
