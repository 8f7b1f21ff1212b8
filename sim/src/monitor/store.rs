//! An in-memory time-series store with Prometheus's staleness and lookback rules.
//!
//! Model (Prometheus 2.x TSDB as the query engine sees it): a series is a label set
//! ([`Labels`]) with samples `(timestamp ms, f64)` in increasing time order. A *staleness
//! marker* is a sample whose value is the special NaN with bit pattern `0x7ff0000000000002`;
//! Prometheus writes one when a target disappears or a scrape fails, and when a rule stops
//! returning a series. An instant selector at time `t` returns, per series, the latest sample
//! in `[t - lookback, t]` unless that sample is a staleness marker (lookback 5 m by default,
//! `--query.lookback-delta`); a range selector `[r]` returns the samples in `[t - r, t]`,
//! staleness markers dropped. Both windows are closed on the left as in Prometheus 2.x (3.x
//! made them left-open); promtool 2.x is the oracle the tests compare against.
//!
//! Series live in a `BTreeMap` keyed by label set, so selection returns them in Prometheus's
//! label order and no hash order reaches an output. Limits: `max_series` bounds memory; a
//! sample older than the series' last one is rejected (as Prometheus's "out of order sample").

use std::collections::BTreeMap;

use super::labels::Labels;

/// Prometheus's staleness marker: a NaN with this exact bit pattern (`value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Prometheus's default query lookback (`--query.lookback-delta`): 5 minutes.
pub const DEFAULT_LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Default bound on the number of series a store holds.
pub const DEFAULT_MAX_SERIES: usize = 1_000_000;

/// The staleness marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Is `v` a staleness marker (not just any NaN)?
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One sample: timestamp in milliseconds since the store's epoch, and a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

/// Why an append was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum AppendError {
    /// The sample is older than the series' newest sample.
    OutOfOrder { series: String, t: i64, last_t: i64 },
    /// Same timestamp as the newest sample, different value.
    Duplicate { series: String, t: i64 },
    /// The store already holds `max_series` series.
    TooManySeries { max_series: usize },
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::OutOfOrder { series, t, last_t } => {
                write!(f, "out of order sample for {series}: {t} ms is before {last_t} ms")
            }
            AppendError::Duplicate { series, t } => {
                write!(f, "duplicate sample for timestamp {t} ms with a different value for {series}")
            }
            AppendError::TooManySeries { max_series } => write!(f, "store limit of {max_series} series reached"),
        }
    }
}

impl std::error::Error for AppendError {}

/// The store: series by label set.
#[derive(Clone, Debug)]
pub struct Store {
    series: BTreeMap<Labels, Vec<Sample>>,
    lookback_ms: i64,
    max_series: usize,
}

impl Default for Store {
    fn default() -> Self {
        Store::new(DEFAULT_LOOKBACK_MS)
    }
}

impl Store {
    /// An empty store with the given lookback (milliseconds, at least 1).
    pub fn new(lookback_ms: i64) -> Store {
        Store { series: BTreeMap::new(), lookback_ms: lookback_ms.max(1), max_series: DEFAULT_MAX_SERIES }
    }

    /// Sets the series limit.
    pub fn with_max_series(mut self, max_series: usize) -> Store {
        self.max_series = max_series;
        self
    }

    pub fn lookback_ms(&self) -> i64 {
        self.lookback_ms
    }

    /// Appends a sample. An equal timestamp with the same value (or a second staleness
    /// marker) is accepted and ignored.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError> {
        if !self.series.contains_key(labels) {
            if self.series.len() >= self.max_series {
                return Err(AppendError::TooManySeries { max_series: self.max_series });
            }
            self.series.insert(labels.clone(), Vec::new());
        }
        let samples = self.series.get_mut(labels).ok_or(AppendError::TooManySeries { max_series: 0 })?;
        if let Some(last) = samples.last() {
            if t < last.t {
                return Err(AppendError::OutOfOrder { series: labels.to_string(), t, last_t: last.t });
            }
            if t == last.t {
                return if last.v.to_bits() == v.to_bits() || (last.v == v) {
                    Ok(())
                } else {
                    Err(AppendError::Duplicate { series: labels.to_string(), t })
                };
            }
        }
        samples.push(Sample { t, v });
        Ok(())
    }

    /// Writes a staleness marker at `t` (a no-op if the series does not exist or is already
    /// stale).
    pub fn mark_stale(&mut self, labels: &Labels, t: i64) -> Result<(), AppendError> {
        match self.series.get(labels).and_then(|s| s.last()) {
            Some(last) if !is_stale(last.v) => self.append(labels, t, stale_nan()),
            _ => Ok(()),
        }
    }

    /// Every series, in label order.
    pub fn series(&self) -> impl Iterator<Item = (&Labels, &[Sample])> {
        self.series.iter().map(|(l, s)| (l, s.as_slice()))
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Drops samples older than `t` (retention), and series left empty.
    pub fn truncate_before(&mut self, t: i64) {
        for samples in self.series.values_mut() {
            let keep_from = samples.partition_point(|s| s.t < t);
            samples.drain(..keep_from);
        }
        self.series.retain(|_, s| !s.is_empty());
    }

    /// The series whose labels satisfy `accept`, in label order.
    pub fn select<'a>(
        &'a self,
        accept: impl Fn(&Labels) -> bool + 'a,
    ) -> impl Iterator<Item = (&'a Labels, &'a [Sample])> + 'a {
        self.series.iter().filter(move |(l, _)| accept(l)).map(|(l, s)| (l, s.as_slice()))
    }

    /// The value an instant selector sees at `t`: the latest sample in `[t - lookback, t]`,
    /// or none if there is none or it is a staleness marker.
    pub fn instant(&self, samples: &[Sample], t: i64) -> Option<Sample> {
        instant_value(samples, t, self.lookback_ms)
    }
}

