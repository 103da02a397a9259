//! A Kraken-shaped exchange on loopback that really implements the dead-man switch: it
//! keeps resting orders, runs the `CancelAllOrdersAfter` countdown on its own thread and
//! cancels every order when it expires (then the timer stays off until re-armed, as on
//! Kraken). It checks `API-Key`, `API-Sign` (the real HMAC, with its own copy of the
//! secret) and that nonces strictly increase, and answers `CancelAll` with the count. Faults
//! can be switched on per call.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const KEY: &str = "test-api-key";
/// Kraken's published example secret (TRADING.md §5.2).
pub const SECRET: &str =
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==";

#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    Normal,
    /// Answer every private call with this error string.
    Error(&'static str),
    /// Answer after this long (longer than vigil's request timeout).
    Hang(Duration),
    /// An HTML page instead of JSON.
    Malformed,
    /// `CancelAllOrdersAfter` never answers (other calls do).
    HoldRefresh,
}

#[derive(Debug)]
pub struct State {
    /// Resting orders (ids).
    pub orders: Vec<u64>,
    next_order: u64,
    /// The countdown: when every order is cancelled.
    pub trigger: Option<Instant>,
    /// Each time the countdown fired: when, and how many orders it cancelled.
    pub fired: Vec<(Instant, usize)>,
    /// `CancelAllOrdersAfter` calls taken: when, with which timeout.
    pub cancel_after: Vec<(Instant, u32)>,
    /// `CancelAll` calls: how many orders each cancelled.
    pub cancel_all: Vec<usize>,
    /// Requests refused for a bad key, signature or nonce.
    pub refused: Vec<String>,
    /// `CancelAllOrdersAfter` requests held without an answer (`Mode::HoldRefresh`).
    pub held: usize,
    last_nonce: u64,
    pub mode: Mode,
}

#[derive(Clone)]
pub struct FakeKraken {
    pub url: String,
    st: Arc<(Mutex<State>, Condvar)>,
}

