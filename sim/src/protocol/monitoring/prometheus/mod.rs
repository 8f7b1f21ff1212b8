//! A Prometheus 2.x server: service discovery from the registry, scraping, rule evaluation,
//! and alerts sent to Alertmanager. The storage and rule engine are the pure code of
//! [`crate::monitor`]; this actor only adds time and messages.
//!
//! Model (ANCHORS.md, "Monitoring"):
//! - **Discovery** polls a registry server every `refresh_interval` (30 s, consul_sd's
//!   default) with the same list query consumers use (random server, round-robin failover on
//!   timeout or refusal). The targets are every registered instance (the default: Consul SD
//!   returns all of a service's instances with their health as a label,
//!   `discovery/consul/consul.go`), or the healthy ones (`healthy_only`, as a relabel rule on
//!   that label would keep). A failed refresh keeps the previous targets, as Prometheus does.
//!   Pushes the registry sends (the query subscribes the caller) are acknowledged and ignored:
//!   discovery is by polling (approximation: Consul SD's blocking queries see a change at
//!   once; here it waits for the next refresh).
//! - **Scraping**: each target has its own loop, every `scrape_interval` from a random offset
//!   (Prometheus spreads targets by a hash of their labels). A scrape is a message to the
//!   instance; its answer writes `up = 1`, `scrape_duration_seconds` and the instance's
//!   counters, stamped with the scrape's start time. A refused connection (process down) or no
//!   answer within `scrape_timeout` writes `up = 0` and staleness markers for the target's
//!   other series. A target dropped by discovery is no longer scraped; the series of its last
//!   scrape, `up` included, get staleness markers about 2.1 intervals later, as
//!   `scrape.go` `scrapeLoop.endOfRunStaleness` writes them (v2.x and v3: wait for the loop's
//!   next tick and note its time, wait one more tick, then 10 % of the interval; the markers
//!   carry the first noted time). Until then the last sample counts: an `up == 0` alert on it
//!   stays pending (and can fire); once the markers are in, it disappears. A target never
//!   scraped gets none; markers older than a re-added target's new samples are ignored, as
//!   Prometheus ignores them as out of order; a crash drops the pending markers (Prometheus
//!   writes none when it shuts down).
//! - **Rules**: each group is evaluated every `interval` (its own, else
//!   `evaluation_interval`) from a random offset; the rule engine isolates failing rules and
//!   quarantines persistent failures ([`crate::monitor::group`]).
//! - **Alerts** are sent to the Alertmanager node after the evaluation that made them fire,
//!   with `starts_at` = the time they fired (`rules/manager.go` `SendAlerts`: `StartsAt:
//!   alert.FiredAt`); re-sent at the first evaluation strictly more than `resend_delay` (1 m,
//!   `--rules.alert.resend-delay`) after the last send (`needsSending`:
//!   `LastSentAt.Add(resendDelay).Before(ts)`); sent when they resolve, and re-sent the same
//!   way while the rule keeps the resolved alert (`resolvedRetention`, 15 m). A firing alert
//!   carries `ends_at = now + 4 * max(resend_delay, interval)` as Prometheus does, so
//!   Alertmanager resolves it if the resends stop; a resolved one its resolution time.
//!
//! - **Static targets** (`static_configs`): the region's gateways (job `gateway`) and, on a
//!   global server, the regional servers' `/federate` endpoints (job `federate`). A static
//!   target is never dropped. Its answer is a list of labelled samples; the target's `job` and
//!   `instance` are added, a clashing scraped label kept as `exported_job` / `exported_instance`
//!   (`honor_labels: false`, the default; a gateway's per-upstream `instance` label becomes
//!   `exported_instance`), except on federation targets, scraped with `honor_labels: true` so
//!   series keep their origin's `job` and `instance`.
//! - **Federation**: a server answers `/federate?match[]=...` with the latest sample of every
//!   series a selector matches, within the lookback and not stale, with its own timestamp and
//!   the server's external labels ([`crate::monitor::federate`]). Samples with timestamps get
//!   no staleness markers when they stop coming or the scrape fails (Prometheus's rule for
//!   explicit timestamps, unless `track_timestamps_staleness`): they fade at the lookback.
//! - **External labels** (`region` on a regional server, `monitor="global"` on the global
//!   one) are added to federated series and to alerts sent to Alertmanager.
//!
//! Observations: targets added and dropped, failed scrapes, alert transitions with the
//! instance they name, and each group's rule status after every evaluation.
//!
//! A crash loses the targets and the alert states (the rule engine restarts from inactive);
//! the stored samples survive, as Prometheus replays its WAL.

