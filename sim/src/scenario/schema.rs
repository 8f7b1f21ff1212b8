//! The scenario file schema (TOML through serde; unknown keys are rejected).
//!
//! Defaults are the reference values of ../shared/ANCHORS.md (Nacos 1.x: 5 s client beat,
//! 5 s health check, unhealthy after 15 s, deleted after 30 s). Every size a file can make
//! large has a hard limit, checked in `validate`.

use serde::Deserialize;

use crate::fault::FaultSpec;
use crate::protocol::clients::settings::{ConsumersSpec, GatewaySpec, InstancesSpec};
use crate::protocol::config::within;
use crate::protocol::nacos::distro::DistroConfig;
use crate::protocol::nacos::membership::MembershipConfig;
use crate::protocol::nacos::push::PushConfig;
use crate::protocol::nacos::server::HealthConfig;
use crate::protocol::raft::RaftConfig;
use regsim_kernel::SimDuration;
use regsim_kernel::net::LatencySpec;

/// Hard limits on what a scenario may ask for.
pub mod limits {
    pub const MAX_SERVERS: u32 = 1_000;
    pub use crate::protocol::clients::settings::{MAX_CALL_RATE, MAX_CONSUMERS, MAX_INSTANCES};
    pub const MAX_DURATION_S: u64 = 30 * 24 * 3_600;
    pub const MAX_EVENTS: u64 = 100_000_000_000;
    pub const MAX_FAULTS: usize = 100_000;
    pub const MAX_LINKS: usize = 64;
    /// Client operations recorded for the linearizability checker (about 60 bytes each plus
    /// list results).
    pub const MAX_HISTORY_OPS: u64 = 10_000_000;
    pub const MAX_CHECKER_STATES: u64 = 100_000_000;
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Names the report folder (`reports/<name>/`): letters, digits, `-`, `_`.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Settings that run but cannot work as meant ([`Scenario::threshold_warnings`]), located
    /// by the loader (`file:line:col: key: message`); printed by `check` and `run` and kept in
    /// the report.
    #[serde(skip)]
    pub warnings: Vec<String>,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Virtual time to simulate.
    pub duration: SimDuration,
    #[serde(default)]
    pub limits: Limits,
    /// Region names (at most 16). Each region has its own registry cluster, instances,
    /// consumers, gateways and Prometheus; the counts of those sections are per region. Empty:
    /// one region without a name.
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub network: NetworkSpec,
    /// Every node's oscillator drift and timer jitter (`regsim_kernel::clock`).
    #[serde(default)]
    pub clocks: regsim_kernel::clock::ClockSpec,
    #[serde(default)]
    pub registry: RegistrySpec,
    #[serde(default)]
    pub instances: InstancesSpec,
    #[serde(default)]
    pub consumers: ConsumersSpec,
    #[serde(default)]
    pub metrics: MetricsSpec,
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// API gateways in front of the instances; consumers send through them (issue 9).
    #[serde(default)]
    pub gateway: Option<GatewaySpec>,
    /// A Prometheus server and an Alertmanager watching the instances (issue 9).
    #[serde(default)]
    pub monitoring: Option<crate::protocol::monitoring::settings::MonitoringSpec>,
    /// Deliberate protocol defects (all off by default), to show that the checks catch them.
    #[serde(default)]
    pub bugs: BugsSpec,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BugsSpec {
    /// The old Nacos Raft quirk: the CP leader applies a write before a majority stores it.
    #[serde(default)]
    pub apply_before_commit: bool,
    /// AP servers never run Distro's checksum verify (anti-entropy), so a copy that missed a
    /// sync (e.g. a server restarted after the last change) is never repaired.
    #[serde(default)]
    pub skip_anti_entropy: bool,
    /// A Raft node grants its vote to any up-to-date candidate of its current term, ignoring
    /// whom it already voted for: two candidates of one term can both win.
    #[serde(default)]
    pub vote_twice: bool,
}

fn default_seed() -> u64 {
    1
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Stop (exit 3) after this many events.
    #[serde(default = "default_max_events")]
    pub max_events: u64,
}

fn default_max_events() -> u64 {
    1_000_000_000
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_events: default_max_events() }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// One-way latency of every message unless a link overrides it.
    #[serde(default = "default_latency")]
    pub latency: LatencySpec,
    #[serde(default)]
    pub loss: f64,
    #[serde(default)]
    pub duplicate: f64,
    /// Overrides between roles, e.g. `{ from = "instances", to = "servers", loss = 0.01 }`.
    #[serde(default)]
    pub links: Vec<LinkSpec>,
    /// The transport of each protocol (TCP streams where the real system uses TCP).
    #[serde(default)]
    pub transport: crate::protocol::transport::TransportSpec,
}

