//! The monitoring folder's scenario section, `[monitoring]`: a Prometheus server per region scraping the region's instances
//! (and gateways), an optional global Prometheus federating them (`[monitoring.global]`), and
//! one Alertmanager receiving the alerts of every server (issue 9). Defaults are Prometheus 2.x's and Alertmanager's
//! (ANCHORS.md, "Monitoring"): scrape every 1 m with a 10 s timeout, evaluate every 1 m,
//! lookback 5 m, resend every 1 m; consul_sd's 30 s refresh; `group_wait` 30 s,
//! `group_interval` 5 m, `repeat_interval` 4 h.
//!
//! Rule files are Prometheus rule files, paths relative to the scenario file; they are loaded
//! and checked with the scenario (a rule outside regsim's PromQL subset is a load error with
//! the rule file's line and column), and kept in [`MonitoringSpec::loaded`].

use std::path::Path;

use serde::Deserialize;

use crate::monitor::rulefile::{self, GroupSpec, LoadError};
use crate::protocol::monitoring::alertmanager::AlertmanagerConfig;
use regsim_kernel::SimDuration;

/// Bound on rule files per scenario.
pub const MAX_RULE_FILES: usize = 64;

/// `[monitoring]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitoringSpec {
    /// The `job` label of the scraped instances.
    pub job: String,
    pub rule_files: Vec<String>,
    pub prometheus: PrometheusSpec,
    /// An Alertmanager node receives the alerts (else alerts are only evaluated).
    pub alertmanager_enabled: bool,
    /// `[monitoring.alertmanager]`: the Alertmanager's own settings type.
    pub alertmanager: AlertmanagerConfig,
    /// A global Prometheus scraping every regional server's `/federate` endpoint.
    pub global: Option<GlobalSpec>,
    /// The rule groups of `rule_files`, filled by the loader.
    #[serde(skip)]
    pub loaded: Vec<GroupSpec>,
}

impl Default for MonitoringSpec {
    fn default() -> Self {
        MonitoringSpec {
            job: "api".into(),
            rule_files: Vec::new(),
            prometheus: PrometheusSpec::default(),
            alertmanager_enabled: true,
            alertmanager: AlertmanagerConfig::default(),
            global: None,
            loaded: Vec::new(),
        }
    }
}

/// `[monitoring.global]`: the global server of a federation: it scrapes
/// `/federate?match[]=...` of every regional server (`honor_labels: true`, so the series keep
/// their `job`, `instance` and `region`) and evaluates its own rule files. Defaults as
/// Prometheus's: scrape and evaluate every 1 m, 10 s timeout. Federated samples carry their
/// source timestamps, so Prometheus writes no staleness markers for them (unless
/// `track_timestamps_staleness`): a series that stopped coming fades only when the 5 m
/// lookback runs out.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalSpec {
    pub rule_files: Vec<String>,
    /// The `match[]` selectors of the federation scrape.
    #[serde(rename = "match")]
    pub matchers: Vec<String>,
    pub scrape_interval: SimDuration,
    pub scrape_timeout: SimDuration,
    pub evaluation_interval: SimDuration,
    /// Prometheus 2.48's `track_timestamps_staleness`: mark federated series stale when they
    /// stop coming, as for any other series.
    pub track_timestamps_staleness: bool,
    #[serde(skip)]
    pub loaded: Vec<GroupSpec>,
    #[serde(skip)]
    pub parsed: Vec<crate::monitor::Query>,
}

impl Default for GlobalSpec {
    fn default() -> Self {
        GlobalSpec {
            rule_files: Vec::new(),
            matchers: vec!["{job=~\".+\"}".into()],
            scrape_interval: SimDuration::from_secs(60),
            scrape_timeout: SimDuration::from_secs(10),
            evaluation_interval: SimDuration::from_secs(60),
            track_timestamps_staleness: false,
            loaded: Vec::new(),
            parsed: Vec::new(),
        }
    }
}

/// `[monitoring.prometheus]`: each regional Prometheus server.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusSpec {
    pub scrape_interval: SimDuration,
    pub scrape_timeout: SimDuration,
    pub evaluation_interval: SimDuration,
    /// Service-discovery refresh (consul_sd: 30 s; http_sd: 60 s).
    pub refresh_interval: SimDuration,
    /// Discover only the instances the registry lists as healthy. Off by default: Consul SD
    /// asks `/v1/health/service/<name>` with `passingOnly` false
    /// (`discovery/consul/consul.go`), and a Nacos list with `healthyOnly=false` (its
    /// default) returns every instance; users filter by relabelling on the health label.
    pub healthy_only: bool,
    pub query_timeout: SimDuration,
    pub resend_delay: SimDuration,
    pub lookback: SimDuration,
    pub retention: SimDuration,
    /// Quarantine a rule after this many consecutive failed evaluations (0: never).
    pub quarantine_after: u32,
}