use crate::protocol::{monitoring, registry};
use std::collections::BTreeMap;
use std::sync::Arc;

use rand::RngExt;

use crate::monitor::Labels;
use crate::monitor::alerting::AlertState;
use crate::monitor::group::Group;
use crate::monitor::store::Store;
use crate::protocol::monitoring::Exposition;
use crate::protocol::monitoring::alertmanager::AlertMsg;
use crate::protocol::{Msg, NodeCtx, Obs, Timer};
use regsim_kernel::{NodeId, SimDuration, SimTime};

mod types;
pub use types::*;

#[derive(Clone, Debug)]
struct Target {
    job: String,
    /// Static (never dropped by discovery); `Some` with a federation query.
    fixed: bool,
    federate: Option<Arc<FederateQuery>>,
    generation: u32,
    seq: u32,
    /// The scrape in flight: its sequence number and local start time.
    in_flight: Option<(u32, SimTime)>,
    /// Series the last successful scrape wrote (besides `up`).
    series: Vec<Labels>,
    /// When the loop's next tick comes.
    next_tick: SimTime,
    /// Whether a scrape finished (`last` is not zero in `endOfRunStaleness`).
    scraped: bool,
}

#[derive(Clone, Copy, Debug)]
struct Discovery {
    req: u64,
    server_idx: usize,
    tried: usize,
}

#[derive(Debug)]
pub struct Prometheus {
    config: Arc<PrometheusConfig>,
    store: Store,
    groups: Vec<Group>,
    targets: BTreeMap<NodeId, Target>,
    next_gen: u32,
    discovery: Option<Discovery>,
    next_req: u64,
    /// Last time (ms) each alert was sent to Alertmanager, by alert labels.
    last_sent: BTreeMap<Labels, i64>,
    /// Appends the store refused (out of order, limits): counted, never fatal.
    pub append_errors: u64,
    /// Dropped targets' staleness markers waiting to be written: the series and the stamp (ms).
    ending: BTreeMap<u32, (Vec<Labels>, i64)>,
    next_end: u32,
}

/// The `instance` label of a node.
pub fn instance_label(n: NodeId) -> String {
    n.to_string()
}

/// The node an `instance` label names (`n17`), if any.
pub fn parse_instance(s: &str) -> Option<NodeId> {
    s.strip_prefix('n').and_then(|d| d.parse().ok()).map(NodeId)
}

fn ms(t: SimTime) -> i64 {
    (t.as_nanos() / 1_000_000) as i64
}

impl Prometheus {
    pub fn new(config: Arc<PrometheusConfig>) -> Prometheus {
        let lookback_ms = (config.lookback.as_nanos() / 1_000_000) as i64;
        Prometheus {
            groups: config.groups.iter().map(Group::new).collect(),
            store: Store::new(lookback_ms),
            config,
            targets: BTreeMap::new(),
            next_gen: 0,
            discovery: None,
            next_req: 0,
            last_sent: BTreeMap::new(),
            append_errors: 0,
            ending: BTreeMap::new(),
            next_end: 0,
        }
    }

    /// The stored samples (for export).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Moves the stored samples out (after a run, for export).
    pub fn take_store(&mut self) -> Store {
        std::mem::take(&mut self.store)
    }

