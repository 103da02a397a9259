//! supervisord's `%(name)s` expansion: Python %-formatting against a mapping.
//!
//! `%(name)s`, `%(name)d`, `%(name)02d`, `%(name)-8s`, … and `%%` for a literal `%`.
//! A `%` followed by anything else is an error, as in supervisord (Python raises
//! "format requires a mapping"), so `date +%Y` must be written `date +%%Y`.

use std::collections::BTreeMap;
use std::path::Path;

/// A value a name expands to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Str(String),
    Int(i64),
}

/// The names one option may use.
pub(crate) struct Names<'a> {
    pub values: BTreeMap<&'static str, Value>,
    /// Where `%(ENV_X)s` looks `X` up; later maps take precedence.
    pub env: Vec<&'a BTreeMap<String, String>>,
    /// Names vigil knows but that are not available in this option, with the reason.
    pub unavailable: &'a [(&'static str, &'static str)],
}

impl<'a> Names<'a> {
    /// What a path outside any program may name: `%(here)s` (`here`), `%(host_node_name)s`
    /// and `%(ENV_X)s`.
    pub(crate) fn paths(here: &Path, env: &'a super::Env) -> Names<'a> {
        let mut values = BTreeMap::new();
        values.insert("here", Value::Str(here.to_string_lossy().into_owned()));
        values.insert("host_node_name", Value::Str(env.host_node_name.clone()));
        Names {
            values,
            env: vec![&env.vars],
            unavailable: &[],
        }
    }
}

/// What went wrong, at which byte of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpandError {
    pub offset: usize,
    pub message: String,
}

/// Widths beyond this are refused rather than allocated.
const MAX_WIDTH: usize = 1024;

impl Names<'_> {
    /// The names this option may use, sorted, `ENV_<NAME>` last.
    pub fn available(&self) -> String {
        let mut v: Vec<String> = self.values.keys().map(|k| (*k).to_string()).collect();
        v.push("ENV_<NAME>".to_string());
        v.join(", ")
    }

    fn lookup(&self, name: &str) -> Result<Value, String> {
        if let Some(v) = self.values.get(name) {
            return Ok(v.clone());
        }
        if let Some(var) = name.strip_prefix("ENV_") {
            for map in self.env.iter().rev() {
                if let Some(v) = map.get(var) {
                    return Ok(Value::Str(v.clone()));
                }
            }
            return Err(format!(
                "%({name}): {var} is not set in vigil's environment"
            ));
        }
        if let Some((_, why)) = self.unavailable.iter().find(|(n, _)| *n == name) {
            return Err(format!(
                "%({name}) is not available here ({why}); available names: {}",
                self.available()
            ));
        }
        let known: Vec<&str> = self
            .values
            .keys()
            .copied()
            .chain(self.unavailable.iter().map(|(n, _)| *n))
            .collect();
        let hint = match super::suggest::did_you_mean(name, &known) {
            Some(s) => format!(" (did you mean %({s})?)"),
            None => String::new(),
        };
        Err(format!(
            "unknown name %({name}){hint}; available names: {}",
            self.available()
        ))
    }
}

/// A parsed conversion spec: `%(name)<flags><width>.<precision><conv>`.
struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alt: bool,
    width: usize,
    precision: Option<usize>,
    conv: char,
}

/// Expand every `%(name)…` and `%%` in `template`.
pub(crate) fn expand(template: &str, names: &Names<'_>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template.char_indices().peekable();
    while let Some((start, c)) = rest.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let fail = |message: String| ExpandError {
            offset: start,
            message,
        };
        match rest.next() {
            Some((_, '%')) => out.push('%'),
            Some((_, '(')) => {
                let mut name = String::new();
                let mut closed = false;
                for (_, c) in rest.by_ref() {
                    if c == ')' {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                if !closed {
                    return Err(fail(format!(
                        "unterminated \"%({name}\": missing ')' (write a literal '%' as '%%')"
                    )));
                }
                let mut spec = Spec {
                    left: false,
                    zero: false,
                    plus: false,
                    space: false,
                    alt: false,
                    width: 0,
                    precision: None,
                    conv: 's',
                };
                while let Some(&(_, f)) = rest.peek() {
                    match f {
                        '-' => spec.left = true,
                        '0' => spec.zero = true,
                        '+' => spec.plus = true,
                        ' ' => spec.space = true,
                        '#' => spec.alt = true,
                        _ => break,
                    }
                    rest.next();
                }
                let digits = |rest: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
                    let mut n: usize = 0;
                    while let Some(&(_, d)) = rest.peek() {
                        let Some(v) = d.to_digit(10) else { break };
                        n = n.saturating_mul(10).saturating_add(v as usize);
                        rest.next();
                    }
                    n
                };
                spec.width = digits(&mut rest);
                if let Some(&(_, '.')) = rest.peek() {
                    rest.next();
                    spec.precision = Some(digits(&mut rest));
                }
                if spec.width > MAX_WIDTH || spec.precision.unwrap_or(0) > MAX_WIDTH {
                    return Err(fail(format!(
                        "width or precision in \"%({name})\" is larger than {MAX_WIDTH}"
                    )));
                }
                // Python accepts and ignores a length modifier.
                if let Some(&(_, 'h' | 'l' | 'L')) = rest.peek() {
                    rest.next();
                }
                let Some((_, conv)) = rest.next() else {
                    return Err(fail(format!(
                        "incomplete format \"%({name})\": a conversion such as 's' or 'd' must follow"
                    )));
                };
                spec.conv = conv;
                let value = names.lookup(&name).map_err(fail)?;
                let piece = format_value(&name, &value, &spec).map_err(fail)?;
                out.push_str(&piece);
            }
            _ => {
                return Err(fail(
                    "'%' must start \"%(name)s\" or be doubled as '%%' for a literal '%'"
                        .to_string(),
                ));
            }
        }
    }
    Ok(out)
}

