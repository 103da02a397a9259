//! The event type hierarchy, subscriptions, channels and notifications.

use super::*;

/// Every concrete event type a listener can receive (the header's `eventname`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    ProcessStateStopped,
    ProcessStateStarting,
    ProcessStateRunning,
    ProcessStateBackoff,
    ProcessStateStopping,
    ProcessStateExited,
    ProcessStateFatal,
    ProcessStateUnknown,
    ProcessLogStdout,
    ProcessLogStderr,
    ProcessCommunicationStdout,
    ProcessCommunicationStderr,
    RemoteCommunication,
    SupervisorStateChangeRunning,
    SupervisorStateChangeStopping,
    Tick5,
    Tick60,
    Tick3600,
    ProcessGroupAdded,
    ProcessGroupRemoved,
    /// vigil: a trading-state transition (see the module docs for the payload).
    VigilTradingState,
    /// vigil: a rule or check changed status (see the module docs for the payload).
    VigilCheck,
}

/// The abstract types one can subscribe to; never emitted themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AbstractType {
    /// Everything.
    Event,
    ProcessState,
    ProcessCommunication,
    ProcessLog,
    SupervisorStateChange,
    Tick,
    ProcessGroup,
    /// vigil's own event types.
    Vigil,
}

impl EventType {
    pub const ALL: [EventType; 22] = [
        EventType::ProcessStateStopped,
        EventType::ProcessStateStarting,
        EventType::ProcessStateRunning,
        EventType::ProcessStateBackoff,
        EventType::ProcessStateStopping,
        EventType::ProcessStateExited,
        EventType::ProcessStateFatal,
        EventType::ProcessStateUnknown,
        EventType::ProcessLogStdout,
        EventType::ProcessLogStderr,
        EventType::ProcessCommunicationStdout,
        EventType::ProcessCommunicationStderr,
        EventType::RemoteCommunication,
        EventType::SupervisorStateChangeRunning,
        EventType::SupervisorStateChangeStopping,
        EventType::Tick5,
        EventType::Tick60,
        EventType::Tick3600,
        EventType::ProcessGroupAdded,
        EventType::ProcessGroupRemoved,
        EventType::VigilTradingState,
        EventType::VigilCheck,
    ];

    /// The name in the header and in `events=`.
    pub fn name(self) -> &'static str {
        match self {
            EventType::ProcessStateStopped => "PROCESS_STATE_STOPPED",
            EventType::ProcessStateStarting => "PROCESS_STATE_STARTING",
            EventType::ProcessStateRunning => "PROCESS_STATE_RUNNING",
            EventType::ProcessStateBackoff => "PROCESS_STATE_BACKOFF",
            EventType::ProcessStateStopping => "PROCESS_STATE_STOPPING",
            EventType::ProcessStateExited => "PROCESS_STATE_EXITED",
            EventType::ProcessStateFatal => "PROCESS_STATE_FATAL",
            EventType::ProcessStateUnknown => "PROCESS_STATE_UNKNOWN",
            EventType::ProcessLogStdout => "PROCESS_LOG_STDOUT",
            EventType::ProcessLogStderr => "PROCESS_LOG_STDERR",
            EventType::ProcessCommunicationStdout => "PROCESS_COMMUNICATION_STDOUT",
            EventType::ProcessCommunicationStderr => "PROCESS_COMMUNICATION_STDERR",
            EventType::RemoteCommunication => "REMOTE_COMMUNICATION",
            EventType::SupervisorStateChangeRunning => "SUPERVISOR_STATE_CHANGE_RUNNING",
            EventType::SupervisorStateChangeStopping => "SUPERVISOR_STATE_CHANGE_STOPPING",
            EventType::Tick5 => "TICK_5",
            EventType::Tick60 => "TICK_60",
            EventType::Tick3600 => "TICK_3600",
            EventType::ProcessGroupAdded => "PROCESS_GROUP_ADDED",
            EventType::ProcessGroupRemoved => "PROCESS_GROUP_REMOVED",
            EventType::VigilTradingState => "VIGIL_TRADING_STATE",
            EventType::VigilCheck => "VIGIL_CHECK",
        }
    }

    /// A concrete type by name; case-insensitive, surrounding whitespace ignored. Abstract
    /// names give `None`: use [`Subscription::parse`] for `events=`.
    pub fn parse(name: &str) -> Option<EventType> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The direct abstract parent (`EVENT` for `REMOTE_COMMUNICATION`).
    pub fn parent(self) -> AbstractType {
        use EventType::*;
        match self {
            ProcessStateStopped | ProcessStateStarting | ProcessStateRunning
            | ProcessStateBackoff | ProcessStateStopping | ProcessStateExited
            | ProcessStateFatal | ProcessStateUnknown => AbstractType::ProcessState,
            ProcessLogStdout | ProcessLogStderr => AbstractType::ProcessLog,
            ProcessCommunicationStdout | ProcessCommunicationStderr => {
                AbstractType::ProcessCommunication
            }
            RemoteCommunication => AbstractType::Event,
            SupervisorStateChangeRunning | SupervisorStateChangeStopping => {
                AbstractType::SupervisorStateChange
            }
            Tick5 | Tick60 | Tick3600 => AbstractType::Tick,
            ProcessGroupAdded | ProcessGroupRemoved => AbstractType::ProcessGroup,
            VigilTradingState | VigilCheck => AbstractType::Vigil,
        }
    }

    /// supervisord's `isinstance` subscription test: `EVENT` gets everything, every other
    /// abstract type gets its own concrete types.
    pub fn is_subtype_of(self, of: AbstractType) -> bool {
        of == AbstractType::Event || self.parent() == of
    }

    /// vigil's own types (not in supervisord).
    pub fn is_vigil(self) -> bool {
        self.parent() == AbstractType::Vigil
    }

    /// `PROCESS_STATE_<to>`.
    pub fn process_state(to: ProcessState) -> EventType {
        match to {
            ProcessState::Stopped => EventType::ProcessStateStopped,
            ProcessState::Starting => EventType::ProcessStateStarting,
            ProcessState::Running => EventType::ProcessStateRunning,
            ProcessState::Backoff => EventType::ProcessStateBackoff,
            ProcessState::Stopping => EventType::ProcessStateStopping,
            ProcessState::Exited => EventType::ProcessStateExited,
            ProcessState::Fatal => EventType::ProcessStateFatal,
            ProcessState::Unknown => EventType::ProcessStateUnknown,
        }
    }

    pub fn process_log(channel: Channel) -> EventType {
        match channel {
            Channel::Stdout => EventType::ProcessLogStdout,
            Channel::Stderr => EventType::ProcessLogStderr,
        }
    }

    pub fn process_communication(channel: Channel) -> EventType {
        match channel {
            Channel::Stdout => EventType::ProcessCommunicationStdout,
            Channel::Stderr => EventType::ProcessCommunicationStderr,
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl AbstractType {
    pub const ALL: [AbstractType; 8] = [
        AbstractType::Event,
        AbstractType::ProcessState,
        AbstractType::ProcessCommunication,
        AbstractType::ProcessLog,
        AbstractType::SupervisorStateChange,
        AbstractType::Tick,
        AbstractType::ProcessGroup,
        AbstractType::Vigil,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AbstractType::Event => "EVENT",
            AbstractType::ProcessState => "PROCESS_STATE",
            AbstractType::ProcessCommunication => "PROCESS_COMMUNICATION",
            AbstractType::ProcessLog => "PROCESS_LOG",
            AbstractType::SupervisorStateChange => "SUPERVISOR_STATE_CHANGE",
            AbstractType::Tick => "TICK",
            AbstractType::ProcessGroup => "PROCESS_GROUP",
            AbstractType::Vigil => "VIGIL",
        }
    }

    /// Case-insensitive, surrounding whitespace ignored.
    pub fn parse(name: &str) -> Option<AbstractType> {
        let name = name.trim();
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for AbstractType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One name of an `events=` list: abstract or concrete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subscription {
    Abstract(AbstractType),
    Concrete(EventType),
}

/// An `events=` name that is not an event type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnknownEventType {
    #[error("empty event type name")]
    Empty,
    #[error(
        "event type EVENT_BUFFER_OVERFLOW no longer exists (removed in supervisor 3.0a3); vigil never drops events on overflow"
    )]
    BufferOverflowRemoved,
    #[error("unknown event type {0}")]
    Unknown(String),
}

