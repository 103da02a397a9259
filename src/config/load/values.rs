//! Typed reads of one spanned TOML value, errors into the load's [`Ctx`]: the one place where
//! the reserved sections (`[auth]`, `[venue.ID]`, `[jobs]`, the monitor's tables) and the
//! program front end word "expected X, found Y", so the same mistake reads the same in every
//! section (`FILE:LINE:COL: key: expected a boolean (true or false), found string "yes"`).

use super::*;

/// The value of a key and its dotted name, for the value-level readers below.
pub(crate) type Val<'a, 'i> = &'a Spanned<DeValue<'i>>;

impl Ctx {
    /// A finite number (integer or float), or a type error.
    pub(crate) fn number(&mut self, key: &str, v: Val<'_, '_>) -> Option<f64> {
        let n = match v.get_ref() {
            DeValue::Integer(_) => int_of(v.get_ref()).map(|i| i as f64),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() => Some(n),
            _ => {
                self.type_error(key.to_string(), v, "a number");
                None
            }
        }
    }

    /// A number in `min..=max`.
    pub(crate) fn number_in(
        &mut self,
        key: &str,
        v: Val<'_, '_>,
        min: f64,
        max: f64,
    ) -> Option<f64> {
        let n = self.number(key, v)?;
        if n < min || n > max {
            self.at(
                v.span().start,
                key,
                format!("expected a number from {min} to {max}, found {n}"),
            );
            return None;
        }
        Some(n)
    }

    pub(crate) fn boolean(&mut self, key: &str, v: Val<'_, '_>) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(key.to_string(), v, options::BOOL_EXPECTED);
                None
            }
        }
    }

    pub(crate) fn string<'a>(&mut self, key: &str, v: &'a Spanned<DeValue<'_>>) -> Option<&'a str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.type_error(key.to_string(), v, "a string");
                None
            }
        }
    }

    /// An array of strings; a non-string item is reported at the item.
    pub(crate) fn strings(&mut self, key: &str, v: Val<'_, '_>) -> Option<Vec<String>> {
        let DeValue::Array(a) = v.get_ref() else {
            self.type_error(key.to_string(), v, "an array of strings");
            return None;
        };
        let mut out = Vec::with_capacity(a.len());
        for item in a.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(s.to_string()),
                other => {
                    let d = found(other);
                    self.at(
                        item.span().start,
                        key,
                        format!("expected an array of strings, found {d} in it"),
                    );
                    return None;
                }
            }
        }
        Some(out)
    }

    /// "expected `what`, found …" at the value `v` of `key`.
    pub(crate) fn expected(&mut self, key: &str, v: Val<'_, '_>, what: &str) {
        self.type_error(key.to_string(), v, what);
    }

    /// The string value of `k` in `table` (at dotted `path`) and its span; a type error if it
    /// is not a string, None if absent.
    pub(crate) fn str_in<'a>(
        &mut self,
        table: &'a DeTable<'_>,
        path: &str,
        k: &str,
    ) -> Option<(&'a str, Range<usize>)> {
        let v = table.get(k)?;
        let s = self.string(&format!("{path}.{k}"), v)?;
        Some((s, v.span()))
    }

    /// A table, or a type error naming what was expected (`a table ([jobs])`).
    pub(crate) fn table_at<'a, 'i>(
        &mut self,
        key: &str,
        v: &'a Spanned<DeValue<'i>>,
    ) -> Option<&'a DeTable<'i>> {
        self.table(key.to_string(), v, &format!("a table ([{key}])"))
    }

    /// Report the keys of `table` (at dotted `path`) that are not in `known`.
    pub(crate) fn unknown_in(&mut self, table: &DeTable<'_>, path: &str, known: &[&str]) {
        let sec = Sec {
            table,
            path: path.to_string(),
            at: 0,
        };
        self.unknown_keys(&sec, known);
    }
}
