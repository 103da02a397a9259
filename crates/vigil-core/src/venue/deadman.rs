//! The dead-man switch of one venue, as a state machine with time as a parameter.
//!
//! - **Goal.** While trading is ACTIVE or REDUCING the switch is kept armed: a "cancel all
//!   after `timeout`" call every `refresh` (the shell asks [`Deadman::next_call`] what to
//!   call and when, and arms one timer there). On entering HALTED vigil cancels every order
//!   itself ([`Call::CancelAll`], when configured) and stops refreshing, so the running
//!   countdown fires and takes whatever the bot still placed — or arms it once with the
//!   shorter `halt_timeout`. An operator's disarm (before an exchange maintenance) turns the
//!   timer off until an arm or the next transition to ACTIVE.
//! - **Failures** are retried with backoff (exponential from 1 s, at most `refresh`; an
//!   exchange-given retry time for throttling; slower after rejections and lockouts) and
//!   counted; the refresh never stops silently.
//! - **The check** ([`Deadman::status`]): ok while armed with more than `margin` left;
//!   warn below the margin; critical when the countdown ran out (the exchange has
//!   cancelled everything) or the exchange rejects the call (bad key, permission,
//!   lockout). [`Deadman::next_deadline`] is the instant the status changes with no input.
//!
//! The countdown is tracked on the local clock, conservatively: the trigger is the time
//! the request was **sent** plus the exchange's `triggerTime − currentTime`, so a slow
//! answer never makes vigil believe it has more time than it has. The clock skew
//! (local receive time − the exchange's `currentTime`) is shown, not used.

use serde::Serialize;

use super::{CancelAfter, Failure, FailureClass};
use crate::rules::{CheckStatus, Millis, Status};
use crate::trading::TradingState;

/// How the switch of one venue is run.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadmanConfig {
    /// The countdown sent with each refresh, in seconds; 0 = never arm.
    pub timeout_s: u32,
    pub refresh_ms: Millis,
    /// Warn when less than this is left before the exchange fires.
    pub margin_ms: Millis,
    /// On HALT, arm once with this (shorter) countdown instead of letting the current one
    /// run out.
    pub halt_timeout_s: Option<u32>,
    /// On HALT, call the venue's cancel-all.
    pub cancel_on_halt: bool,
}

impl DeadmanConfig {
    pub fn timeout_ms(&self) -> Millis {
        Millis::from(self.timeout_s) * 1000
    }
}

/// How many times a cancel-all on HALT is tried before vigil gives up on it.
pub const CANCEL_ATTEMPTS: u32 = 8;
/// The wait after a rejection (bad key, permission): repeating it quickly leads to a lockout.
pub const REJECTED_RETRY_MS: Millis = 60_000;
/// The wait after `EGeneral:Temporary lockout` ("a few minutes" to ~15 minutes).
pub const LOCKOUT_RETRY_MS: Millis = 300_000;

/// A call the shell should make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// "Cancel all after `timeout_s`" (a refresh, or the one short arm on HALT).
    Arm { timeout_s: u32, on_halt: bool },
    /// "Cancel all after 0": the timer off.
    Disarm,
    /// Cancel every order now.
    CancelAll,
}

impl Call {
    pub fn name(&self) -> &'static str {
        match self {
            Call::Arm { on_halt: false, .. } => "refresh",
            Call::Arm { on_halt: true, .. } => "halt_arm",
            Call::Disarm => "disarm",
            Call::CancelAll => "cancel_all",
        }
    }
}

/// What a successful call answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    CancelAfter(CancelAfter),
    /// How many orders the exchange cancelled.
    Cancelled(u64),
}

/// What vigil wants of the switch now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Keep it armed (ACTIVE or REDUCING).
    Armed,
    /// HALTED: not refreshed; the countdown fires.
    Expiring,
    /// Disarmed by an operator.
    Disarmed,
    /// `deadman_timeout_s = 0`.
    NotArmed,
}

/// What vigil knows of the exchange's timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Exchange {
    /// No answer yet in this run.
    Unknown,
    Off,
    /// It fires at `trigger_ms` (local clock, conservative).
    Armed {
        trigger_ms: Millis,
    },
}

