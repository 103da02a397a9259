//! "Did you mean …?" for unknown keys and names: the closest candidate by edit distance.

/// Edit distance (optimal string alignment: insertions, deletions, substitutions and
/// transpositions of neighbours each cost 1) over chars, ignoring ASCII case.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    // d[i][j]: distance between a[..i] and b[..j].
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

/// The closest candidate, if it is close enough to be a plausible typo: at most a third of
/// the word's length (at least 1, at most 3) edits away. Ties go to the earlier candidate.
pub(crate) fn did_you_mean<'c, S: AsRef<str>>(word: &str, candidates: &'c [S]) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let c = c.as_ref();
        let d = distance(word, c);
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
    }
}
