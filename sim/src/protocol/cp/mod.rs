//! The CP registry server: persistent instances stored through Raft (Nacos 1.x persistent
//! instances; JRaft in Nacos 2.x), health-checked by TCP connects.
//!
//! - **Writes**: a persistent instance registers through the leader; a follower answers
//!   `Redirect` with the leader it knows, and the client retries there. The leader appends a
//!   `Register` command and acknowledges the client once the entry is committed (a majority
//!   stores it); if it loses leadership first, the client times out and retries elsewhere.
//! - **Reads** (`list` of a service) by [`ReadMode`]: `read_index` (the leader
//!   confirms it still leads with a heartbeat round to a majority, then answers once it applied
//!   up to the commit index it saw on arrival), `lease` (the leader answers at once while a
//!   majority acknowledged it within the election timeout; needs CheckQuorum) or `local` (any
//!   server answers from what it applied and its own health flags: fast and possibly stale).
//!   `local` is the default: Nacos 1.4 answers a query of any service from the server's memory
//!   (`InstanceController.list` -> `doSrvIpxt` -> `service.srvIPs`), persistent or not.
//! - **Health checks** (`check`): every server runs a TCP-connect task per service and checks
//!   where it is Distro-responsible for the service in its own membership view (the servers run
//!   Nacos' `MemberInfoReportTask`, `nacos::membership`); a refused connect marks an instance
//!   unhealthy at once, three timeouts in a row do. The flag is this server's, not Raft's: the
//!   others learn it from its status reports (`nacos::status`, every 5 s). Persistent instances
//!   are never deleted; a registration through Raft keeps the flag an instance already has
//!   (`Cluster.updateIps`).
//! - **`bugs.apply_before_commit`**: the old Nacos Raft quirk. The leader applies a write to its
//!   state as soon as it appends it, before a majority stores it; with `lease` or `local` reads a
//!   client can then see a write that is later lost.
//!
//! The state machine (registered instances and health per service) is volatile: after a
//! restart it is rebuilt from the log as the commit index is learned again.

pub mod check;
pub mod server;
#[cfg(test)]
mod tests;

pub use server::*;

/// CP health checks: a server's TCP connect to a persistent instance (`round` numbers the
/// connect) and the connection made.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[repr(u8)]
pub enum Msg {
    Probe { round: u32 } = 1,
    ProbeOk { round: u32 } = 2,
}

/// CP timers: a service's next check run, and the connect timeout of connect `round`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[repr(u8)]
pub enum Timer {
    Check { service: crate::protocol::ServiceId } = 1,
    ProbeTimeout { instance: regsim_kernel::NodeId, round: u32 } = 2,
}
