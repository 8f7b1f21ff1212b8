//! The CP registry server: persistent instances stored through Raft (Nacos 1.x persistent
//! instances; JRaft in Nacos 2.x), health-checked by the leader.
//!
//! - **Writes**: a persistent instance registers through the leader; a follower answers
//!   `Redirect` with the leader it knows, and the client retries there. The leader appends a
//!   `Register` command and acknowledges the client once the entry is committed (a majority
//!   stores it); if it loses leadership first, the client times out and retries elsewhere.
//! - **Reads** (`list` of a service) by [`ReadMode`]: `read_index` (default; the leader
//!   confirms it still leads with a heartbeat round to a majority, then answers once it applied
//!   up to the commit index it saw on arrival), `lease` (the leader answers at once while a
//!   majority acknowledged it within the election timeout; needs CheckQuorum) or `local` (any
//!   server answers from what it applied: the Nacos 1.x behaviour, fast and possibly stale).
//! - **Health checks** (ANCHORS.md): the leader probes every registered instance (a TCP connect,
//!   `probe_timeout` 500 ms) in rounds `2 s + rand(0, rand(0, 5 s))` apart; 3 consecutive
//!   failures propose `Health { healthy: false }`, 3 consecutive successes of an unhealthy one
//!   propose it healthy again. Persistent instances are never deleted. *Approximation:* Nacos 1.x
//!   checks on the server responsible for the service and spreads the status outside Raft;
//!   here the leader checks and the status goes through the log, so all servers agree on it.
//! - **`bugs.apply_before_commit`**: the old Nacos Raft quirk. The leader applies a write to its
//!   state as soon as it appends it, before a majority stores it; with `lease` or `local` reads a
//!   client can then see a write that is later lost.
//!
//! The state machine (registered instances and health per service) is volatile: after a
//! restart it is rebuilt from the log as the commit index is learned again.

pub mod server;
#[cfg(test)]
mod tests;

pub use server::*;

/// CP health checks: the leader's probe of a persistent instance (a TCP connect) and its answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[repr(u8)]
pub enum Msg {
    Probe { round: u32 } = 1,
    ProbeOk { round: u32 } = 2,
}

/// CP timers: the leader's next health-check round, and the end of round `round`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[repr(u8)]
pub enum Timer {
    ProbeRound { term: u64 } = 1,
    ProbeTimeout { round: u32 } = 2,
}