impl Default for PrometheusSpec {
    fn default() -> Self {
        let secs = SimDuration::from_secs;
        PrometheusSpec {
            scrape_interval: secs(60),
            scrape_timeout: secs(10),
            evaluation_interval: secs(60),
            refresh_interval: secs(30),
            healthy_only: false,
            query_timeout: secs(3),
            resend_delay: secs(60),
            lookback: secs(300),
            retention: secs(1_296_000),
            quarantine_after: 10,
        }
    }
}

use crate::protocol::config::{Invalid, periods, within};

impl MonitoringSpec {
    pub fn validate(&self) -> Result<(), Invalid> {
        let e = |p: &str, m: &str| Err((format!("monitoring.{p}"), m.to_string()));
        let valid_label = crate::monitor::labels::valid_label_name;
        if self.job.is_empty() {
            return e("job", "expected a non-empty job name");
        }
        if self.rule_files.len() > MAX_RULE_FILES {
            return e("rule_files", &format!("expected at most {MAX_RULE_FILES} rule files"));
        }
        let p = &self.prometheus;
        let positive = [
            ("prometheus.scrape_interval", p.scrape_interval),
            ("prometheus.scrape_timeout", p.scrape_timeout),
            ("prometheus.evaluation_interval", p.evaluation_interval),
            ("prometheus.refresh_interval", p.refresh_interval),
            ("prometheus.query_timeout", p.query_timeout),
            ("prometheus.resend_delay", p.resend_delay),
            ("prometheus.lookback", p.lookback),
            ("prometheus.retention", p.retention),
            ("alertmanager.group_wait", self.alertmanager.group_wait),
            ("alertmanager.group_interval", self.alertmanager.group_interval),
            ("alertmanager.repeat_interval", self.alertmanager.repeat_interval),
        ];
        within("monitoring", periods(&positive))?;
        if p.scrape_timeout > p.scrape_interval {
            // Prometheus refuses the same: "scrape timeout greater than scrape interval".
            return e("prometheus.scrape_timeout", "expected at most prometheus.scrape_interval");
        }
        if let Some(g) = &self.global {
            if g.rule_files.len() > MAX_RULE_FILES {
                return e("global.rule_files", &format!("expected at most {MAX_RULE_FILES} rule files"));
            }
            let periods_of_global = [
                ("global.scrape_interval", g.scrape_interval),
                ("global.scrape_timeout", g.scrape_timeout),
                ("global.evaluation_interval", g.evaluation_interval),
            ];
            within("monitoring", periods(&periods_of_global))?;
            if g.scrape_timeout > g.scrape_interval {
                return e("global.scrape_timeout", "expected at most global.scrape_interval");
            }
            if g.matchers.is_empty() || g.matchers.len() > 64 {
                return e("global.match", "expected 1 to 64 selectors");
            }
            for (k, m) in g.matchers.iter().enumerate() {
                crate::monitor::federate::parse_matchers(std::slice::from_ref(m))
                    .map_err(|err| (format!("monitoring.global.match[{k}]"), err))?;
            }
        }
        for (k, name) in self.alertmanager.group_by.iter().enumerate() {
            if !valid_label(name) {
                return e(&format!("alertmanager.group_by[{k}]"), &format!("\"{name}\" is not a valid label name"));
            }
        }
        Ok(())
    }

    /// Loads the rule files, relative to `base` (the scenario file's folder).
    pub fn load_rules(&mut self, base: &Path) -> Result<(), RulesError> {
        self.loaded = load_groups(base, &self.rule_files, "monitoring.rule_files")?;
        if let Some(g) = &mut self.global {
            g.loaded = load_groups(base, &g.rule_files, "monitoring.global.rule_files")?;
            // Checked by `validate`.
            g.parsed = crate::monitor::federate::parse_matchers(&g.matchers).unwrap_or_default();
        }
        Ok(())
    }
}

/// Why the rule files of a scenario did not load.
#[derive(Debug)]
pub enum RulesError {
    /// A file that cannot be read as a whole (missing, too large): at its entry in the
    /// scenario, `key_path` (`monitoring.rule_files[k]`), for the caller to locate there.
    Entry { key_path: String, message: String },
    /// An error inside a rule file, located in that file.
    File(LoadError),
}

fn load_groups(base: &Path, files: &[String], key: &str) -> Result<Vec<GroupSpec>, RulesError> {
    let mut groups = Vec::new();
    for (k, f) in files.iter().enumerate() {
        let path = base.join(f);
        let shown = path.display().to_string();
        let text = rulefile::read_text(&path).map_err(|e| match e.location == shown {
            true => RulesError::Entry {
                key_path: format!("{key}[{k}]"),
                message: format!("rule file {shown}: {}", e.message),
            },
            false => RulesError::File(e),
        })?;
        let parsed = rulefile::parse(&text, &shown).map_err(RulesError::File)?;
        // Named as written in the scenario, so reports hold no path of the machine.
        groups.extend(parsed.groups.into_iter().map(|mut g| {
            g.file = f.clone();
            g
        }));
    }
    Ok(groups)
}
