//! Distribution summaries: count, mean, min, nearest-rank percentiles, max.

use serde::Serialize;

/// `{count, mean_s, min_s, p50_s, p90_s, p99_s, max_s}` of a sample in seconds. Percentiles
/// use the nearest-rank method (the smallest sample with at least p % of samples at or below
/// it), so every reported value is an observed one. Empty samples give `count = 0` and zeros in
/// memory, and `null` for every statistic in JSON: a 0.0 would read as "detected at once" and
/// would be averaged into sweeps (which count a `null` as missing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub mean_s: f64,
    pub min_s: f64,
    pub p50_s: f64,
    pub p90_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
}

impl Serialize for Summary {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let v = |x: f64| (self.count > 0).then_some(x);
        let mut st = ser.serialize_struct("Summary", 7)?;
        st.serialize_field("count", &self.count)?;
        st.serialize_field("mean_s", &v(self.mean_s))?;
        st.serialize_field("min_s", &v(self.min_s))?;
        st.serialize_field("p50_s", &v(self.p50_s))?;
        st.serialize_field("p90_s", &v(self.p90_s))?;
        st.serialize_field("p99_s", &v(self.p99_s))?;
        st.serialize_field("max_s", &v(self.max_s))?;
        st.end()
    }
}

/// Rounds to the nanosecond so reports do not carry float noise.
pub fn round_ns(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

impl Summary {
    pub fn of(samples: &[f64]) -> Summary {
        if samples.is_empty() {
            return Summary::default();
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let rank = |p: f64| v[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
        Summary {
            count: n as u64,
            mean_s: round_ns(v.iter().sum::<f64>() / n as f64),
            min_s: v[0],
            p50_s: rank(50.0),
            p90_s: rank(90.0),
            p99_s: rank(99.0),
            max_s: v[n - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&xs);
        assert_eq!((s.count, s.min_s, s.p50_s, s.p90_s, s.p99_s, s.max_s), (100, 1.0, 50.0, 90.0, 99.0, 100.0));
        assert_eq!(s.mean_s, 50.5);
        let one = Summary::of(&[3.0]);
        assert_eq!((one.p50_s, one.p99_s), (3.0, 3.0));
        assert_eq!(Summary::of(&[]).count, 0);
    }

    #[test]
    fn empty_sample_serializes_nulls() {
        let json = serde_json::to_string(&Summary::of(&[])).expect("serializes");
        assert_eq!(
            json,
            r#"{"count":0,"mean_s":null,"min_s":null,"p50_s":null,"p90_s":null,"p99_s":null,"max_s":null}"#
        );
        let one = serde_json::to_string(&Summary::of(&[1.5])).expect("serializes");
        assert!(one.contains(r#""p99_s":1.5"#), "{one}");
    }
}
