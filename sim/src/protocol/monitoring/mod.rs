//! Monitoring: `prometheus` (service discovery through the registry, scrapes, rule
//! evaluation, federation, alerts sent on) and `alertmanager` (grouping, inhibition,
//! notifications). The PromQL engine they evaluate with is `crate::monitor`.

pub mod alertmanager;
pub mod prometheus;
pub mod settings;

use std::sync::Arc;

use regsim_kernel::NodeId;

/// Explicit discriminants: the digest hashes them, not declaration order.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[repr(u8)]
pub enum Msg {
    /// Prometheus -> instance: scrape `GET /metrics` (the scrape's sequence number).
    Scrape { seq: u32 } = 1,
    /// Instance -> Prometheus: the instance's counters (registry requests it sent, calls it
    /// served since its process started).
    ScrapeOk { seq: u32, registry_requests: u64, calls_served: u64 } = 2,
    /// Prometheus -> Alertmanager: `POST /api/v2/alerts` with firing and resolved alerts.
    Alerts { batch: Arc<Vec<alertmanager::AlertMsg>> } = 3,
    /// Global Prometheus -> regional Prometheus: `GET /federate?match[]=...`.
    Federate { seq: u32, query: Arc<prometheus::FederateQuery> } = 4,
    /// A scrape answered with labelled samples (a gateway's metrics, a federation endpoint).
    Exposition { seq: u32, body: Arc<Exposition> } = 5,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
#[repr(u8)]
pub enum Timer {
    /// Prometheus: the next service-discovery refresh.
    Refresh = 1,
    /// Prometheus: the next scrape of `target` (a stale `generation` is a dropped target's timer).
    Scrape {
        target: NodeId,
        generation: u32,
    } = 2,
    ScrapeTimeout {
        target: NodeId,
        seq: u32,
    } = 3,
    /// Prometheus: the next evaluation of rule group `group`.
    Evaluate {
        group: u32,
    } = 4,
    /// Alertmanager: flush aggregation group `group`.
    Flush {
        group: u32,
    } = 5,
    /// Prometheus: write the staleness markers of a dropped target (`endOfRunStaleness`).
    EndOfRun {
        key: u32,
    } = 6,
}

/// A scrape's answer in the text exposition's terms: samples with their labels (without the
/// target's `job` and `instance`, which the scraper adds) and, for federation, their own
/// timestamps (ms).
#[derive(Clone, Debug, Default)]
pub struct Exposition {
    pub samples: Vec<(crate::monitor::Labels, f64, Option<i64>)>,
}

// Values compare and hash by their bits (a NaN equals itself), so messages stay `Eq + Hash`.
impl PartialEq for Exposition {
    fn eq(&self, other: &Self) -> bool {
        self.samples.len() == other.samples.len()
            && self
                .samples
                .iter()
                .zip(&other.samples)
                .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits() && a.2 == b.2)
    }
}

impl Eq for Exposition {}

impl std::hash::Hash for Exposition {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.samples.len().hash(state);
        for (l, v, t) in &self.samples {
            l.hash(state);
            v.to_bits().hash(state);
            t.hash(state);
        }
    }
}
