//! "Did you mean …?" for unknown keys and names: the closest candidate by edit distance.

/// Edit distance (optimal string alignment: insertions, deletions, substitutions and
/// transpositions of neighbours each cost 1) over chars, ignoring ASCII case.
#[cfg(test)]
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a = folded(a);
    let b = folded(b);
    // A band as wide as the longer word: every cell, the exact distance.
    let all = a.len().max(b.len());
    osa_within(&a, &b, all, &mut Rows::default()).unwrap_or(all)
}

/// `s`'s chars, ASCII letters lowercased.
fn folded(s: &str) -> Vec<char> {
    s.chars().map(|c| c.to_ascii_lowercase()).collect()
}

/// The three rows [`osa_within`] works in, kept between calls so that scoring many
/// candidates allocates once.
#[derive(Default)]
struct Rows {
    before: Vec<usize>,
    prev: Vec<usize>,
    cur: Vec<usize>,
}

/// The optimal string alignment distance of `a` and `b` if it is at most `k`, else `None`.
///
/// Row by row: row `i` holds the distances between `a[..i]` and the `b[..j]`, and a
/// transposition looks two rows back. Only the band `|i - j| <= k` is computed (a cell
/// outside it is at least `|i - j|` away; every value above `k` is kept as `k + 1`), and the
/// scan stops once two consecutive rows are all above `k`: for a limit of at most 3 that is a
/// few cells per character, not a full table per candidate.
fn osa_within(a: &[char], b: &[char], k: usize, rows: &mut Rows) -> Option<usize> {
    let (n, m) = (a.len(), b.len());
    if n.abs_diff(m) > k {
        return None;
    }
    let far = k + 1;
    let Rows { before, prev, cur } = rows;
    for r in [&mut *before, &mut *prev, &mut *cur] {
        r.clear();
        r.resize(m + 1, far);
    }
    for (j, cell) in prev.iter_mut().enumerate().take(k + 1) {
        *cell = j;
    }
    let mut prev_min = 0;
    for i in 1..=n {
        cur.fill(far);
        cur[0] = i.min(far);
        let mut row_min = cur[0];
        for j in i.saturating_sub(k).max(1)..=(i + k).min(m) {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(before[j - 2] + 1);
            }
            cur[j] = v.min(far);
            row_min = row_min.min(cur[j]);
        }
        // A cell draws on the two rows above it only: both beyond k, so is everything after.
        if row_min > k && prev_min > k {
            return None;
        }
        prev_min = row_min;
        // before ← prev ← cur; cur is refilled in the next row.
        std::mem::swap(before, prev);
        std::mem::swap(prev, cur);
    }
    let d = prev[m];
    (d <= k).then_some(d)
}

/// The closest candidate, if it is close enough to be a plausible typo: at most a third of
/// the word's length (at least 1, at most 3) edits away. Ties go to the earlier candidate.
///
/// Only distances up to that limit are computed ([`osa_within`]): a long mistyped key (or a
/// fuzzer's) costs a pass over the candidates, not a full table per candidate.
pub(crate) fn did_you_mean<'c, S: AsRef<str>>(word: &str, candidates: &'c [S]) -> Option<&'c str> {
    let word = folded(word);
    let limit = (word.len() / 3).clamp(1, 3);
    let mut rows = Rows::default();
    let mut cand = Vec::new();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let c = c.as_ref();
        // Closer than the best so far, or not worth scoring.
        let k = best.map_or(limit, |(bd, _)| bd.saturating_sub(1).min(limit));
        if best.is_some_and(|(bd, _)| bd == 0) || c.chars().count().abs_diff(word.len()) > k {
            continue;
        }
        cand.clear();
        cand.extend(c.chars().map(|c| c.to_ascii_lowercase()));
        if let Some(d) = osa_within(&word, &cand, k, &mut rows) {
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
    fn the_band_equals_the_full_table() {
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
                let d = reference(a, b);
                assert_eq!(distance(a, b), d, "{a:?} {b:?}");
                for k in 0..=4 {
                    let within = osa_within(&folded(a), &folded(b), k, &mut Rows::default());
                    assert_eq!(within, (d <= k).then_some(d), "{a:?} {b:?} within {k}");
                }
            }
        }
    }

    /// Many short words over a small alphabet (so transpositions and repeats are common).
    #[test]
    fn the_band_equals_the_full_table_on_generated_words() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut word = || {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let len = (x >> 60) as usize % 9;
            (0..len)
                .map(|i| ['a', 'b', 'c'][((x >> (i * 5 + 3)) % 3) as usize])
                .collect::<String>()
        };
        for _ in 0..3000 {
            let (a, b) = (word(), word());
            let d = reference(&a, &b);
            for k in 0..=4 {
                let within = osa_within(&folded(&a), &folded(&b), k, &mut Rows::default());
                assert_eq!(within, (d <= k).then_some(d), "{a:?} {b:?} within {k}");
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
