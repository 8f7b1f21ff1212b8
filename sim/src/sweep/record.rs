//! What one run of a sweep leaves behind: seed, digest, outcome, failed invariants and its
//! metric values. The same record goes into shard files and `sweep.json`.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    /// Run index in the sweep (point-major).
    pub run: u64,
    pub point: u64,
    pub seed: u64,
    /// Hex digest of the run's events ("" when the run could not start).
    pub digest: String,
    /// `reached_end`, `no_events_left`, `event_limit`, or `error`.
    pub outcome: String,
    pub events: u64,
    /// `name at T s: detail` per failed invariant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_invariants: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub metrics: Metrics,
    /// Samples behind each duration statistic among `metrics` ([`super::metric::samples`]).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub samples: std::collections::BTreeMap<String, u64>,
}

impl RunRecord {
    /// Failed an invariant, hit the event limit or could not run: listed with its repro.
    pub fn failed(&self) -> bool {
        !self.failed_invariants.is_empty() || self.error.is_some() || self.hit_limit()
    }

    pub fn hit_limit(&self) -> bool {
        self.outcome == "event_limit"
    }

    /// Why the run is listed as failed.
    pub fn reason(&self) -> String {
        if let Some(e) = &self.error {
            return format!("error: {e}");
        }
        let mut parts: Vec<String> = self.failed_invariants.iter().map(|i| format!("invariant {i}")).collect();
        if self.hit_limit() {
            parts.push("stopped at limits.max_events before the end".into());
        }
        parts.join("; ")
    }

    pub fn value(&self, metric: &str) -> Option<f64> {
        self.metrics.0.iter().find(|(m, _)| m == metric).and_then(|(_, v)| *v)
    }
}

/// Metric values in order (a JSON object whose key order is kept; `null` = missing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics(pub Vec<(String, Option<f64>)>);

impl Serialize for Metrics {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Metrics {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Metrics;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of metric values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Metrics, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Option<f64>>()? {
                    out.push((k, v));
                }
                Ok(Metrics(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Serializes (key, value) pairs as a JSON object in the given order.
pub struct Ordered<'a, T>(pub &'a [(String, T)]);

impl<T: Serialize> Serialize for Ordered<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_keep_their_order_through_json() {
        let m = Metrics(vec![("z".into(), Some(1.5)), ("a".into(), None)]);
        let text = serde_json::to_string(&m).expect("serializes");
        assert_eq!(text, r#"{"z":1.5,"a":null}"#);
        let back: Metrics = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, m);
    }
}