/// See [`Store::instant`].
pub fn instant_value(samples: &[Sample], t: i64, lookback_ms: i64) -> Option<Sample> {
    let idx = samples.partition_point(|s| s.t <= t);
    let last = samples[..idx].last()?;
    (last.t >= t - lookback_ms && !is_stale(last.v)).then_some(*last)
}

/// The samples a range selector sees: those in `[from, to]`, staleness markers dropped.
pub fn range_values(samples: &[Sample], from: i64, to: i64) -> Vec<Sample> {
    let lo = samples.partition_point(|s| s.t < from);
    let hi = samples.partition_point(|s| s.t <= to);
    samples[lo..hi.max(lo)].iter().filter(|s| !is_stale(s.v)).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up() -> Labels {
        Labels::metric("up", &[("instance", "a")])
    }

    #[test]
    fn stale_marker_is_one_nan_only() {
        assert!(is_stale(stale_nan()));
        assert!(!is_stale(f64::NAN));
        assert!(stale_nan().is_nan());
    }

    #[test]
    fn lookback_is_five_minutes_closed_on_the_left() {
        let mut s = Store::default();
        s.append(&up(), 0, 1.0).expect("append");
        let samples = s.series().next().map(|(_, x)| x.to_vec()).unwrap_or_default();
        assert_eq!(s.instant(&samples, 300_000).map(|x| x.v), Some(1.0));
        assert_eq!(s.instant(&samples, 300_001), None);
        assert_eq!(s.instant(&samples, -1), None, "nothing before the first sample");
    }

    #[test]
    fn a_staleness_marker_ends_the_series_at_once() {
        let mut s = Store::default();
        s.append(&up(), 0, 1.0).expect("append");
        s.mark_stale(&up(), 15_000).expect("stale");
        s.mark_stale(&up(), 30_000).expect("second marker is a no-op");
        let samples: Vec<Sample> = s.series().flat_map(|(_, x)| x.to_vec()).collect();
        assert_eq!(samples.len(), 2);
        assert_eq!(s.instant(&samples, 14_999).map(|x| x.v), Some(1.0));
        assert_eq!(s.instant(&samples, 15_000), None);
        assert_eq!(s.instant(&samples, 60_000), None);
        // A range selector skips the marker but keeps the earlier sample.
        assert_eq!(range_values(&samples, 0, 60_000), vec![Sample { t: 0, v: 1.0 }]);
    }

    #[test]
    fn order_and_limits() {
        let mut s = Store::default().with_max_series(1);
        s.append(&up(), 10, 1.0).expect("append");
        assert!(matches!(s.append(&up(), 5, 1.0), Err(AppendError::OutOfOrder { .. })));
        assert!(s.append(&up(), 10, 1.0).is_ok());
        assert!(matches!(s.append(&up(), 10, 2.0), Err(AppendError::Duplicate { .. })));
        let other = Labels::metric("up", &[("instance", "b")]);
        assert!(matches!(s.append(&other, 10, 1.0), Err(AppendError::TooManySeries { .. })));
    }

    #[test]
    fn truncate_drops_old_samples_and_empty_series() {
        let mut s = Store::default();
        s.append(&up(), 0, 1.0).expect("append");
        s.append(&up(), 10, 1.0).expect("append");
        s.append(&Labels::metric("x", &[]), 0, 1.0).expect("append");
        s.truncate_before(5);
        assert_eq!(s.series_count(), 1);
        assert_eq!(s.series().next().map(|(_, x)| x.len()), Some(1));
    }
}