fn format_value(name: &str, value: &Value, spec: &Spec) -> Result<String, String> {
    match spec.conv {
        's' => {
            let s = match value {
                Value::Str(s) => s.clone(),
                Value::Int(n) => n.to_string(),
            };
            let s: String = match spec.precision {
                Some(p) => s.chars().take(p).collect(),
                None => s,
            };
            Ok(pad(String::new(), s, spec, false))
        }
        'd' | 'i' | 'u' | 'x' | 'X' | 'o' => {
            let Value::Int(n) = value else {
                return Err(format!(
                    "%({name}){} needs a number, but {name} is a string (use %({name})s)",
                    spec.conv
                ));
            };
            let magnitude = n.unsigned_abs();
            let mut digits = match spec.conv {
                'x' => format!("{magnitude:x}"),
                'X' => format!("{magnitude:X}"),
                'o' => format!("{magnitude:o}"),
                _ => magnitude.to_string(),
            };
            if let Some(p) = spec.precision {
                while digits.len() < p {
                    digits.insert(0, '0');
                }
            }
            let mut prefix = String::new();
            if *n < 0 {
                prefix.push('-');
            } else if spec.plus {
                prefix.push('+');
            } else if spec.space {
                prefix.push(' ');
            }
            if spec.alt {
                match spec.conv {
                    'x' => prefix.push_str("0x"),
                    'X' => prefix.push_str("0X"),
                    'o' => prefix.push_str("0o"),
                    _ => {}
                }
            }
            Ok(pad(prefix, digits, spec, true))
        }
        other => Err(format!(
            "unsupported conversion '{other}' in \"%({name}){other}\"; use 's' for text or 'd' for numbers"
        )),
    }
}

/// Apply width: left-align with `-`, zero-fill numbers with `0`, else right-align.
fn pad(prefix: String, body: String, spec: &Spec, numeric: bool) -> String {
    let len = prefix.chars().count() + body.chars().count();
    if len >= spec.width {
        return prefix + &body;
    }
    let fill = spec.width - len;
    if spec.left {
        prefix + &body + &" ".repeat(fill)
    } else if spec.zero && numeric {
        prefix + &"0".repeat(fill) + &body
    } else {
        " ".repeat(fill) + &prefix + &body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<'a>(env: &'a BTreeMap<String, String>) -> Names<'a> {
        let mut values = BTreeMap::new();
        values.insert("program_name", Value::Str("bot".into()));
        values.insert("process_num", Value::Int(7));
        values.insert("neg", Value::Int(-5));
        Names {
            values,
            env: vec![env],
            unavailable: &[("group_name", "not in this test")],
        }
    }

    fn ex(t: &str) -> Result<String, ExpandError> {
        let mut env = BTreeMap::new();
        env.insert("HOME".to_string(), "/home/x".to_string());
        expand(t, &names(&env))
    }

    fn ok(t: &str) -> String {
        match ex(t) {
            Ok(s) => s,
            Err(e) => panic!("{t}: {e:?}"),
        }
    }

    #[test]
    fn plain_and_percent() {
        assert_eq!(ok("abc"), "abc");
        assert_eq!(ok("100%%"), "100%");
        assert_eq!(ok("%%(program_name)s"), "%(program_name)s");
        assert_eq!(ok("é%(program_name)sé"), "éboté");
    }

    #[test]
    fn formats() {
        assert_eq!(ok("%(program_name)s_%(process_num)02d"), "bot_07");
        assert_eq!(ok("%(process_num)d"), "7");
        assert_eq!(ok("%(process_num)s"), "7");
        assert_eq!(ok("%(process_num)3d|"), "  7|");
        assert_eq!(ok("%(process_num)-3d|"), "7  |");
        assert_eq!(ok("%(process_num).3d"), "007");
        assert_eq!(ok("%(process_num)+d"), "+7");
        assert_eq!(ok("%(neg)04d"), "-005");
        assert_eq!(ok("%(process_num)#x"), "0x7");
        assert_eq!(ok("%(process_num)ld"), "7");
        assert_eq!(ok("%(program_name)5s"), "  bot");
        assert_eq!(ok("%(program_name)-5s|"), "bot  |");
        assert_eq!(ok("%(program_name).2s"), "bo");
        assert_eq!(ok("%(ENV_HOME)s/x"), "/home/x/x");
    }

    #[test]
    fn errors() {
        let e = ex("a %(nope)s").err();
        assert_eq!(
            e,
            Some(ExpandError {
                offset: 2,
                message: "unknown name %(nope); available names: neg, process_num, program_name, ENV_<NAME>".into()
            })
        );
        let e = ex("%(ENV_MISSING)s").err().map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some("%(ENV_MISSING): MISSING is not set in vigil's environment")
        );
        let e = ex("x%(group_name)s").err();
        assert_eq!(e.as_ref().map(|e| e.offset), Some(1));
        assert!(e.is_some_and(|e| e.message.contains("not available here (not in this test)")));
        assert_eq!(ex("date +%Y").err().map(|e| e.offset), Some(6));
        let e = ex("%(program_nam)s").err().map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some(
                "unknown name %(program_nam) (did you mean %(program_name)?); available names: neg, process_num, program_name, ENV_<NAME>"
            )
        );
        assert!(ex("%(program_name").is_err());
        assert!(ex("%(program_name)").is_err());
        assert!(ex("%(program_name)d").is_err());
        assert!(ex("%(process_num)f").is_err());
        assert!(ex("%(process_num)99999d").is_err());
        assert!(ex("%").is_err());
    }
}
