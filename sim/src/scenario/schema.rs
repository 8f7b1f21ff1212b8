//! The scenario file schema (TOML through serde; unknown keys are rejected).
//!
//! Defaults are the reference values of ../shared/ANCHORS.md (Nacos 1.x: 5 s client beat,
//! 5 s health check, unhealthy after 15 s, deleted after 30 s). Every size a file can make
//! large has a hard limit, checked in `validate`.

use serde::Deserialize;

use crate::engine::SimDuration;
use crate::fault::FaultSpec;
use crate::net::LatencySpec;

/// Hard limits on what a scenario may ask for.
pub mod limits {
    pub const MAX_SERVERS: u32 = 1_000;
    pub const MAX_INSTANCES: u32 = 1_000_000;
    pub const MAX_DURATION_S: u64 = 30 * 24 * 3_600;
    pub const MAX_EVENTS: u64 = 100_000_000_000;
    pub const MAX_FAULTS: usize = 100_000;
    pub const MAX_LINKS: usize = 64;
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Names the report folder (`reports/<name>/`): letters, digits, `-`, `_`.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Virtual time to simulate.
    pub duration: SimDuration,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default)]
    pub registry: RegistrySpec,
    #[serde(default)]
    pub instances: InstancesSpec,
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
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
}

fn default_latency() -> LatencySpec {
    LatencySpec::uniform(SimDuration::from_millis(1), SimDuration::from_millis(10))
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec { latency: default_latency(), loss: 0.0, duplicate: 0.0, links: Vec::new() }
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
    #[serde(default = "default_servers")]
    pub servers: u32,
    #[serde(default)]
    pub health: HealthSpec,
}

fn default_servers() -> u32 {
    1
}

impl Default for RegistrySpec {
    fn default() -> Self {
        RegistrySpec { servers: default_servers(), health: HealthSpec::default() }
    }
}

/// Nacos `ClientBeatCheckTask` timing.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    #[serde(default = "secs::<5>")]
    pub check_interval: SimDuration,
    #[serde(default = "secs::<15>")]
    pub unhealthy_after: SimDuration,
    #[serde(default = "secs::<30>")]
    pub delete_after: SimDuration,
}

impl Default for HealthSpec {
    fn default() -> Self {
        HealthSpec { check_interval: secs::<5>(), unhealthy_after: secs::<15>(), delete_after: secs::<30>() }
    }
}

fn secs<const S: u64>() -> SimDuration {
    SimDuration::from_secs(S)
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstancesSpec {
    #[serde(default)]
    pub count: u32,
    #[serde(default = "default_service")]
    pub service: String,
    #[serde(default = "secs::<5>")]
    pub beat_interval: SimDuration,
    /// Client-side timeout of one register or beat request to one server.
    #[serde(default = "secs::<3>")]
    pub request_timeout: SimDuration,
    /// Instances start at offsets uniform in `[0, start_spread)`.
    #[serde(default = "secs::<5>")]
    pub start_spread: SimDuration,
}

fn default_service() -> String {
    "demo-service".into()
}

impl Default for InstancesSpec {
    fn default() -> Self {
        InstancesSpec {
            count: 0,
            service: default_service(),
            beat_interval: secs::<5>(),
            request_timeout: secs::<3>(),
            start_spread: secs::<5>(),
        }
    }
}

/// A semantic error: (key path, message).
pub type Invalid = (String, String);

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
        if self.registry.servers == 0 || self.registry.servers > limits::MAX_SERVERS {
            return e("registry.servers", &format!("expected 1..={} servers", limits::MAX_SERVERS));
        }
        let h = &self.registry.health;
        for (key, d) in [
            ("check_interval", h.check_interval),
            ("unhealthy_after", h.unhealthy_after),
            ("delete_after", h.delete_after),
        ] {
            if d.0 == 0 {
                return e(&format!("registry.health.{key}"), "expected a duration above 0");
            }
        }
        let i = &self.instances;
        if i.count > limits::MAX_INSTANCES {
            return e(
                "instances.count",
                &format!("expected at most {} instances, got {}", limits::MAX_INSTANCES, i.count),
            );
        }
        for (key, d) in [("beat_interval", i.beat_interval), ("request_timeout", i.request_timeout)] {
            if d.0 == 0 {
                return e(&format!("instances.{key}"), "expected a duration above 0");
            }
        }
        if i.service.is_empty() {
            return e("instances.service", "expected a non-empty service name");
        }
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