impl Subscription {
    /// Case-insensitive, surrounding whitespace ignored (supervisord itself is
    /// case-sensitive; every name it accepts is accepted here).
    pub fn parse(name: &str) -> Result<Subscription, UnknownEventType> {
        let n = name.trim();
        if n.is_empty() {
            return Err(UnknownEventType::Empty);
        }
        if let Some(t) = EventType::parse(n) {
            return Ok(Subscription::Concrete(t));
        }
        if let Some(a) = AbstractType::parse(n) {
            return Ok(Subscription::Abstract(a));
        }
        if n.eq_ignore_ascii_case("EVENT_BUFFER_OVERFLOW") {
            return Err(UnknownEventType::BufferOverflowRemoved);
        }
        Err(UnknownEventType::Unknown(n.to_owned()))
    }

    pub fn name(self) -> &'static str {
        match self {
            Subscription::Abstract(a) => a.name(),
            Subscription::Concrete(t) => t.name(),
        }
    }

    pub fn matches(self, t: EventType) -> bool {
        match self {
            Subscription::Abstract(a) => t.is_subtype_of(a),
            Subscription::Concrete(c) => c == t,
        }
    }
}

impl fmt::Display for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A pool's `events=`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subscriptions(Vec<Subscription>);

impl Subscriptions {
    pub fn new(subs: Vec<Subscription>) -> Self {
        Subscriptions(subs)
    }

    /// supervisord's comma-separated list (`PROCESS_STATE, TICK_60`); an empty element
    /// (`a,,b`, a trailing comma) is an error, as in supervisord.
    pub fn parse(list: &str) -> Result<Subscriptions, UnknownEventType> {
        list.split(',')
            .map(Subscription::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Subscriptions)
    }

    pub fn matches(&self, t: EventType) -> bool {
        self.0.iter().any(|s| s.matches(t))
    }

    pub fn as_slice(&self) -> &[Subscription] {
        &self.0
    }
}

// ------------------------------------------------------------------------------------------
// Payloads

/// A process output channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Stdout,
    Stderr,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Stdout => "stdout",
            Channel::Stderr => "stderr",
        }
    }
}

/// An event ready to be offered: its concrete type and its payload text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Notification {
    pub event_type: EventType,
    /// Shared between the pools it is offered to.
    pub payload: Arc<str>,
}

impl Notification {
    pub fn new(event_type: EventType, payload: impl Into<Arc<str>>) -> Self {
        Notification {
            event_type,
            payload: payload.into(),
        }
    }

    /// The header's `len`: Unicode code points, as Python's `len(str)`.
    pub fn payload_len(&self) -> usize {
        code_points(&self.payload)
    }
}