fn default_latency() -> LatencySpec {
    LatencySpec::uniform(SimDuration::from_millis(1), SimDuration::from_millis(10))
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            latency: default_latency(),
            loss: 0.0,
            duplicate: 0.0,
            links: Vec::new(),
            transport: Default::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    pub from: String,
    pub to: String,
    pub latency: Option<LatencySpec>,
    pub loss: Option<f64>,
    pub duplicate: Option<f64>,
    /// Apply only from `from` to `to` (default: both directions).
    #[serde(default)]
    pub one_way: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySpec {
    /// `ap`: Nacos Distro for ephemeral instances; `cp`: Raft among the servers.
    #[serde(default)]
    pub mode: RegistryMode,
    #[serde(default = "default_servers")]
    pub servers: u32,
    // Each section is the protocol's own settings type (defaults and checks live there).
    #[serde(default)]
    pub raft: RaftConfig,
    #[serde(default)]
    pub health: HealthConfig,
    #[serde(default)]
    pub distro: DistroConfig,
    #[serde(default)]
    pub membership: MembershipConfig,
    #[serde(default)]
    pub push: PushConfig,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RegistryMode {
    #[default]
    Ap,
    Cp,
}

fn default_true() -> bool {
    true
}

/// How metrics sample time series (staleness, convergence).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSpec {
    #[serde(default = "secs::<1>")]
    pub sample_interval: SimDuration,
    /// Width of the `api` report's time windows (gateway request rate, errors, latency).
    #[serde(default = "secs::<10>")]
    pub api_window: SimDuration,
    /// Check the client-visible history for linearizability (report `consistency`).
    #[serde(default = "default_true")]
    pub consistency: bool,
    /// Client operations recorded at most; beyond, the history is not checked.
    #[serde(default = "default_history_ops")]
    pub max_history_ops: u64,
    /// Search budget of the checker per service; beyond, the verdict is "unknown".
    #[serde(default = "default_checker_states")]
    pub max_checker_states: u64,
}

fn default_history_ops() -> u64 {
    1_000_000
}
fn default_checker_states() -> u64 {
    // Affordable by default (seconds, a few hundred MB); see check::linearizability::Limits.
    1_000_000
}

impl Default for MetricsSpec {
    fn default() -> Self {
        MetricsSpec {
            sample_interval: secs::<1>(),
            api_window: secs::<10>(),
            consistency: true,
            max_history_ops: default_history_ops(),
            max_checker_states: default_checker_states(),
        }
    }
}

fn default_servers() -> u32 {
    1
}

impl Default for RegistrySpec {
    fn default() -> Self {
        RegistrySpec {
            mode: RegistryMode::Ap,
            raft: RaftConfig::default(),
            servers: default_servers(),
            health: HealthConfig::default(),
            distro: DistroConfig::default(),
            membership: MembershipConfig::default(),
            push: PushConfig::default(),
        }
    }
}

fn secs<const S: u64>() -> SimDuration {
    SimDuration::from_secs(S)
}

/// A semantic error: (key path, message).
pub use crate::protocol::config::Invalid;

impl Scenario {
    /// The consumers' call timeout (see [`ConsumersSpec::call_timeout`]): behind a gateway its
    /// retry budget + 1 s, so its retries can still help; else 1 s.
    pub fn call_timeout(&self) -> SimDuration {
        match (&self.gateway, self.consumers.call_timeout) {
            (_, Some(t)) => t,
            (Some(g), None) => g.retry_timeout + SimDuration::from_secs(1),
            (None, None) => SimDuration::from_secs(1),
        }
    }
}

impl Scenario {
    /// Checks everything serde cannot: ranges, limits, cross-field rules.
    pub fn validate(&self) -> Result<(), Invalid> {
        let e = |p: &str, m: &str| Err((p.to_string(), m.to_string()));
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return e("name", "expected a name of letters, digits, '-' and '_' (it names the report folder)");
        }
        if self.duration.0 == 0 || self.duration.as_secs_f64() > limits::MAX_DURATION_S as f64 {
            return e(
                "duration",
                &format!("expected a duration above 0 and at most {} days", limits::MAX_DURATION_S / 86_400),
            );
        }
        if self.limits.max_events == 0 || self.limits.max_events > limits::MAX_EVENTS {
            return e("limits.max_events", &format!("expected 1..={}", limits::MAX_EVENTS));
        }
        self.network.validate()?;
        crate::protocol::config::within("clocks", self.clocks.validate())?;
        if self.registry.servers == 0 || self.registry.servers > limits::MAX_SERVERS {
            return e("registry.servers", &format!("expected 1..={} servers", limits::MAX_SERVERS));
        }
        let r = &self.registry;
        within("registry.health", r.health.validate())?;
        within("registry.distro", r.distro.validate())?;
        within("registry.membership", r.membership.validate())?;
        within("registry.push", r.push.validate())?;
        if r.mode == RegistryMode::Cp {
            within("registry.raft", r.raft.validate())?;
        }
        let i = &self.instances;
        within("instances", i.validate())?;
        within("consumers", self.consumers.validate(self.call_timeout()))?;
        for (k, spec) in self.consumers.balancers.iter().enumerate() {
            let parsed = crate::balance::parse_spec(spec)
                .map_err(|err| (format!("consumers.balancers[{k}]"), err.to_string()))?;
            crate::balance::eval::check_ring_points(&parsed[0], u64::from(i.count.max(1)))
                .map_err(|err| (format!("consumers.balancers[{k}]"), err.to_string()))?;
        }
        if self.metrics.sample_interval < SimDuration::from_millis(10) {
            return e("metrics.sample_interval", "expected at least 10ms");
        }
        if self.metrics.api_window < SimDuration::from_secs(1) {
            return e("metrics.api_window", "expected at least 1s");
        }
        if self.gateway.is_some() && self.duration.as_secs_f64() / self.metrics.api_window.as_secs_f64() > 100_000.0 {
            return e("metrics.api_window", "expected at most 100,000 windows per run (a longer window)");
        }
        let m = &self.metrics;
        if m.max_history_ops > limits::MAX_HISTORY_OPS {
            return e("metrics.max_history_ops", &format!("expected at most {}", limits::MAX_HISTORY_OPS));
        }
        if m.max_checker_states == 0 || m.max_checker_states > limits::MAX_CHECKER_STATES {
            return e("metrics.max_checker_states", &format!("expected 1 to {}", limits::MAX_CHECKER_STATES));
        }
        if let Some(m) = &self.monitoring {
            m.validate()?;
        }
        if let Some(g) = &self.gateway {
            within("gateway", g.validate())?;
            for spec in
                crate::balance::parse_spec(&g.balancer).map_err(|err| ("gateway.balancer".into(), err.to_string()))?
            {
                crate::balance::eval::check_ring_points(&spec, u64::from(i.count.max(1)))
                    .map_err(|err| ("gateway.balancer".to_string(), err.to_string()))?;
            }
        }
        self.validate_regions()?;
        if self.faults.len() > limits::MAX_FAULTS {
            return e("faults", &format!("expected at most {} faults", limits::MAX_FAULTS));
        }
        for (k, f) in self.faults.iter().enumerate() {
            if f.at > self.duration {
                return e(
                    &format!("faults[{k}].at"),
                    &format!("{} is after the end of the run ({})", f.at, self.duration),
                );
            }
        }
        Ok(())
    }
}