    /// The rule groups with their rules' status.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    fn group_interval(&self, g: usize) -> SimDuration {
        match self.groups[g].interval_ms {
            Some(ms) if ms > 0 => SimDuration::from_millis(ms as u64),
            _ => self.config.evaluation_interval,
        }
    }

    pub fn on_start(&mut self, ctx: &mut NodeCtx<'_>) {
        for t in self.config.static_targets.clone() {
            self.add_target(ctx, t.node, t.job, true, t.federate);
        }
        self.refresh(ctx);
        for g in 0..self.groups.len() {
            let interval = self.group_interval(g).as_nanos().max(1);
            let offset = SimDuration(ctx.rng().random_range(0..interval));
            ctx.set_timer(offset, monitoring::Timer::Evaluate { group: g as u32 });
        }
    }

    pub fn on_message(&mut self, ctx: &mut NodeCtx<'_>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Registry(registry::Msg::QueryOk { req, answer }) if self.discovery.is_some_and(|d| d.req == req) => {
                self.discovery = None;
                let list = if self.config.healthy_only { &answer.instances } else { &answer.registered };
                let list = Arc::clone(list);
                self.set_targets(ctx, &list);
                ctx.set_timer(self.config.refresh_interval, monitoring::Timer::Refresh);
            }
            Msg::Registry(registry::Msg::Redirect { req, leader }) => {
                let to = leader.and_then(|l| self.config.servers.iter().position(|s| *s == l));
                self.discovery_failed(ctx, req, to);
            }
            Msg::Registry(registry::Msg::Push { push_id, .. }) => ctx.send(from, registry::Msg::PushAck { push_id }),
            Msg::Monitoring(monitoring::Msg::ScrapeOk { seq, registry_requests, calls_served }) => {
                let samples = vec![
                    (Labels::metric("registry_requests_total", &[]), registry_requests as f64, None),
                    (Labels::metric("calls_served_total", &[]), calls_served as f64, None),
                ];
                self.scraped(ctx, from, seq, Some(samples));
            }
            Msg::Monitoring(monitoring::Msg::Exposition { seq, body }) => {
                self.scraped(ctx, from, seq, Some(body.samples.clone()))
            }
            Msg::Monitoring(monitoring::Msg::Federate { seq, query }) => {
                let now = ms(ctx.now());
                // A selector outside the subset is Prometheus's 400 Bad Request: no samples,
                // the scrape fails (selectors are checked when the scenario loads).
                let Ok(found) = crate::monitor::federate::federate(&self.store, &query.matchers, now) else { return };
                let mut samples = Vec::new();
                for (mut labels, sample) in found {
                    labels.fill_missing(&self.config.external_labels);

                    samples.push((labels, sample.v, Some(sample.t)));
                }
                ctx.send(from, monitoring::Msg::Exposition { seq, body: Arc::new(Exposition { samples }) });
            }
            _ => {}
        }
    }

    pub fn on_timer(&mut self, ctx: &mut NodeCtx<'_>, timer: Timer) {
        match timer {
            Timer::Monitoring(monitoring::Timer::Refresh) => self.refresh(ctx),
            Timer::Registry(registry::Timer::QueryTimeout { req, attempt })
                if self.discovery.is_some_and(|d| d.tried == usize::from(attempt)) =>
            {
                self.discovery_failed(ctx, req, None);
            }
            Timer::Monitoring(monitoring::Timer::Scrape { target, generation }) => self.scrape(ctx, target, generation),
            Timer::Monitoring(monitoring::Timer::ScrapeTimeout { target, seq }) => self.scraped(ctx, target, seq, None),
            Timer::Monitoring(monitoring::Timer::EndOfRun { key }) => {
                if let Some((series, stamp)) = self.ending.remove(&key) {
                    for l in &series {
                        // Out of order (a re-added target scraped since): ignored, as
                        // Prometheus ignores `ErrOutOfOrderSample` here.
                        let _ = self.store.mark_stale(l, stamp);
                    }
                }
            }
            Timer::Monitoring(monitoring::Timer::Evaluate { group }) => self.evaluate(ctx, group as usize),
            _ => {}
        }
    }

    pub fn on_refused(&mut self, ctx: &mut NodeCtx<'_>, to: NodeId, msg: Msg) {
        match msg {
            Msg::Registry(registry::Msg::Query { req, .. }) => self.discovery_failed(ctx, req, None),
            Msg::Monitoring(monitoring::Msg::Scrape { seq })
            | Msg::Monitoring(monitoring::Msg::Federate { seq, .. }) => self.scraped(ctx, to, seq, None),
            _ => {}
        }
    }

    pub fn crash(&mut self) {
        self.targets.clear();
        self.ending.clear();
        self.discovery = None;
        self.last_sent.clear();
        self.groups = self.config.groups.iter().map(Group::new).collect();
    }

    fn refresh(&mut self, ctx: &mut NodeCtx<'_>) {
        let n = self.config.servers.len();
        if n == 0 {
            return;
        }
        let start = if n > 1 { ctx.rng().random_range(0..n) } else { 0 };
        self.next_req += 1;
        self.query(ctx, Discovery { req: self.next_req, server_idx: start, tried: 1 });
    }

    fn query(&mut self, ctx: &mut NodeCtx<'_>, d: Discovery) {
        let server = self.config.servers[d.server_idx];
        ctx.send(server, registry::Msg::Query { service: self.config.service, req: d.req });
        ctx.set_timer(self.config.query_timeout, registry::Timer::QueryTimeout { req: d.req, attempt: d.tried as u16 });
        self.discovery = Some(d);
    }

    fn discovery_failed(&mut self, ctx: &mut NodeCtx<'_>, req: u64, to: Option<usize>) {
        let Some(d) = self.discovery.filter(|d| d.req == req) else { return };
        let n = self.config.servers.len();
        if d.tried < n {
            let server_idx = to.unwrap_or((d.server_idx + 1) % n);
            self.query(ctx, Discovery { req, server_idx, tried: d.tried + 1 });
            return;
        }
        // Every server failed: keep the current targets and try again next refresh.
        self.discovery = None;
        ctx.set_timer(self.config.refresh_interval, monitoring::Timer::Refresh);
    }

    /// Applies a discovery result (sorted instance list).
    fn set_targets(&mut self, ctx: &mut NodeCtx<'_>, list: &[NodeId]) {
        let gone: Vec<NodeId> =
            self.targets.iter().filter(|(t, x)| !x.fixed && list.binary_search(t).is_err()).map(|(t, _)| *t).collect();
        for t in gone {
            let up = self.up_labels(t);
            let Some(target) = self.targets.remove(&t) else { continue };
            ctx.observe(Obs::Target { instance: t, present: false });
            if !target.scraped {
                continue;
            }
            // endOfRunStaleness: the next tick (its time stamps the markers), one more, + 10 %.
            let interval = self.config.scrape_interval;
            let write_at = target.next_tick + interval + SimDuration(interval.as_nanos() / 10);
            let mut series = target.series;
            series.push(up);
            self.next_end = self.next_end.wrapping_add(1);
            self.ending.insert(self.next_end, (series, ms(target.next_tick)));
            ctx.set_timer(write_at.saturating_since(ctx.now()), monitoring::Timer::EndOfRun { key: self.next_end });
        }

        for &t in list {
            if !self.targets.contains_key(&t) {
                self.add_target(ctx, t, self.config.job.clone(), false, None);
            }
        }
    }

    fn add_target(
        &mut self,
        ctx: &mut NodeCtx<'_>,
        t: NodeId,
        job: String,
        fixed: bool,
        federate: Option<Arc<FederateQuery>>,
    ) {
        self.next_gen = self.next_gen.wrapping_add(1);
        let generation = self.next_gen;
        let interval = self.config.scrape_interval.as_nanos().max(1);
        let offset = SimDuration(ctx.rng().random_range(0..interval));
        let next_tick = ctx.now() + offset;
        let target = Target {
            job,
            fixed,
            federate,
            generation,
            seq: 0,
            in_flight: None,
            series: Vec::new(),
            next_tick,
            scraped: false,
        };
        self.targets.insert(t, target);
        ctx.set_timer(offset, monitoring::Timer::Scrape { target: t, generation });
        ctx.observe(Obs::Target { instance: t, present: true });
    }

    fn target_labels(&self, t: NodeId, name: &str) -> Labels {
        let job = self.targets.get(&t).map_or(self.config.job.as_str(), |x| x.job.as_str());
        Labels::metric(name, &[("instance", &instance_label(t)), ("job", job)])
    }

    fn up_labels(&self, t: NodeId) -> Labels {
        self.target_labels(t, "up")
    }

    fn scrape(&mut self, ctx: &mut NodeCtx<'_>, t: NodeId, generation: u32) {
        let now = ctx.now();
        let Some(target) = self.targets.get_mut(&t).filter(|x| x.generation == generation) else { return };
        ctx.set_timer(self.config.scrape_interval, monitoring::Timer::Scrape { target: t, generation });
        target.next_tick = now + self.config.scrape_interval;
        if target.in_flight.is_some() {
            return; // the previous scrape is still running (timeout = interval): skip this one
        }
        target.seq = target.seq.wrapping_add(1);
        let seq = target.seq;
        target.in_flight = Some((seq, now));
        match &target.federate {
            Some(query) => ctx.send(t, monitoring::Msg::Federate { seq, query: Arc::clone(query) }),
            None => ctx.send(t, monitoring::Msg::Scrape { seq }),
        }
        ctx.set_timer(self.config.scrape_timeout, monitoring::Timer::ScrapeTimeout { target: t, seq });
    }

    /// The scrape `seq` of `t` finished: with the target's samples, or failed (`None`).
    fn scraped(&mut self, ctx: &mut NodeCtx<'_>, t: NodeId, seq: u32, answer: Option<Vec<(Labels, f64, Option<i64>)>>) {
        let now = ctx.now();
        let Some(target) = self.targets.get_mut(&t) else { return };
        let Some((_, started)) = target.in_flight.filter(|(s, _)| *s == seq) else { return };
        target.in_flight = None;
        target.scraped = true;
        let (job, old) = (target.job.clone(), std::mem::take(&mut target.series));
        let federated = target.federate.is_some();
        let ts = ms(started);
        let took = now.saturating_since(started).as_secs_f64();
        let up = if answer.is_some() { 1.0 } else { 0.0 };
        let mut written = vec![self.target_labels(t, "scrape_duration_seconds")];
        let mut samples = vec![(self.target_labels(t, "up"), up, ts), (written[0].clone(), took, ts)];
        match answer {
            Some(answer) => {
                let instance = instance_label(t);
                for (mut labels, v, stamp) in answer {
                    // honor_labels: the target's labels fill in only what the sample lacks.
                    for (k, x) in [("instance", instance.as_str()), ("job", job.as_str())] {
                        match labels.get(k).map(str::to_string) {
                            // honor_labels: false (the default): a scraped label that clashes
                            // with a target label is kept as `exported_<name>`.
                            Some(v) if !federated => {
                                labels.set(format!("exported_{k}"), v);
                                labels.set(k.to_string(), x.to_string());
                            }
                            Some(_) => {}
                            // Prometheus's federation handler answers `instance=""` for a series
                            // without one, so the federation target's instance is not attached
                            // (an empty label is no label).
                            None if federated && k == "instance" => {}
                            None => labels.set(k.to_string(), x.to_string()),
                        }
                    }
                    if stamp.is_none() || self.config.track_timestamps_staleness {
                        written.push(labels.clone());
                    }
                    samples.push((labels, v, stamp.unwrap_or(ts)));
                }
            }
            None => ctx.observe(Obs::ScrapeFailed { instance: t }),
        }
        for (l, v, at) in &samples {
            if self.store.append(l, *at, *v).is_err() {
                self.append_errors += 1;
            }
        }
        let kept: std::collections::BTreeSet<&Labels> = written.iter().collect();
        for l in old.iter().filter(|l| !kept.contains(l)) {
            if self.store.mark_stale(l, ts).is_err() {
                self.append_errors += 1;
            }
        }
        if let Some(target) = self.targets.get_mut(&t) {
            target.series = written;
        }
    }

    fn evaluate(&mut self, ctx: &mut NodeCtx<'_>, g: usize) {
        if g >= self.groups.len() {
            return;
        }
        ctx.set_timer(self.group_interval(g), monitoring::Timer::Evaluate { group: g as u32 });
        let now = ms(ctx.now());
        let retention = (self.config.retention.as_nanos() / 1_000_000) as i64;
        if now > retention {
            self.store.truncate_before(now - retention);
        }
        let outcomes = self.groups[g].eval(&mut self.store, now, &self.config.engine);
        for o in &outcomes {
            let tr = &o.transitions;
            let all = [
                (&tr.pending, AlertTransition::Pending),
                (&tr.firing, AlertTransition::Firing),
                (&tr.resolved, AlertTransition::Resolved),
            ];
            for (list, state) in all {
                for labels in list {
                    let instance = labels.get("instance").and_then(parse_instance);
                    let obs = AlertObs { rule: o.rule.clone(), labels: labels.clone(), state, instance };
                    ctx.observe(Obs::Alert(Arc::new(obs)));
                }
            }
        }
        let group = &self.groups[g];
        let rules = group
            .rules
            .iter()
            .map(|r| RuleStatus {
                rule: r.spec.name.clone(),
                kind: if r.alerting.is_some() { "alerting" } else { "recording" },
                health: r.health.as_str(),
                evaluations: r.evaluations,
                errors: r.errors,
                last_error: r.last_error.clone(),
                quarantined: r.quarantined,
                times_fired: r.times_fired,
            })
            .collect();
        let status = GroupStatus { file: group.file.clone(), group: group.name.clone(), rules };
        ctx.observe(Obs::Rules(Arc::new(status)));
        self.send_alerts(ctx, g, now);
    }

    /// Sends the group's alerts that need sending (Prometheus's `needsSending`).
    fn send_alerts(&mut self, ctx: &mut NodeCtx<'_>, g: usize, now: i64) {
        let Some(am) = self.config.alertmanager else { return };
        let resend = (self.config.resend_delay.as_nanos() / 1_000_000) as i64;
        let interval = (self.group_interval(g).as_nanos() / 1_000_000) as i64;
        let valid_for = 4 * resend.max(interval);
        let mut batch = Vec::new();
        for rule in &self.groups[g].rules {
            let Some(a) = &rule.alerting else { continue };
            for alert in a.alerts() {
                let last = self.last_sent.get(&alert.labels).copied();
                // rules/alerting.go `needsSending`: never pending; a resolution not sent yet;
                // otherwise strictly after the resend delay, resolved alerts included (they
                // stay active, and are re-sent, for `resolvedRetention`, 15 m).
                let resent = last.is_none_or(|l| l + resend < now);
                let send = match alert.state {
                    AlertState::Pending => false,
                    AlertState::Inactive => alert.resolved_at_ms.is_some_and(|r| last.is_none_or(|l| r > l)) || resent,
                    // A new alert object (fired after the last send of the labels, e.g. the
                    // resolved one it replaced) has never been sent: `LastSentAt` is zero.
                    AlertState::Firing => alert.fired_at_ms.is_some_and(|f| last.is_none_or(|l| f > l)) || resent,
                };
                if !send {
                    continue;
                }
                let resolved = alert.state == AlertState::Inactive;
                let ends_at_ms = if resolved { alert.resolved_at_ms.unwrap_or(now) } else { now + valid_for };
                let mut labels = alert.labels.clone();
                labels.fill_missing(&self.config.external_labels);
                // `SendAlerts`: `StartsAt: alert.FiredAt`.
                let starts_at_ms = alert.fired_at_ms.unwrap_or(alert.active_at_ms);
                batch.push(AlertMsg { labels, starts_at_ms, ends_at_ms });
                self.last_sent.insert(alert.labels.clone(), now);
            }
        }
        // Forget alerts the rule no longer retains.
        let retained: Vec<Labels> = self
            .groups
            .iter()
            .flat_map(|g| g.rules.iter())
            .filter_map(|r| r.alerting.as_ref())
            .flat_map(|a| a.alerts().map(|x| x.labels.clone()))
            .collect();
        self.last_sent.retain(|l, _| retained.contains(l));
        if !batch.is_empty() {
            ctx.send(am, monitoring::Msg::Alerts { batch: Arc::new(batch) });
        }
    }
}

#[cfg(test)]
mod tests;