/// An operator's disarm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Disarm {
    pub actor: String,
    pub reason: String,
    pub at_ms: Millis,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refresh {
    pub at_ms: Millis,
    pub timeout_s: u32,
    /// The exchange's strings.
    pub current_time: String,
    pub trigger_time: String,
    /// Local receive time − the exchange's `currentTime`.
    pub skew_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailureRecord {
    pub call: &'static str,
    pub at_ms: Millis,
    #[serde(flatten)]
    pub failure: Failure,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CancelAllRecord {
    pub at_ms: Millis,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    pub detail: String,
    pub attempt: u32,
    /// The `trading_state` event that asked for it.
    pub transition_seq: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct PendingCancel {
    transition_seq: u64,
    attempts: u32,
}

/// Refused operator requests.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefusedArm {
    #[error("trading is HALTED: the switch is not refreshed while halted; it re-arms on resume")]
    Halted,
    #[error("deadman_timeout_s is 0 for this venue: there is nothing to arm")]
    NotConfigured,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Deadman {
    cfg: DeadmanConfig,
    trading: TradingState,
    disarmed: Option<Disarm>,
    exchange: Exchange,
    /// When the goal last changed (for "not armed for too long").
    goal_since: Millis,
    next_refresh_at: Option<Millis>,
    retry_at: Option<Millis>,
    consecutive_failures: u32,
    failures_total: u64,
    /// The last failure, while no call has succeeded since.
    failing: Option<FailureRecord>,
    last_failure: Option<FailureRecord>,
    last_refresh: Option<Refresh>,
    pending_cancel: Option<PendingCancel>,
    pending_halt_arm: bool,
    pending_disarm: bool,
    last_cancel_all: Option<CancelAllRecord>,
}

fn secs(ms: i128) -> f64 {
    ms as f64 / 1000.0
}

impl Deadman {
    /// A venue at start: `disarmed` is an operator's disarm persisted by the last run.
    pub fn new(
        cfg: DeadmanConfig,
        trading: TradingState,
        disarmed: Option<Disarm>,
        now_ms: Millis,
    ) -> Deadman {
        let pending_disarm = disarmed.is_some() && trading != TradingState::Halted;
        Deadman {
            cfg,
            trading,
            disarmed,
            exchange: Exchange::Unknown,
            goal_since: now_ms,
            next_refresh_at: None,
            retry_at: None,
            consecutive_failures: 0,
            failures_total: 0,
            failing: None,
            last_failure: None,
            last_refresh: None,
            pending_cancel: None,
            pending_halt_arm: false,
            pending_disarm,
            last_cancel_all: None,
        }
    }

    pub fn config(&self) -> &DeadmanConfig {
        &self.cfg
    }

    pub fn goal(&self) -> Goal {
        if self.trading == TradingState::Halted {
            Goal::Expiring
        } else if self.disarmed.is_some() {
            Goal::Disarmed
        } else if self.cfg.timeout_s == 0 {
            Goal::NotArmed
        } else {
            Goal::Armed
        }
    }

    pub fn exchange(&self) -> Exchange {
        self.exchange
    }

    pub fn disarmed(&self) -> Option<&Disarm> {
        self.disarmed.as_ref()
    }

    pub fn last_refresh(&self) -> Option<&Refresh> {
        self.last_refresh.as_ref()
    }

    pub fn last_cancel_all(&self) -> Option<&CancelAllRecord> {
        self.last_cancel_all.as_ref()
    }

    pub fn last_failure(&self) -> Option<&FailureRecord> {
        self.last_failure.as_ref()
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    pub fn failures_total(&self) -> u64 {
        self.failures_total
    }

    /// Whether the exchange's timer is believed running at `now_ms`.
    pub fn armed_at(&self, now_ms: Millis) -> bool {
        matches!(self.exchange, Exchange::Armed { trigger_ms } if trigger_ms > now_ms)
    }

    fn set_goal_since(&mut self, before: Goal, now_ms: Millis) {
        if self.goal() != before {
            self.goal_since = now_ms;
            // A countdown that ran out while it was not wanted (HALTED, disarmed) fired as
            // intended: the exchange's timer is off now, not "expired".
            if let Exchange::Armed { trigger_ms } = self.exchange
                && trigger_ms <= now_ms
            {
                self.exchange = Exchange::Off;
            }
        }
    }

    /// The trading state changed (`transition_seq`: its `trading_state` event). Returns
    /// the operator's disarm that a transition to ACTIVE just lifted, if any.
    pub fn on_trading(
        &mut self,
        to: TradingState,
        transition_seq: u64,
        now_ms: Millis,
    ) -> Option<Disarm> {
        let from = self.trading;
        if from == to {
            return None;
        }
        let before = self.goal();
        self.trading = to;
        self.retry_at = None;
        let mut lifted = None;
        if to == TradingState::Halted {
            self.next_refresh_at = None;
            self.pending_disarm = false;
            if self.cfg.cancel_on_halt {
                self.pending_cancel = Some(PendingCancel {
                    transition_seq,
                    attempts: 0,
                });
            }
            self.pending_halt_arm = self.cfg.halt_timeout_s.is_some_and(|t| t > 0)
                && self.cfg.timeout_s > 0
                && self.disarmed.is_none();
        } else {
            self.pending_cancel = None;
            self.pending_halt_arm = false;
            if to == TradingState::Active {
                lifted = self.disarmed.take();
                self.pending_disarm = false;
            } else if self.disarmed.is_some() {
                // REDUCING while an operator's disarm stands: keep it off.
                self.pending_disarm = self.exchange != Exchange::Off;
            }
            self.next_refresh_at = None; // refresh at once
        }
        self.set_goal_since(before, now_ms);
        lifted
    }

    /// An operator arms the switch (lifting a disarm).
    pub fn arm(&mut self, now_ms: Millis) -> Result<Option<Disarm>, RefusedArm> {
        if self.trading == TradingState::Halted {
            return Err(RefusedArm::Halted);
        }
        if self.cfg.timeout_s == 0 {
            return Err(RefusedArm::NotConfigured);
        }
        let before = self.goal();
        let lifted = self.disarmed.take();
        self.pending_disarm = false;
        self.next_refresh_at = None;
        self.retry_at = None;
        self.set_goal_since(before, now_ms);
        Ok(lifted)
    }

    /// An operator disarms the switch (the timer is set to 0 until an arm or the next
    /// transition to ACTIVE).
    pub fn disarm(&mut self, actor: &str, reason: &str, now_ms: Millis) {
        let before = self.goal();
        self.disarmed = Some(Disarm {
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            at_ms: now_ms,
        });
        self.pending_disarm = true;
        self.pending_halt_arm = false;
        self.next_refresh_at = None;
        self.retry_at = None;
        self.set_goal_since(before, now_ms);
    }

    /// The next call and the earliest time to make it (at or before `now` means at once).
    pub fn next_call(&self) -> Option<(Millis, Call)> {
        let not_before = self.retry_at.unwrap_or(0);
        if self.pending_cancel.is_some() {
            return Some((not_before, Call::CancelAll));
        }
        if self.pending_disarm {
            return Some((not_before, Call::Disarm));
        }
        match self.goal() {
            Goal::Armed => Some((
                self.next_refresh_at.unwrap_or(0).max(not_before),
                Call::Arm {
                    timeout_s: self.cfg.timeout_s,
                    on_halt: false,
                },
            )),
            Goal::Expiring if self.pending_halt_arm => Some((
                not_before,
                Call::Arm {
                    timeout_s: self.cfg.halt_timeout_s.unwrap_or(1),
                    on_halt: true,
                },
            )),
            _ => None,
        }
    }

    fn backoff(&self, f: &Failure, now_ms: Millis) -> Millis {
        let n = self.consecutive_failures.saturating_sub(1).min(20);
        let exp = 1000u64
            .saturating_mul(1 << n)
            .min(self.cfg.refresh_ms.max(1000));
        let wait = match f.class {
            FailureClass::Auth => REJECTED_RETRY_MS.max(self.cfg.refresh_ms),
            FailureClass::LockedOut => LOCKOUT_RETRY_MS,
            FailureClass::Throttled => f
                .retry_at_ms
                .map_or(exp.max(2000), |t| t.saturating_sub(now_ms).max(exp)),
            _ => exp,
        };
        now_ms.saturating_add(wait)
    }

    /// The outcome of `call`, sent at `sent_ms` and answered (or failed) at `now_ms`.
    /// Returns the cancel-all record when the call was a cancel-all.
    pub fn on_result(
        &mut self,
        call: Call,
        result: Result<Answer, Failure>,
        sent_ms: Millis,
        now_ms: Millis,
    ) -> Option<CancelAllRecord> {
        match result {
            Ok(answer) => {
                self.consecutive_failures = 0;
                self.retry_at = None;
                self.failing = None;
                match (call, answer) {
                    (Call::CancelAll, Answer::Cancelled(n)) => {
                        let p = self.pending_cancel.take();
                        let rec = CancelAllRecord {
                            at_ms: now_ms,
                            ok: true,
                            count: Some(n),
                            detail: format!("{n} order(s) cancelled"),
                            attempt: p.as_ref().map_or(1, |p| p.attempts + 1),
                            transition_seq: p.map_or(0, |p| p.transition_seq),
                        };
                        self.last_cancel_all = Some(rec.clone());
                        return Some(rec);
                    }
                    (Call::Arm { .. } | Call::Disarm, Answer::CancelAfter(a)) => {
                        self.apply_cancel_after(call, a, sent_ms, now_ms);
                    }
                    _ => {}
                }
                None
            }
            Err(f) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.failures_total = self.failures_total.saturating_add(1);
                self.retry_at = Some(self.backoff(&f, now_ms));
                let rec = FailureRecord {
                    call: call.name(),
                    at_ms: now_ms,
                    failure: f.clone(),
                };
                self.failing = Some(rec.clone());
                self.last_failure = Some(rec);
                if call == Call::CancelAll
                    && let Some(p) = &mut self.pending_cancel
                {
                    p.attempts += 1;
                    let attempt = p.attempts;
                    let seq = p.transition_seq;
                    if attempt >= CANCEL_ATTEMPTS {
                        self.pending_cancel = None;
                    }
                    let rec = CancelAllRecord {
                        at_ms: now_ms,
                        ok: false,
                        count: None,
                        detail: if attempt >= CANCEL_ATTEMPTS {
                            format!("{}; gave up after {attempt} attempts", f.detail)
                        } else {
                            f.detail.clone()
                        },
                        attempt,
                        transition_seq: seq,
                    };
                    self.last_cancel_all = Some(rec.clone());
                    return Some(rec);
                }
                None
            }
        }
    }

    fn apply_cancel_after(&mut self, call: Call, a: CancelAfter, sent_ms: Millis, now_ms: Millis) {
        self.exchange = match a.trigger_ms {
            Some(t) => Exchange::Armed {
                trigger_ms: sent_ms.saturating_add(t.saturating_sub(a.current_ms)),
            },
            None => Exchange::Off,
        };
        match call {
            Call::Arm { timeout_s, on_halt } => {
                self.last_refresh = Some(Refresh {
                    at_ms: now_ms,
                    timeout_s,
                    current_time: a.current_time,
                    trigger_time: a.trigger_time,
                    skew_ms: now_ms as i64 - a.current_ms as i64,
                });
                if on_halt {
                    self.pending_halt_arm = false;
                } else {
                    self.next_refresh_at = Some(sent_ms.saturating_add(self.cfg.refresh_ms));
                }
            }
            Call::Disarm => self.pending_disarm = false,
            Call::CancelAll => {}
        }
    }

    /// The check's status at `now_ms`.
    pub fn status(&self, now_ms: Millis) -> CheckStatus {
        let margin_s = secs(i128::from(self.cfg.margin_ms));
        let failing = self.failing.as_ref();
        let why = failing.map_or(String::new(), |f| {
            format!(
                "; {} failing ({}×): {}",
                f.call, self.consecutive_failures, f.failure.detail
            )
        });
        let rejected = failing.filter(|f| f.failure.class.is_rejection());
        let mut st = match self.goal() {
            Goal::NotArmed => CheckStatus::new(
                Status::Ok,
                None,
                None,
                "not armed (deadman_timeout_s = 0)".into(),
            ),
            Goal::Disarmed => {
                let d = self.disarmed.as_ref();
                let who = d.map_or(String::new(), |d| format!(" by {}: {}", d.actor, d.reason));
                // Trading without the switch is a warning (an alert), so a disarm for a
                // maintenance is not forgotten; it re-arms at the next ACTIVE or on arm.
                CheckStatus::new(
                    Status::Warn,
                    None,
                    None,
                    format!("disarmed{who}; orders outlive the bot until re-armed{why}"),
                )
            }
            Goal::Expiring => {
                let status = if rejected.is_some() {
                    Status::Critical
                } else {
                    Status::Ok
                };
                let fire = match self.exchange {
                    Exchange::Armed { trigger_ms } if trigger_ms > now_ms => format!(
                        "; the exchange cancels every order in {:.0} s",
                        secs(i128::from(trigger_ms) - i128::from(now_ms)).ceil()
                    ),
                    _ => String::new(),
                };
                CheckStatus::new(
                    status,
                    None,
                    None,
                    format!("not refreshed while trading is HALTED{fire}{why}"),
                )
            }
            Goal::Armed => match self.exchange {
                Exchange::Armed { trigger_ms } => {
                    let left_ms = i128::from(trigger_ms) - i128::from(now_ms);
                    let left = secs(left_ms);
                    let (status, message) = if let Some(r) = rejected {
                        (
                            Status::Critical,
                            format!(
                                "the exchange rejects the dead-man refresh: {}",
                                r.failure.detail
                            ),
                        )
                    } else if left_ms <= 0 {
                        (
                            Status::Critical,
                            format!(
                                "the dead-man switch expired {:.0} s ago: the exchange has cancelled every order{why}",
                                (-left).floor()
                            ),
                        )
                    } else if left_ms <= i128::from(self.cfg.margin_ms) {
                        (
                            Status::Warn,
                            format!(
                                "{left:.1} s left before the exchange cancels every order (margin {margin_s} s){why}"
                            ),
                        )
                    } else {
                        (
                            Status::Ok,
                            format!(
                                "armed: {left:.1} s left (refreshed every {} s){why}",
                                secs(i128::from(self.cfg.refresh_ms))
                            ),
                        )
                    };
                    CheckStatus::new(status, Some(left.max(0.0)), Some(margin_s), message)
                }
                Exchange::Off | Exchange::Unknown => {
                    let since = now_ms.saturating_sub(self.goal_since);
                    let (status, message) = match (rejected, failing) {
                        (Some(r), _) => (
                            Status::Critical,
                            format!(
                                "the exchange rejects the dead-man call: {}",
                                r.failure.detail
                            ),
                        ),
                        (None, None) => (Status::Unknown, "arming".to_string()),
                        (None, Some(_)) if since >= self.cfg.timeout_ms() => (
                            Status::Critical,
                            format!("not armed for {:.0} s{why}", secs(i128::from(since))),
                        ),
                        (None, Some(_)) => (Status::Warn, format!("not armed yet{why}")),
                    };
                    CheckStatus::new(status, None, Some(margin_s), message)
                }
            },
        };
        if let Some(r) = &self.last_refresh {
            st.subject = Some(format!(
                "triggerTime {} (skew {} ms)",
                r.trigger_time, r.skew_ms
            ));
        }
        st
    }

    /// The next instant at which [`Deadman::status`] changes with no input.
    pub fn next_deadline(&self, now_ms: Millis) -> Option<Millis> {
        match (self.goal(), self.exchange) {
            (Goal::Armed, Exchange::Armed { trigger_ms }) => {
                let warn = trigger_ms.saturating_sub(self.cfg.margin_ms);
                [warn, trigger_ms].into_iter().find(|&t| t > now_ms)
            }
            (Goal::Armed, _) if self.failing.is_some() => {
                Some(self.goal_since.saturating_add(self.cfg.timeout_ms())).filter(|&t| t > now_ms)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trading::TradingState::*;

    fn cfg() -> DeadmanConfig {
        DeadmanConfig {
            timeout_s: 60,
            refresh_ms: 20_000,
            margin_ms: 20_000,
            halt_timeout_s: None,
            cancel_on_halt: true,
        }
    }

    /// The exchange's answer to a call taken at `at` (exchange clock = local + `skew`).
    fn after(at: Millis, timeout_s: u32) -> Result<Answer, Failure> {
        Ok(Answer::CancelAfter(CancelAfter {
            current_ms: at,
            trigger_ms: (timeout_s > 0).then(|| at + Millis::from(timeout_s) * 1000),
            current_time: format!("t{at}"),
            trigger_time: if timeout_s > 0 {
                format!("t{}", at + Millis::from(timeout_s) * 1000)
            } else {
                "0".into()
            },
        }))
    }

    fn fail(class: FailureClass, detail: &str) -> Result<Answer, Failure> {
        Err(Failure::new(class, detail))
    }

    const REFRESH: Call = Call::Arm {
        timeout_s: 60,
        on_halt: false,
    };

    #[test]
    fn armed_refresh_schedule_and_check() {
        let mut d = Deadman::new(cfg(), Active, None, 1_000);
        assert_eq!(d.goal(), Goal::Armed);
        assert_eq!(d.status(1_000).status, Status::Unknown);
        assert_eq!(d.next_call(), Some((0, REFRESH)), "at once");
        // Sent at 1000, answered at 1200 (the exchange took it at 1100).
        assert_eq!(d.on_result(REFRESH, after(1_100, 60), 1_000, 1_200), None);
        assert_eq!(
            d.exchange(),
            Exchange::Armed { trigger_ms: 61_000 },
            "from the send time"
        );
        assert_eq!(d.next_call(), Some((21_000, REFRESH)));
        let s = d.status(1_200);
        assert_eq!(s.status, Status::Ok, "{s:?}");
        assert_eq!(s.value, Some(59.8));
        assert_eq!(s.threshold, Some(20.0));
        assert_eq!(
            s.subject.as_deref(),
            Some("triggerTime t61100 (skew 100 ms)")
        );
        assert_eq!(d.last_refresh().unwrap().skew_ms, 100);
        // Deadlines: margin, then expiry.
        assert_eq!(d.next_deadline(1_200), Some(41_000));
        assert_eq!(d.next_deadline(41_000), Some(61_000));
        assert_eq!(d.status(41_000).status, Status::Warn);
        assert_eq!(d.status(61_000).status, Status::Critical);
        assert!(
            d.status(61_000).message.contains("expired"),
            "{:?}",
            d.status(61_000)
        );
        assert!(d.armed_at(60_999) && !d.armed_at(61_000));
    }

    /// While ACTIVE and the exchange answers, its timer never runs out, whatever the latency
    /// (below timeout − refresh).
    #[test]
    fn refreshed_in_time_the_timer_never_expires() {
        let mut d = Deadman::new(cfg(), Active, None, 0);
        let mut now = 0;
        let mut lcg = 12345u64;
        for _ in 0..10_000 {
            let (at, call) = d.next_call().unwrap();
            now = now.max(at);
            assert!(
                d.armed_at(now) || d.exchange() == Exchange::Unknown,
                "expired at {now}"
            );
            assert_ne!(d.status(now).status, Status::Critical);
            lcg = lcg.wrapping_mul(6364136223846793005).wrapping_add(1);
            let latency = (lcg >> 33) % 15_000;
            d.on_result(call, after(now + latency / 2, 60), now, now + latency);
            now += latency;
        }
        assert_eq!(d.failures_total(), 0);
    }

    #[test]
    fn failures_back_off_warn_below_the_margin_then_go_critical() {
        let mut d = Deadman::new(cfg(), Active, None, 0);
        d.on_result(REFRESH, after(0, 60), 0, 0);
        let mut now = 20_000;
        let mut waits = Vec::new();
        while now < 70_000 {
            let (at, call) = d.next_call().unwrap();
            assert_eq!(call, REFRESH);
            now = now.max(at);
            d.on_result(
                call,
                fail(FailureClass::Timeout, "timed out after 10 s"),
                now,
                now,
            );
            waits.push(d.next_call().unwrap().0 - now);
            let s = d.status(now);
            let want = if now >= 60_000 {
                Status::Critical
            } else if now > 40_000 {
                Status::Warn
            } else {
                Status::Ok
            };
            assert_eq!(s.status, want, "at {now}: {s:?}");
            assert!(s.message.contains("refresh failing"), "{s:?}");
        }
        assert_eq!(&waits[..5], &[1_000, 2_000, 4_000, 8_000, 16_000]);
        assert!(
            waits[5..].iter().all(|&w| w == 20_000),
            "capped at refresh: {waits:?}"
        );
        assert!(d.consecutive_failures() >= 6);
        // Recovery: ok again, the count reset.
        d.on_result(REFRESH, after(now, 60), now, now);
        assert_eq!(d.status(now).status, Status::Ok);
        assert!(!d.status(now).message.contains("failing"));
        assert_eq!(d.consecutive_failures(), 0);
    }

    #[test]
    fn a_rejected_refresh_is_critical_at_once_and_not_retried_in_a_tight_loop() {
        for detail in ["EGeneral:Permission denied", "EAPI:Invalid key"] {
            let mut d = Deadman::new(cfg(), Active, None, 0);
            d.on_result(REFRESH, fail(FailureClass::Auth, detail), 0, 5);
            let s = d.status(5);
            assert_eq!(s.status, Status::Critical, "{s:?}");
            assert!(s.message.contains(detail), "{s:?}");
            assert_eq!(d.next_call(), Some((5 + REJECTED_RETRY_MS, REFRESH)));
            // Also when it was armed before.
            let mut d = Deadman::new(cfg(), Active, None, 0);
            d.on_result(REFRESH, after(0, 60), 0, 0);
            d.on_result(REFRESH, fail(FailureClass::Auth, detail), 20_000, 20_000);
            assert_eq!(d.status(20_000).status, Status::Critical);
        }
        let mut d = Deadman::new(cfg(), Active, None, 0);
        d.on_result(
            REFRESH,
            fail(FailureClass::LockedOut, "EGeneral:Temporary lockout"),
            0,
            0,
        );
        assert_eq!(d.status(0).status, Status::Critical);
        assert_eq!(d.next_call().unwrap().0, LOCKOUT_RETRY_MS);
    }

    #[test]
    fn throttling_and_malformed_answers_back_off_without_going_critical() {
        let mut d = Deadman::new(cfg(), Active, None, 0);
        d.on_result(REFRESH, after(0, 60), 0, 0);
        d.on_result(
            REFRESH,
            fail(FailureClass::Throttled, "EAPI:Rate limit exceeded"),
            20_000,
            20_000,
        );
        assert_eq!(d.next_call().unwrap().0, 22_000, "at least 2 s");
        assert_eq!(d.status(20_000).status, Status::Ok);
        let mut f = Failure::new(FailureClass::Throttled, "EService:Throttled: 30");
        f.retry_at_ms = Some(30_000);
        d.on_result(REFRESH, Err(f), 22_000, 22_000);
        assert_eq!(
            d.next_call().unwrap().0,
            30_000,
            "the exchange's retry time"
        );
        d.on_result(REFRESH, Err(Failure::malformed("not JSON")), 30_000, 30_000);
        // The old trigger is kept (the new timeout may or may not have been applied).
        assert_eq!(d.exchange(), Exchange::Armed { trigger_ms: 60_000 });
        assert_eq!(d.status(30_000).status, Status::Ok);
        assert_eq!(d.failures_total(), 3);
    }

    #[test]
    fn never_armed_warns_then_goes_critical_after_a_timeout() {
        let mut d = Deadman::new(cfg(), Active, None, 0);
        d.on_result(
            REFRESH,
            fail(FailureClass::Connectivity, "cannot connect"),
            0,
            0,
        );
        assert_eq!(d.status(0).status, Status::Warn);
        assert_eq!(d.next_deadline(0), Some(60_000));
        assert_eq!(d.status(60_000).status, Status::Critical);
        assert!(d.status(60_000).message.contains("not armed for 60 s"));
    }

    #[test]
    fn halt_cancels_all_then_lets_the_countdown_run_out_and_resume_rearms() {
        let mut d = Deadman::new(cfg(), Active, None, 0);
        d.on_result(REFRESH, after(0, 60), 0, 0);
        assert_eq!(d.on_trading(Halted, 42, 5_000), None);
        assert_eq!(d.goal(), Goal::Expiring);
        assert_eq!(d.next_call(), Some((0, Call::CancelAll)));
        let rec = d
            .on_result(Call::CancelAll, Ok(Answer::Cancelled(3)), 5_000, 5_100)
            .unwrap();
        assert_eq!(
            (rec.ok, rec.count, rec.transition_seq, rec.attempt),
            (true, Some(3), 42, 1)
        );
        assert_eq!(d.last_cancel_all(), Some(&rec));
        assert_eq!(d.next_call(), None, "no refresh while halted");
        let s = d.status(5_100);
        assert_eq!(s.status, Status::Ok, "{s:?}");
        assert!(
            s.message.contains("HALTED") && s.message.contains("in 55 s"),
            "{s:?}"
        );
        assert_eq!(d.next_deadline(5_100), None);
        // The countdown fired: expected while halted, not critical.
        assert_eq!(d.status(70_000).status, Status::Ok);
        // Resume: refresh at once; the countdown that fired while halted is not "expired".
        assert_eq!(d.on_trading(Active, 43, 80_000), None);
        assert_eq!(d.next_call(), Some((0, REFRESH)));
        assert_eq!(d.exchange(), Exchange::Off);
        let s = d.status(80_000);
        assert_eq!(s.status, Status::Unknown, "{s:?}");
        d.on_result(REFRESH, after(80_000, 60), 80_000, 80_000);
        assert_eq!(d.status(80_000).status, Status::Ok);
        // HALTED → REDUCING also re-arms.
        d.on_trading(Halted, 44, 90_000);
        d.on_result(Call::CancelAll, Ok(Answer::Cancelled(0)), 90_000, 90_000);
        d.on_trading(Reducing, 45, 91_000);
        assert_eq!(d.next_call(), Some((0, REFRESH)));
    }

    #[test]
    fn halt_with_a_short_timeout_arms_once() {
        let mut c = cfg();
        c.halt_timeout_s = Some(5);
        let mut d = Deadman::new(c, Active, None, 0);
        d.on_result(REFRESH, after(0, 60), 0, 0);
        d.on_trading(Halted, 7, 1_000);
        d.on_result(Call::CancelAll, Ok(Answer::Cancelled(1)), 1_000, 1_000);
        let short = Call::Arm {
            timeout_s: 5,
            on_halt: true,
        };
        assert_eq!(d.next_call(), Some((0, short)));
        d.on_result(short, after(1_000, 5), 1_000, 1_000);
        assert_eq!(d.exchange(), Exchange::Armed { trigger_ms: 6_000 });
        assert_eq!(d.next_call(), None);
    }

    #[test]
    fn cancel_all_is_retried_then_given_up_and_dropped_on_resume() {
        let mut d = Deadman::new(cfg(), Active, None, 0);
        d.on_trading(Halted, 9, 0);
        let mut now = 0;
        for i in 1..=CANCEL_ATTEMPTS {
            let (at, call) = d.next_call().unwrap();
            assert_eq!(call, Call::CancelAll);
            now = now.max(at);
            let rec = d
                .on_result(
                    call,
                    fail(FailureClass::Connectivity, "EService:Unavailable"),
                    now,
                    now,
                )
                .unwrap();
            assert_eq!((rec.ok, rec.attempt), (false, i));
            assert_eq!(rec.detail.contains("gave up"), i == CANCEL_ATTEMPTS);
        }
        assert_eq!(d.next_call(), None);
        // A rejection while halted keeps the condition (critical) until a call succeeds.
        d.on_trading(Active, 10, now);
        d.on_trading(Halted, 11, now);
        d.on_result(
            Call::CancelAll,
            fail(FailureClass::Auth, "EGeneral:Permission denied"),
            now,
            now,
        );
        assert_eq!(d.status(now).status, Status::Critical);
        d.on_trading(Active, 12, now);
        assert_eq!(
            d.next_call(),
            Some((0, REFRESH)),
            "pending cancel dropped, retry reset"
        );
    }

    #[test]
    fn operator_disarm_until_arm_or_the_next_active() {
        let mut d = Deadman::new(cfg(), Active, None, 0);
        d.on_result(REFRESH, after(0, 60), 0, 0);
        d.disarm("alice", "kraken maintenance 02:00", 1_000);
        assert_eq!(d.goal(), Goal::Disarmed);
        assert_eq!(d.next_call(), Some((0, Call::Disarm)));
        d.on_result(
            Call::Disarm,
            fail(FailureClass::Connectivity, "x"),
            1_000,
            1_000,
        );
        assert!(d.status(1_000).message.contains("disarm failing"));
        d.on_result(Call::Disarm, after(2_000, 0), 2_000, 2_000);
        assert_eq!(d.exchange(), Exchange::Off);
        assert_eq!(d.next_call(), None);
        let s = d.status(2_000);
        assert_eq!(s.status, Status::Warn, "trading without the switch");
        assert_eq!(
            s.message,
            "disarmed by alice: kraken maintenance 02:00; orders outlive the bot until re-armed"
        );
        // REDUCING keeps it off; ACTIVE lifts it.
        d.on_trading(Reducing, 1, 3_000);
        assert_eq!(d.next_call(), None);
        let lifted = d.on_trading(Active, 2, 4_000).unwrap();
        assert_eq!(lifted.actor, "alice");
        assert_eq!(d.next_call(), Some((0, REFRESH)));
        // arm lifts it too.
        d.disarm("bob", "x", 5_000);
        assert_eq!(d.arm(6_000).unwrap().unwrap().actor, "bob");
        assert_eq!(d.next_call(), Some((0, REFRESH)));
        assert_eq!(d.arm(6_000), Ok(None));
        // A disarm persisted by the last run is applied at start.
        let d = Deadman::new(cfg(), Active, Some(lifted), 0);
        assert_eq!(d.next_call(), Some((0, Call::Disarm)));
    }

    #[test]
    fn arm_refused_while_halted_or_unconfigured() {
        let mut d = Deadman::new(cfg(), Halted, None, 0);
        assert_eq!(d.arm(0), Err(RefusedArm::Halted));
        assert_eq!(d.next_call(), None);
        let mut c = cfg();
        c.timeout_s = 0;
        let mut d = Deadman::new(c, Active, None, 0);
        assert_eq!(d.arm(0), Err(RefusedArm::NotConfigured));
        assert_eq!(d.goal(), Goal::NotArmed);
        assert_eq!(d.next_call(), None, "0 = never arm");
        assert_eq!(d.status(0).status, Status::Ok);
        // But a halt still cancels at the exchange.
        d.on_trading(Halted, 3, 0);
        assert_eq!(d.next_call(), Some((0, Call::CancelAll)));
        let mut c = cfg();
        c.cancel_on_halt = false;
        let mut d = Deadman::new(c, Active, None, 0);
        d.on_trading(Halted, 3, 0);
        assert_eq!(d.next_call(), None);
    }
}