impl FakeKraken {
    pub fn start() -> FakeKraken {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let st = Arc::new((
            Mutex::new(State {
                orders: Vec::new(),
                next_order: 1,
                trigger: None,
                fired: Vec::new(),
                cancel_after: Vec::new(),
                cancel_all: Vec::new(),
                refused: Vec::new(),
                held: 0,
                last_nonce: 0,
                mode: Mode::Normal,
            }),
            Condvar::new(),
        ));
        let fake = FakeKraken { url, st };
        // The matching engine's countdown.
        let timer = fake.st.clone();
        std::thread::spawn(move || {
            let (m, cv) = &*timer;
            let mut g = m.lock().unwrap();
            loop {
                match g.trigger {
                    Some(t) if Instant::now() >= t => {
                        let n = g.orders.len();
                        g.orders.clear();
                        g.trigger = None; // stays off until re-armed
                        g.fired.push((Instant::now(), n));
                        cv.notify_all();
                    }
                    Some(t) => {
                        let wait = t.saturating_duration_since(Instant::now());
                        g = cv.wait_timeout(g, wait).unwrap().0;
                    }
                    None => g = cv.wait(g).unwrap(),
                }
            }
        });
        let srv = fake.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { continue };
                let srv = srv.clone();
                std::thread::spawn(move || srv.serve(s));
            }
        });
        fake
    }

    pub fn set_mode(&self, mode: Mode) {
        self.st.0.lock().unwrap().mode = mode;
    }

    /// Place `n` resting orders directly (as a bot would).
    pub fn place(&self, n: usize) {
        let (m, cv) = &*self.st;
        let mut g = m.lock().unwrap();
        for _ in 0..n {
            let id = g.next_order;
            g.next_order += 1;
            g.orders.push(id);
        }
        cv.notify_all();
    }

    /// Wait (generously) until `pred` holds; returns what it computed.
    pub fn wait<T>(&self, timeout: Duration, what: &str, pred: impl Fn(&State) -> Option<T>) -> T {
        let (m, cv) = &*self.st;
        let deadline = Instant::now() + timeout;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(v) = pred(&g) {
                return v;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "fake Kraken: timed out waiting for {what}: {g:?}"
            );
            g = cv.wait_timeout(g, left).unwrap().0;
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.st.0.lock().unwrap())
    }

    fn serve(&self, mut s: std::net::TcpStream) {
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut first = String::new();
        r.read_line(&mut first).unwrap_or(0);
        let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut len = 0usize;
        let (mut key, mut sign) = (String::new(), String::new());
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
            let (name, value) = h.split_once(':').unwrap_or((&h, ""));
            let value = value.trim().to_string();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => len = value.parse().unwrap_or(0),
                "api-key" => key = value,
                "api-sign" => sign = value,
                _ => {}
            }
        }
        let mut body = vec![0u8; len];
        let _ = r.read_exact(&mut body);
        let body = String::from_utf8_lossy(&body).to_string();
        let answer = self.answer(&path, &key, &sign, &body);
        let _ = s.write_all(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                answer.len(),
                answer
            )
            .as_bytes(),
        );
    }

    fn answer(&self, path: &str, key: &str, sign: &str, body: &str) -> String {
        let field = |k: &str| {
            body.split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .map(str::to_string)
        };
        if path == "/0/private/AddOrder" {
            self.place(1);
            return r#"{"error":[],"result":{"txid":["OFAKE"]}}"#.into();
        }
        let mode = self.st.0.lock().unwrap().mode.clone();
        match mode {
            Mode::Normal => {}
            Mode::Error(e) => return format!(r#"{{"error":["{e}"]}}"#),
            Mode::Hang(d) => std::thread::sleep(d),
            Mode::Malformed => return "<html>502 Bad Gateway</html>".into(),
            Mode::HoldRefresh if path == "/0/private/CancelAllOrdersAfter" => {
                let (m, cv) = &*self.st;
                m.lock().unwrap().held += 1;
                cv.notify_all();
                std::thread::sleep(Duration::from_secs(600));
                return String::new();
            }
            Mode::HoldRefresh => {}
        }
        let nonce = field("nonce").unwrap_or_default();
        let (m, cv) = &*self.st;
        let mut g = m.lock().unwrap();
        let refuse = |g: &mut State, e: &str| {
            g.refused.push(format!("{path}: {e}"));
            format!(r#"{{"error":["{e}"]}}"#)
        };
        if key != KEY {
            return refuse(&mut g, "EAPI:Invalid key");
        }
        let want = vigil_core::kraken::api_sign(path, &nonce, body, SECRET).unwrap();
        if sign != want {
            return refuse(&mut g, "EAPI:Invalid signature");
        }
        match nonce.parse::<u64>() {
            Ok(n) if n > g.last_nonce => g.last_nonce = n,
            _ => return refuse(&mut g, "EAPI:Invalid nonce"),
        }
        let now = chrono::Utc::now();
        let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let out = match path {
            "/0/private/CancelAllOrdersAfter" => {
                let Some(timeout) = field("timeout").and_then(|t| t.parse::<u32>().ok()) else {
                    return refuse(&mut g, "EGeneral:Invalid arguments");
                };
                g.cancel_after.push((Instant::now(), timeout));
                let trigger = if timeout == 0 {
                    g.trigger = None;
                    "0".to_string()
                } else {
                    g.trigger = Some(Instant::now() + Duration::from_secs(u64::from(timeout)));
                    fmt(now + chrono::Duration::seconds(i64::from(timeout)))
                };
                format!(
                    r#"{{"error":[],"result":{{"currentTime":"{}","triggerTime":"{trigger}"}}}}"#,
                    fmt(now)
                )
            }
            "/0/private/CancelAll" => {
                let n = g.orders.len();
                g.orders.clear();
                g.cancel_all.push(n);
                format!(r#"{{"error":[],"result":{{"count":{n}}}}}"#)
            }
            _ => r#"{"error":["EGeneral:Unknown method"]}"#.into(),
        };
        cv.notify_all();
        out
    }
}
