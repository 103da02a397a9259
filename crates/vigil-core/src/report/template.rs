//! Message templates and stack locations.
//!
//! A template is the message with its variable parts replaced, so that the same error with
//! another order id or another elapsed time is one group:
//!
//! | part | becomes | examples |
//! |---|---|---|
//! | a path (a token with `/` or `\`, or a `file.ext:line`) | `<path>` | `/var/log/bot`, `C:\logs`, `main.py:12` |
//! | a number, with an optional sign, fraction, exponent and unit suffix (`s`, `ms`, `%`, `x`, …) | `<num>` + the suffix | `314.4s` → `<num>s`, `-3`, `1e-5`, `0x1f` |
//! | an identifier: a token of 6 or more characters that holds a digit, or a UUID | `<id>` | `C02__611193389798432768094`, `o12345`, `d588d1dc` |
//!
//! Tokens are the runs between whitespace and the separators ``' " ` ( ) [ ] { } , ; = | < >``;
//! trailing `.`, `:`, `!` and `?` are kept as punctuation. Everything else is kept verbatim,
//! so `'JsonlWriter' object has no attribute 'order_failed'` is its own template.

const SEPARATORS: &[char] = &[
    '\'', '"', '`', '(', ')', '[', ']', '{', '}', ',', ';', '=', '|', '<', '>',
];

/// The message's template (see the module docs).
pub fn template(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut token_start: Option<usize> = None;
    for (i, c) in msg.char_indices() {
        let sep = c.is_whitespace() || SEPARATORS.contains(&c);
        match (sep, token_start) {
            (true, Some(s)) => {
                push_token(&mut out, &msg[s..i]);
                token_start = None;
                out.push(c);
            }
            (true, None) => out.push(c),
            (false, None) => token_start = Some(i),
            (false, Some(_)) => {}
        }
    }
    if let Some(s) = token_start {
        push_token(&mut out, &msg[s..]);
    }
    out
}

fn push_token(out: &mut String, tok: &str) {
    let core = tok.trim_end_matches(['.', ':', '!', '?']);
    let tail = &tok[core.len()..];
    if core.is_empty() {
        out.push_str(tok);
        return;
    }
    out.push_str(&classify(core));
    out.push_str(tail);
}

fn classify(tok: &str) -> String {
    if is_ratio(tok) {
        return tok
            .split('/')
            .map(|_| "<num>")
            .collect::<Vec<_>>()
            .join("/");
    }
    if is_path(tok) {
        return "<path>".into();
    }
    if let Some(suffix) = number_suffix(tok) {
        return format!("<num>{suffix}");
    }
    let has_digit = tok.bytes().any(|b| b.is_ascii_digit());
    if has_digit && (tok.chars().count() >= 6 || is_uuid(tok)) {
        return "<id>".into();
    }
    tok.to_owned()
}

fn is_path(tok: &str) -> bool {
    if tok.len() < 2 {
        return false;
    }
    if tok.contains('/') || tok.contains('\\') {
        // Not a ratio like `3/4` nor a pair like `BTC/USD`: those have no path-ish parts.
        let pair = tok.split('/').count() == 2
            && tok
                .split('/')
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_uppercase()));
        return !pair && !is_ratio(tok);
    }
    // `file.py:123`
    if let Some((file, line)) = tok.rsplit_once(':') {
        return !line.is_empty()
            && line.bytes().all(|b| b.is_ascii_digit())
            && file.contains('.')
            && file.bytes().any(|b| b.is_ascii_alphabetic());
    }
    false
}

fn is_ratio(tok: &str) -> bool {
    tok.contains('/') && tok.split('/').all(|p| number_suffix(p) == Some(""))
}

fn is_uuid(tok: &str) -> bool {
    tok.len() == 36 && tok.bytes().filter(|&b| b == b'-').count() == 4
}

/// `Some(suffix)` when `tok` is a number followed by an alphabetic (or `%`) unit of at most 3
/// characters; the number itself becomes `<num>`.
fn number_suffix(tok: &str) -> Option<&str> {
    let b = tok.as_bytes();
    if tok.len() > 2 && (tok.starts_with("0x") || tok.starts_with("0X")) {
        return b[2..].iter().all(u8::is_ascii_hexdigit).then_some("");
    }
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits_from = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - digits_from;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        let j = i + 1;
        let mut k = j;
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        frac_digits = k - j;
        if frac_digits > 0 {
            i = k;
        }
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut k = i + 1;
        if k < b.len() && (b[k] == b'-' || b[k] == b'+') {
            k += 1;
        }
        let e_from = k;
        while k < b.len() && b[k].is_ascii_digit() {
            k += 1;
        }
        if k > e_from {
            i = k;
        }
    }
    let suffix = &tok[i..];
    let ok = suffix.len() <= 3 && suffix.chars().all(|c| c.is_ascii_alphabetic() || c == '%');
    ok.then_some(suffix)
}

