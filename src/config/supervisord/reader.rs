//! The INI reader: Python `RawConfigParser` as supervisord configures it (comments,
//! continuation lines, repeated sections merged), `[include] files` in sorted glob order,
//! `%(here)s` per file.

use super::*;

/// One `key = value` as read.
#[derive(Debug, Clone)]
pub(crate) struct IniEntry {
    /// Lower case.
    pub(crate) key: String,
    pub(crate) key_at: usize,
    /// Continuation lines joined with `\n`, `%(here)s` replaced.
    pub(crate) value: String,
    /// The value on its first line.
    pub(crate) span: Range<usize>,
    /// Index of the file (in the [`Ctx`] and [`IniDoc::dirs`]).
    pub(crate) file: usize,
}

#[derive(Debug)]
pub(crate) struct IniSection {
    /// As written between the brackets.
    pub(crate) name: String,
    pub(crate) header_at: usize,
    pub(crate) entries: Vec<IniEntry>,
}

impl IniSection {
    pub(crate) fn get(&self, key: &str) -> Option<&IniEntry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// Every section of the main file and its includes, merged, in order of first appearance.
pub(crate) struct IniDoc {
    pub(crate) sections: Vec<IniSection>,
    /// The directory of each file read (`%(here)s`), by file index.
    pub(crate) dirs: Vec<PathBuf>,
}

impl IniDoc {
    pub(crate) fn section(&self, name: &str) -> Option<&IniSection> {
        self.sections.iter().find(|s| s.name == name)
    }