impl Scenario {
    /// (key path, message) of thresholds that run but cannot work as meant: warnings, not
    /// errors (a study may set them on purpose), shown by `check`, `run` and in the summary.
    pub fn threshold_warnings(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let h = &self.registry.health;
        let beat = self.instances.beat_interval;
        if self.instances.count > 0 {
            for (key, d, what) in [
                ("unhealthy_after", h.unhealthy_after, "marked unhealthy"),
                ("delete_after", h.delete_after, "deleted"),
            ] {
                if d <= beat {
                    out.push((
                        format!("registry.health.{key}"),
                        format!(
                            "{d} is not above instances.beat_interval ({beat}): a live instance's last beat grows \
                             older than that before its next beat arrives, so healthy instances get {what} between \
                             beats (false positives)"
                        ),
                    ));
                }
            }
        }
        if h.delete_after < h.unhealthy_after {
            out.push((
                "registry.health.delete_after".into(),
                format!(
                    "{} is below registry.health.unhealthy_after ({}): a dead instance is deleted before it is ever \
                     marked unhealthy, so the unhealthy stage reads as missed",
                    h.delete_after, h.unhealthy_after
                ),
            ));
        }
        out
    }
}

impl NetworkSpec {
    fn validate(&self) -> Result<(), Invalid> {
        check_fraction("network.loss", self.loss)?;
        check_fraction("network.duplicate", self.duplicate)?;
        self.latency.build().map_err(|(f, m)| (format!("network.latency.{f}"), m))?;
        if self.links.len() > limits::MAX_LINKS {
            return Err(("network.links".into(), format!("expected at most {} links", limits::MAX_LINKS)));
        }
        for (k, l) in self.links.iter().enumerate() {
            if let Some(lat) = &l.latency {
                lat.build().map_err(|(f, m)| (format!("network.links[{k}].latency.{f}"), m))?;
            }
            if let Some(x) = l.loss {
                check_fraction(&format!("network.links[{k}].loss"), x)?;
            }
            if let Some(x) = l.duplicate {
                check_fraction(&format!("network.links[{k}].duplicate"), x)?;
            }
        }
        crate::protocol::config::within("network.transport", self.transport.validate())?;
        Ok(())
    }
}

fn check_fraction(path: &str, x: f64) -> Result<(), Invalid> {
    if (0.0..=1.0).contains(&x) {
        Ok(())
    } else {
        Err((path.to_string(), format!("expected a probability in [0, 1], got {x}")))
    }
}