/// Where an error happened, from its stack: `file:line` of the innermost frame.
///
/// Python tracebacks (`File "x.py", line 12, in f`) list the innermost frame last; Rust
/// panics (`at src/x.rs:12:5`), JavaScript (`at f (/x.js:12:5)`), Java (`(X.java:12)`) and
/// Go (`/x.go:12 +0x1d`) list it first. The path is reported as written.
pub fn location(stack: &str) -> Option<String> {
    let mut python = None;
    for line in stack.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("File \"")
            && let Some((file, after)) = rest.split_once('"')
            && let Some(n) = after.trim_start_matches(',').trim().strip_prefix("line ")
        {
            let num: String = n.chars().take_while(char::is_ascii_digit).collect();
            if !num.is_empty() {
                python = Some(format!("{file}:{num}"));
            }
        }
    }
    if python.is_some() {
        return python;
    }
    stack.lines().find_map(generic_frame)
}

/// The first `path:line` in a frame line (`at`, parentheses or a bare Go path).
fn generic_frame(line: &str) -> Option<String> {
    let t = line.trim();
    let t = t.strip_prefix("at ").unwrap_or(t);
    let inner = match (t.rfind('('), t.rfind(')')) {
        (Some(a), Some(b)) if a < b => &t[a + 1..b],
        _ => t.split_whitespace().next().unwrap_or(""),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let segs: Vec<&str> = inner.rsplit(':').collect();
    let (file, line_no) = if segs.len() >= 3 && digits(segs[0]) && digits(segs[1]) {
        let cut = inner.len() - segs[0].len() - segs[1].len() - 2;
        (&inner[..cut], segs[1])
    } else if segs.len() >= 2 && digits(segs[0]) {
        (&inner[..inner.len() - segs[0].len() - 1], segs[0])
    } else {
        return None;
    };
    let ok = file.contains('.') && !file.contains(' ') && !file.is_empty();
    ok.then(|| format!("{file}:{line_no}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_002_messages_become_their_templates() {
        assert_eq!(
            template(
                "Heartbeat timeout: 314.4s > 300.0s (warn-only mode) | no beat history available"
            ),
            "Heartbeat timeout: <num>s > <num>s (warn-only mode) | no beat history available"
        );
        assert_eq!(
            template(
                "Heartbeat timeout: 554.4s > 300.0s (warn-only mode) | no beat history available"
            ),
            template(
                "Heartbeat timeout: 344.4s > 300.0s (warn-only mode) | no beat history available"
            ),
        );
        assert_eq!(
            template("AttributeError: 'JsonlWriter' object has no attribute 'order_failed'"),
            "AttributeError: 'JsonlWriter' object has no attribute 'order_failed'"
        );
        assert_eq!(
            template("Order was canceled: C02__611193389798432768094 (filled 0.0/616.067)"),
            "Order was canceled: <id> (filled <num>/<num>)"
        );
        assert_eq!(
            template("Could not write /var/log/bot/session_20251026_180621.log: disk full"),
            "Could not write <path>: disk full"
        );
        assert_eq!(template("pair BTC/USD at 3 x"), "pair BTC/USD at <num> x");
        assert_eq!(
            template("retry 3/5 after 0x1f"),
            "retry <num>/<num> after <num>"
        );
        assert_eq!(
            template("id=550e8400-e29b-41d4-a716-446655440000."),
            "id=<id>."
        );
        assert_eq!(
            template("at main.py:12 took 12ms!"),
            "at <path> took <num>ms!"
        );
        assert_eq!(template("MD_POLL_OVERRUN v2 ok"), "MD_POLL_OVERRUN v2 ok");
        assert_eq!(template(""), "");
    }

    #[test]
    fn locations_come_from_the_innermost_frame() {
        let py = "Traceback (most recent call last):\n  File \"/engine/engine.py\", line 1188, in _on_order_intent\n    self.order_router.handle_intent(intent_data)\n  File \"/services/order_router.py\", line 783, in handle_intent\n    self.tl.order_failed(...)\nAttributeError: 'JsonlWriter' object has no attribute 'order_failed'";
        assert_eq!(
            location(py).as_deref(),
            Some("/services/order_router.py:783")
        );
        let rust2 = "   0: engine::run\n             at src/engine.rs:42:9\n";
        assert_eq!(location(rust2).as_deref(), Some("src/engine.rs:42"));
        let js = "TypeError: x is undefined\n    at placeOrder (/app/orders.js:17:5)\n    at main (/app/index.js:3:1)";
        assert_eq!(location(js).as_deref(), Some("/app/orders.js:17"));
        let java = "java.lang.NullPointerException\n\tat com.x.Router.route(Router.java:88)";
        assert_eq!(location(java).as_deref(), Some("Router.java:88"));
        let go = "goroutine 1 [running]:\nmain.main()\n\t/src/app/main.go:27 +0x1d";
        assert_eq!(location(go).as_deref(), Some("/src/app/main.go:27"));
        assert_eq!(location("no frames here"), None);
    }
}
