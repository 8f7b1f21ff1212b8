//! `[registry.raft]`: Raft's settings, with their defaults and checks.

use crate::protocol::config::{Invalid, periods};
use regsim_kernel::SimDuration;
use regsim_kernel::net::LatencySpec;

/// How reads are served, as etcd's `raft.Config.ReadOnlyOption` (raft.go, `ReadOnlySafe`,
/// `ReadOnlyLeaseBased`) plus reads that skip Raft: `read_index` (linearizable, one heartbeat
/// round per read), `lease` (linearizable while clocks agree; needs `check_quorum`) or `local`
/// (any server answers from its own state). `local` is the default: Nacos 1.4 answers every
/// query from the server's memory (`InstanceController.list` -> `doSrvIpxt`), whichever
/// consistency protocol stores the instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    ReadIndex,
    Lease,
    #[default]
    Local,
}

/// `[registry.raft]`: Raft timing and options. Defaults are JRaft's in Nacos (5 s + up to 1 s
/// election timeout, 500 ms heartbeat); etcd: 1 s + jitter 1 s, heartbeat 100 ms; the Raft
/// paper: 150 ms + jitter 150 ms, heartbeat 75 ms.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftConfig {
    pub election_timeout: SimDuration,
    /// Each election timeout is drawn from `[election_timeout, election_timeout + jitter)`.
    pub election_jitter: SimDuration,
    pub heartbeat_interval: SimDuration,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub reads: ReadMode,
    /// How long one write of term, vote and log entries to stable storage takes (write +
    /// `fsync`), a latency table like `network.latency`; `{ dist = "constant", value = "0s" }`
    /// turns storage latency off. See the folder's doc for what waits for it.
    pub fsync: LatencySpec,
    /// `bugs.vote_twice`: grant every up-to-date candidate of the current term, ignoring
    /// `voted_for` (breaks election safety: two leaders in one term). Set from `[bugs]`.
    #[serde(skip)]
    pub vote_twice: bool,
}

impl RaftConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.reads == ReadMode::Lease && !self.check_quorum {
            return Err((
                "reads".into(),
                "\"lease\" reads are safe only with registry.raft.check_quorum = true (followers must refuse votes while the lease runs)".into(),
            ));
        }
        self.fsync.build().map_err(|(f, m)| (format!("fsync.{f}"), m))?;
        periods(&[("election_timeout", self.election_timeout), ("heartbeat_interval", self.heartbeat_interval)])?;
        // etcd-io/raft refuses the same (raft.go, Config.validate: "election tick must be
        // greater than heartbeat tick"): followers would time out between heartbeats.
        if self.election_timeout <= self.heartbeat_interval {
            return Err((
                "election_timeout".into(),
                format!(
                    "expected more than registry.raft.heartbeat_interval ({}), as etcd's raft requires",
                    self.heartbeat_interval
                ),
            ));
        }
        Ok(())
    }
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            election_timeout: SimDuration::from_secs(5),
            election_jitter: SimDuration::from_secs(1),
            heartbeat_interval: SimDuration::from_millis(500),
            pre_vote: true,
            check_quorum: true,
            reads: ReadMode::Local,
            fsync: default_fsync(),
            vote_twice: false,
        }
    }
}

/// A datacenter SSD: median 1 ms, lognormal with sigma 0.5 (p99 about 3.2 ms). An
/// approximation, not a measurement of a particular disk: etcd's hardware guide asks for a
/// `wal_fsync_duration_seconds` p99 below 10 ms, and spinning disks (the Raft paper's 2014
/// cluster) take 5-15 ms.
pub fn default_fsync() -> LatencySpec {
    LatencySpec {
        dist: regsim_kernel::net::DistKind::Lognormal,
        median: Some(SimDuration::from_millis(1)),
        sigma: Some(0.5),
        value: None,
        ..LatencySpec::constant(SimDuration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default storage table is itself checked like a scenario's (a first version set
    /// both `value` and `median`, which every CP scenario then refused).
    #[test]
    fn the_defaults_pass_their_own_checks() {
        assert_eq!(RaftConfig::default().validate(), Ok(()));
        let bad = RaftConfig {
            fsync: LatencySpec { value: Some(SimDuration::ZERO), ..default_fsync() },
            ..Default::default()
        };
        assert_eq!(bad.validate().map_err(|e| e.0), Err("fsync.value".to_string()));
    }
}
