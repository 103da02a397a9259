//! "Did you mean …?" for unknown keys and names: the closest candidate by edit distance.

/// Edit distance (optimal string alignment: insertions, deletions, substitutions and
/// transpositions of neighbours each cost 1) over chars, ignoring ASCII case.
#[cfg(test)]
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a = folded(a);
    let b = folded(b);
    osa(&a, &b, &mut Rows::default())
}

/// `s`'s chars, ASCII letters lowercased.
fn folded(s: &str) -> Vec<char> {
    s.chars().map(|c| c.to_ascii_lowercase()).collect()
}

/// The three rows [`osa`] works in, kept between calls so that scoring many candidates
/// allocates once.
#[derive(Default)]
struct Rows {
    before: Vec<usize>,
    prev: Vec<usize>,
    cur: Vec<usize>,
}

/// Optimal string alignment distance of `a` and `b`, row by row: row `i` holds the distances
/// between `a[..i]` and every `b[..j]`, and a transposition looks two rows back.
fn osa(a: &[char], b: &[char], rows: &mut Rows) -> usize {
    let Rows { before, prev, cur } = rows;
    for r in [&mut *before, &mut *prev, &mut *cur] {
        r.clear();
        r.resize(b.len() + 1, 0);
    }
    for (j, cell) in prev.iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(before[j - 2] + 1);
            }
            cur[j] = v;
        }
        // before ← prev ← cur; cur's old contents are overwritten in the next row.
        std::mem::swap(before, prev);
        std::mem::swap(prev, cur);
    }
    prev[b.len()]
}

/// The closest candidate, if it is close enough to be a plausible typo: at most a third of
/// the word's length (at least 1, at most 3) edits away. Ties go to the earlier candidate.
///
/// Every edit changes the length by at most one, so a candidate whose length differs from the
/// word's by more than the limit is never scored: a long mistyped key (or a fuzzer's) costs
/// one pass over the candidates, not a full table per candidate.
pub(crate) fn did_you_mean<'c, S: AsRef<str>>(word: &str, candidates: &'c [S]) -> Option<&'c str> {
    let word = folded(word);
    let limit = (word.len() / 3).clamp(1, 3);
    let mut rows = Rows::default();
    let mut cand = Vec::new();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let c = c.as_ref();
        if c.chars().count().abs_diff(word.len()) > limit {
            continue;
        }
        cand.clear();
        cand.extend(c.chars().map(|c| c.to_ascii_lowercase()));
        let d = osa(&word, &cand, &mut rows);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("Command", "command"), 0);
        assert_eq!(distance("comand", "command"), 1);
        assert_eq!(distance("bto", "bot"), 1);
        assert_eq!(distance("autorestrat", "autorestart"), 1);
    }

    /// The full-table definition, for comparison with the rolling rows.
    fn reference(a: &str, b: &str) -> usize {
        let a = folded(a);
        let b = folded(b);
        let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i;
        }
        for (j, cell) in d[0].iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut v = (d[i - 1][j] + 1)
                    .min(d[i][j - 1] + 1)
                    .min(d[i - 1][j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(d[i - 2][j - 2] + 1);
                }
                d[i][j] = v;
            }
        }
        d[a.len()][b.len()]
    }

    #[test]
    fn rolling_rows_equal_the_full_table() {
        let words = [
            "",
            "a",
            "ab",
            "ba",
            "abc",
            "acb",
            "ca",
            "abcd",
            "badc",
            "command",
            "comand",
            "cmomand",
            "Command",
            "autorestrat",
            "autorestart",
            "stdout_logfile",
            "ébc",
            "bé",
        ];
        for a in words {
            for b in words {
                assert_eq!(distance(a, b), reference(a, b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn suggestions() {
        let keys = [
            "command",
            "autostart",
            "autorestart",
            "startsecs",
            "programs",
        ];
        assert_eq!(did_you_mean("comand", &keys), Some("command"));
        assert_eq!(did_you_mean("autorestrat", &keys), Some("autorestart"));
        assert_eq!(did_you_mean("autostart", &keys), Some("autostart"));
        assert_eq!(did_you_mean("program", &keys), Some("programs"));
        assert_eq!(did_you_mean("xyz", &keys), None);
        assert_eq!(did_you_mean("log", &keys), None);
        let none: [&str; 0] = [];
        assert_eq!(did_you_mean("x", &none), None);
        // Length pruning: a long word is compared with nothing, and finds nothing.
        assert_eq!(did_you_mean(&"command".repeat(500), &keys), None);
        assert_eq!(did_you_mean("commandxyz", &keys), Some("command"));
    }
}
