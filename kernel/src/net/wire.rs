//! Transports: how one message's packets cross the network model.
//!
//! Every message names a *channel* ([`Channel`]); the network maps each channel to a [`Wire`]:
//!
//! - **datagram** (UDP): the message is one packet. It is lost, cut off by a partition, or
//!   duplicated as a whole, and nothing retries it below the protocol.
//! - **stream** (TCP): the message rides a connection. A lost or cut-off segment is sent again
//!   after the retransmission timeout (RTO), which doubles on every retry, until it gets
//!   through or the retry limit is reached; a duplicate segment is discarded by the receiver's
//!   TCP, so the protocol never sees one. A partition that heals before the limit delays the
//!   message instead of losing it. A request that opens its own connection (`connect_timeout`
//!   set: a client that does not keep connections between requests) first needs the
//!   handshake: a round trip (twice one latency draw) when SYN and SYN-ACK get through; otherwise SYNs are sent again
//!   with the initial RTO of 1 s, doubling, and when the handshake has not completed at the
//!   connect timeout the sender learns of a failed connection (as it learns of a refused one).
//!
//! Numbers follow Linux (`include/net/tcp.h`): `TCP_RTO_MIN` 200 ms, `TCP_RTO_MAX` 120 s,
//! `TCP_TIMEOUT_INIT` 1 s for SYNs, `net.ipv4.tcp_syn_retries` 6 and `tcp_retries2` 15.
//!
//! Approximations (stated so a reader can weigh them): one packet per message (a request is a
//! segment, not a window of them); the RTO starts at `TCP_RTO_MIN` (on a LAN the smoothed RTT
//! Linux adds is negligible); a lost ACK costs nothing (the receiver has the data; the
//! sender's spurious retransmission is discarded); messages on one connection are not held
//! behind a lost one (no head-of-line blocking), so they may overtake it; a connection whose
//! peer process is dead answers with a reset one round trip after the data (the refusal), and
//! a per-request connection's refusal is seen after the handshake's round trip plus that one.
//! What happens at the far end (a crashed process refuses, a paused one holds the message in
//! its socket until it resumes) is the hosts' business, as for datagrams.

use serde::{Deserialize, Serialize};

use crate::time::{SimDuration, SimTime};

/// The channel a message travels on (an index into the network's wires); each protocol maps
/// its messages to channels, the scenario maps channels to wires.
pub trait Channel {
    fn channel(&self) -> u8;
}

/// A toy message type for tests and examples: the top byte names the channel.
impl Channel for u32 {
    fn channel(&self) -> u8 {
        (*self >> 24) as u8
    }
}

/// How the messages of one channel travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    Datagram,
    /// TCP. `connect_timeout`: each message opens its own connection, and the handshake gives
    /// up after this long; `None`: the connection is kept open between messages.
    Stream {
        connect_timeout: Option<SimDuration>,
    },
}

/// A channel's wire as a scenario names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireKind {
    Datagram,
    Stream,
}

/// The TCP numbers of every stream (Linux defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TcpSpec {
    /// First retransmission timeout of a data segment (`TCP_RTO_MIN`).
    pub rto_min: SimDuration,
    /// Upper bound of the doubling RTO (`TCP_RTO_MAX`).
    pub rto_max: SimDuration,
    /// Retransmissions of a data segment before the connection is given up (`tcp_retries2`).
    pub retries: u8,
    /// First retransmission timeout of a SYN (`TCP_TIMEOUT_INIT`).
    pub syn_rto: SimDuration,
    /// SYN retransmissions before a connect fails (`tcp_syn_retries`).
    pub syn_retries: u8,
}

impl Default for TcpSpec {
    fn default() -> Self {
        TcpSpec {
            rto_min: SimDuration::from_millis(200),
            rto_max: SimDuration::from_secs(120),
            retries: 15,
            syn_rto: SimDuration::from_secs(1),
            syn_retries: 6,
        }
    }
}

/// Where one stream message stands: when it was first sent, whether it still waits for its
/// connection, and how many times the current packet was sent before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Attempt {
    pub sent: SimTime,
    pub connecting: bool,
    pub retries: u8,
}

impl Attempt {
    /// The first transmission of a message on `wire` at `now`.
    pub fn first(now: SimTime, connect_timeout: Option<SimDuration>) -> Attempt {
        Attempt { sent: now, connecting: connect_timeout.is_some(), retries: 0 }
    }
}

/// What became of one transmission of a stream message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamStep {
    /// The message reaches the far end's host after this delay.
    Arrives(SimDuration),
    /// Sent again after this delay (a lost or cut-off packet), in the state given.
    Retry(SimDuration, Attempt),
    /// The handshake did not complete in time: the sender learns it at this time.
    ConnectFailed(SimTime),
    /// The retry limit was reached: the connection is given up, the message lost.
    GaveUp,
}

/// `base` doubled `n` times, capped at `max`.
pub(crate) fn backoff(base: SimDuration, n: u8, max: SimDuration) -> SimDuration {
    let factor = 1u64.checked_shl(u32::from(n)).unwrap_or(u64::MAX);
    SimDuration(base.0.saturating_mul(factor).min(max.0))
}