    pub(crate) fn dir_of(&self, e: &IniEntry) -> &Path {
        self.dirs
            .get(e.file)
            .map_or(Path::new("/"), PathBuf::as_path)
    }
}

/// Where an inline comment starts, as Python's configparser finds it: each round looks at the
/// next `;` and the next `#`; the first round where one of them starts the line or follows
/// whitespace decides. A line whose text starts with `;` or `#` is all comment.
pub(crate) fn comment_start(line: &str) -> Option<usize> {
    let trimmed = line.trim_start();
    if trimmed.starts_with(';') || trimmed.starts_with('#') {
        return Some(0);
    }
    let mut next: [Option<usize>; 2] = [Some(0), Some(0)];
    loop {
        let mut found_any = false;
        let mut best: Option<usize> = None;
        for (i, prefix) in [';', '#'].into_iter().enumerate() {
            let Some(from) = next[i] else { continue };
            match line.get(from..).and_then(|rest| rest.find(prefix)) {
                None => next[i] = None,
                Some(rel) => {
                    let pos = from + rel;
                    found_any = true;
                    next[i] = Some(pos + 1);
                    let after_space = pos == 0
                        || line
                            .get(..pos)
                            .and_then(|b| b.chars().next_back())
                            .is_some_and(char::is_whitespace);
                    if after_space {
                        best = Some(best.map_or(pos, |b: usize| b.min(pos)));
                    }
                }
            }
        }
        if best.is_some() || !found_any {
            return best;
        }
    }
}

/// Byte offset of `sub` (a slice of `whole`) within `whole`.
pub(crate) fn offset_in(whole: &str, sub: &str) -> usize {
    (sub.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

/// `[name]` → `name` (the text up to the last `]`), with any text after it.
pub(crate) fn section_header(value: &str) -> Option<(&str, &str)> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    if end == 0 {
        return None;
    }
    Some((rest.get(..end)?, rest.get(end + 1..)?))
}

/// `%` doubled: a literal for the expansions.
pub(crate) fn esc(s: &str) -> String {
    s.replace('%', "%%")
}

/// Replace each exact `%(NAME)s` for which `f` has a value (already escaped), leaving `%%`
/// and every other `%` form alone.
pub(crate) fn subst(t: &str, f: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(i) = rest.find('%') {
        out.push_str(rest.get(..i).unwrap_or(""));
        let tail = rest.get(i..).unwrap_or("");
        if let Some(after) = tail.strip_prefix("%%") {
            out.push_str("%%");
            rest = after;
            continue;
        }
        if let Some(inner) = tail.strip_prefix("%(")
            && let Some(close) = inner.find(')')
            && inner.get(close + 1..).is_some_and(|a| a.starts_with('s'))
            && let Some(rep) = inner.get(..close).and_then(f)
        {
            out.push_str(&rep);
            rest = inner.get(close + 2..).unwrap_or("");
            continue;
        }
        out.push('%');
        rest = tail.get(1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// Read one file into `doc`; syntax errors go to `cx`. Returns how many there were.
pub(crate) fn read_ini(cx: &mut Ctx, doc: &mut IniDoc, file: usize, included: bool) -> usize {
    let before = cx.errors.len();
    let Some((text, base)) = cx.files.get(file).map(|f| (f.text.clone(), f.base)) else {
        return 0;
    };
    let here = esc(&doc
        .dirs
        .get(file)
        .map_or_else(String::new, |d| d.to_string_lossy().into_owned()));
    let mut cur: Option<usize> = None;
    let mut opt: Option<(usize, usize)> = None;
    let mut indent_level = 0usize;
    let mut line_start = 0usize;
    for raw_line in text.split('\n') {
        let ls = line_start;
        line_start += raw_line.len() + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        let cs = comment_start(line);
        let content = line.get(..cs.unwrap_or(line.len())).unwrap_or("");
        let value = content.trim();
        if value.is_empty() {
            // An empty line inside a value is kept (and trailing ones dropped at the end).
            if cs.is_none()
                && let Some((si, ei)) = opt
                && let Some(e) = doc.sections.get_mut(si).and_then(|s| s.entries.get_mut(ei))
            {
                e.value.push('\n');
            }
            continue;
        }
        let indent = line.chars().take_while(|c| c.is_whitespace()).count();
        let at = base + ls + offset_in(line, value);
        if cur.is_some()
            && let Some((si, ei)) = opt
            && indent > indent_level
        {
            if let Some(e) = doc.sections.get_mut(si).and_then(|s| s.entries.get_mut(ei)) {
                e.value.push('\n');
                e.value.push_str(value);
            }
            continue;
        }
        indent_level = indent;
        if let Some((name, trailing)) = section_header(value) {
            if !trailing.trim().is_empty() {
                cx.at(
                    at,
                    "",
                    format!(
                        "unexpected text {:?} after the section header",
                        trailing.trim()
                    ),
                );
            }
            if included && name == "include" {
                cx.at(
                    at,
                    "",
                    "section [include] is not supported in an included file (supervisord ignores it; put every include in the main file)",
                );
            }
            let idx = match doc.sections.iter().position(|s| s.name == name) {
                Some(i) => i,
                None => {
                    doc.sections.push(IniSection {
                        name: name.to_string(),
                        header_at: at,
                        entries: Vec::new(),
                    });
                    doc.sections.len() - 1
                }
            };
            cur = Some(idx);
            opt = None;
            continue;
        }
        let Some(si) = cur else {
            cx.at(
                at,
                "",
                "a [section] header must come before any option (this line is outside every section)",
            );
            continue;
        };
        let Some(d) = value.find(['=', ':']) else {
            cx.at(
                at,
                "",
                format!(
                    "cannot parse {}: expected `option = value`, a [section] header, a comment, or a continuation line indented more than its option",
                    short_quoted(value)
                ),
            );
            opt = None;
            continue;
        };
        let key = value.get(..d).unwrap_or("").trim_end();
        if key.is_empty() {
            cx.at(at, "", "an option name is missing before the '=' or ':'");
            opt = None;
            continue;
        }
        let after = value.get(d + 1..).unwrap_or("");
        let v = after.trim();
        let vstart = at + d + 1 + (after.len() - after.trim_start().len());
        let entry = IniEntry {
            key: key.to_lowercase(),
            key_at: at,
            value: v.to_string(),
            span: vstart..vstart + v.len(),
            file,
        };
        let Some(sec) = doc.sections.get_mut(si) else {
            continue;
        };
        let ei = match sec.entries.iter().position(|e| e.key == entry.key) {
            Some(i) => {
                sec.entries[i] = entry;
                i
            }
            None => {
                sec.entries.push(entry);
                sec.entries.len() - 1
            }
        };
        opt = Some((si, ei));
    }
    // This file's values are complete: drop trailing empty lines, then put in %(here)s as
    // supervisord does (textually, per file).
    let here_of_file = |name: &str| (name == "here").then(|| here.clone());
    for s in &mut doc.sections {
        for e in &mut s.entries {
            if e.file == file {
                e.value = subst(e.value.trim_end(), &here_of_file);
            }
        }
    }
    cx.errors.len() - before
}

/// Whether a glob pattern component has wildcards.
pub(crate) fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Python's `fnmatch`: `*`, `?`, `[seq]`, `[!seq]` (with ranges); anything else literal.
pub(crate) fn fnmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    pub(crate) fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p[0] == '['; returns (matched, length of the class) or None if unterminated.
        let mut i = 1;
        let negate = matches!(p.get(1), Some('!'));
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while let Some(&ch) = p.get(i) {
            if ch == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|e| *e != ']') {
                let hi = p[i + 2];
                if ch <= c && c <= hi {
                    matched = true;
                }
                i += 3;
            } else {
                if ch == c {
                    matched = true;
                }
                i += 1;
            }
        }
        None
    }
    pub(crate) fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => match (class(p, n.first().copied().unwrap_or('\0')), n.first()) {
                (Some((m, len)), Some(_)) => m && go(&p[len..], &n[1..]),
                (Some(_), None) => false,
                (None, Some(c)) => *c == '[' && go(&p[1..], &n[1..]),
                (None, None) => false,
            },
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

/// Python's `glob.glob` for an absolute pattern: wildcards in any component; names starting
/// with `.` only match a pattern starting with `.`. Sorted.
pub(crate) fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut current = vec![PathBuf::new()];
    for comp in pattern.components() {
        match comp {
            Component::Normal(name) => {
                let name = name.to_string_lossy();
                if !has_magic(&name) {
                    for p in &mut current {
                        p.push(&*name);
                    }
                    continue;
                }
                let mut next = Vec::new();
                for dir in &current {
                    let Ok(rd) = std::fs::read_dir(dir) else {
                        continue;
                    };
                    for e in rd.flatten() {
                        let fname = e.file_name().to_string_lossy().into_owned();
                        if fname.starts_with('.') && !name.starts_with('.') {
                            continue;
                        }
                        if fnmatch(&name, &fname) {
                            next.push(dir.join(&fname));
                        }
                    }
                }
                current = next;
            }
            other => {
                for p in &mut current {
                    p.push(other.as_os_str());
                }
            }
        }
    }
    current.retain(|p| p.exists());
    current.sort_by_key(|p| p.to_string_lossy().into_owned());
    current
}

/// `[include] files`: read each matching file (sorted, relative to the main file's directory).
/// Returns the number of syntax errors in them.
pub(crate) fn read_includes(cx: &mut Ctx, doc: &mut IniDoc, env: &Env) -> usize {
    let Some(sec) = doc.section("include") else {
        return 0;
    };
    let header_at = sec.header_at;
    let entries = sec.entries.clone();
    let Some(files) = entries.iter().find(|e| e.key == "files") else {
        cx.at(header_at, "[include] files", "required option is missing");
        return 0;
    };
    let main_dir = doc
        .dirs
        .first()
        .cloned()
        .unwrap_or_else(|| PathBuf::from("/"));
    let names = Names::paths(&main_dir, env);
    let Some(list) = cx.expand(&files.value, &files.span, "[include] files", &names) else {
        return 0;
    };
    if !crate::config::load::io_allowed() {
        // Pure parsing (fuzzing): no included file is read.
        return 0;
    }
    let mut syntax = 0;
    let mut read: HashSet<PathBuf> = HashSet::new();
    if let Some(main) = cx.files.first() {
        read.insert(std::fs::canonicalize(&main.path).unwrap_or_else(|_| main.path.clone()));
    }
    for pat in list.split_whitespace() {
        let full = resolve_clean(&main_dir, pat);
        let matches = if has_magic(pat) {
            glob(&full)
        } else if full.exists() {
            vec![full]
        } else {
            cx.at(
                files.span.start,
                "[include] files",
                format!("{} does not exist", full.display()),
            );
            continue;
        };
        for m in matches {
            let canon = std::fs::canonicalize(&m).unwrap_or_else(|_| m.clone());
            if !read.insert(canon) || m.is_dir() {
                continue;
            }
            match crate::config::load::read_text_file(&m) {
                Ok(text) => {
                    let dir = m
                        .parent()
                        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
                    cx.add_file(m.clone(), text, false);
                    doc.dirs.push(dir);
                    let idx = cx.files.len() - 1;
                    syntax += read_ini(cx, doc, idx, true);
                }
                Err(e) => cx.at(
                    files.span.start,
                    "[include] files",
                    format!("cannot read {}: {e}", m.display()),
                ),
            }
        }
    }
    syntax
}

// ------------------------------------------------------------------------------------------
// Helpers for typed values
