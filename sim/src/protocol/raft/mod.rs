//! Raft among the registry servers (CP mode), sans-IO: leader election and log replication.
//!
//! Follows the Raft paper (§5, §9.3) with the etcd/raft-rs extensions as switches:
//! - a follower that hears no leader for its *election timeout* — drawn per election from
//!   `[election_timeout, election_timeout + election_jitter)` — becomes a candidate: new term,
//!   votes for itself, asks every peer for a vote; a peer grants at most one vote per term and
//!   only to a candidate whose log is at least as up to date as its own (§5.4.1); a majority
//!   makes it leader, which appends a no-op entry for its term (§8) and replicates its log
//!   with AppendEntries, also sent empty every `heartbeat_interval` as heartbeats;
//! - the leader commits an entry of its own term once a majority stores it (§5.4.2), and
//!   reports `Obs::Committed`; followers learn the commit index from AppendEntries;
//! - **PreVote** (Ongaro's thesis §9.6): before a real election a node asks whether peers
//!   would vote for it, without raising its term; peers that heard a leader within the election
//!   timeout refuse, so a node cut off and rejoining does not disrupt a working leader;
//! - **CheckQuorum**: a leader that has not heard from a majority (itself included) within the
//!   last election timeout steps down; it checks at every heartbeat, so it steps down within an
//!   election timeout plus a heartbeat interval of losing its majority.
//! - **`bugs.vote_twice`** (a deliberate defect, off by default): a node grants every
//!   up-to-date candidate of its term, even after voting for another one, so two candidates
//!   that campaign in the same term can both collect a majority (`one_leader_per_term` fails).
//!
//! - **Stable storage** (`fsync`, a latency distribution; default a datacenter SSD, median
//!   1 ms): term, vote and log entries are written before any message that depends on them
//!   leaves, as etcd-io/raft's `Ready` contract requires (`node.go`, `Ready`: persist
//!   `HardState` and `Entries`, then send `Messages`) and LogCabin does (`RaftConsensus.cc`):
//!   a candidate's RequestVotes wait for its new term and self-vote, a vote for the voted-for,
//!   an AppendEntries answer for the appended entries. Writes are done one after the other;
//!   changes made while one is in flight join the next (a group commit). The leader sends
//!   AppendEntries at once and writes its own entries in parallel (thesis §10.2.1), counting
//!   itself towards a commit only once they are durable, so a CP write takes at least one
//!   fsync plus a round trip and a follower's fsync.
//!
//! Defaults follow JRaft in Nacos (election 5 s + random [0, 1 s), heartbeat 500 ms); the
//! etcd settings and the Raft paper's (150–300 ms) are expressible. Term, vote and log are
//! persistent and survive a crash; the commit index is volatile, as in the paper.
//!
//! The log holds the CP registry's commands ([`Cmd`]); `cp.rs` proposes them on the leader and
//! applies committed ones. For linearizable reads the leader offers two confirmations:
//! *read index* (each [`RaftNode::broadcast`] opens a round; a read waits until a majority
//! answered a round opened after it arrived, Raft thesis §6.4) and a *lease*
//! ([`RaftNode::lease_valid`]: a majority acknowledged within the election timeout, which with
//! CheckQuorum followers honour by refusing votes; safe only while clocks run at the same rate).

pub mod config;
mod disk;
pub mod node;
#[cfg(test)]
mod tests;

pub use config::{RaftConfig, ReadMode};
pub use node::{Append, Cmd, Entry, RaftNode, Role};

use std::sync::Arc;

/// Explicit discriminants: the digest hashes them, not declaration order.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[repr(u8)]
pub enum Msg {
    /// A (pre-)vote request for `term` with the candidate's last log entry (32-bit index and
    /// term keep the message small).
    RequestVote {
        pre: bool,
        last_index: u32,
        last_term: u32,
        term: u64,
    } = 1,
    Vote {
        pre: bool,
        granted: bool,
        term: u64,
    } = 2,
    AppendEntries {
        term: u64,
        body: Arc<Append>,
    } = 3,
    AppendOk {
        ok: bool,
        /// On success the follower's last matching index; on failure a hint where to retry.
        index: u32,
        term: u64,
        /// The leader's broadcast round this answers (for read-index confirmation).
        round: u32,
    } = 4,
}

/// Stale timers (older epoch or term) are ignored.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[repr(u8)]
pub enum Timer {
    Election {
        epoch: u32,
    } = 1,
    Heartbeat {
        term: u64,
    } = 2,
    /// The leader's CheckQuorum, once per election timeout of its term (etcd `tickHeartbeat`).
    CheckQuorum {
        term: u64,
    } = 3,
    /// Storage write `seq` (and every earlier one) is durable.
    Disk {
        seq: u32,
    } = 4,
}
