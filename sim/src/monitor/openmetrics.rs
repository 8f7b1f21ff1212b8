//! Export of a store as OpenMetrics text (`metrics.om`), for `promtool tsdb
//! create-blocks-from openmetrics` and from there a real Prometheus and Grafana.
//!
//! Model: the OpenMetrics 1.0 text format. Samples are grouped by metric family (metric name,
//! families in name order, series in label order, samples in time order), each family
//! declared `unknown` (regsim does not know which series are counters; an `unknown` family may
//! carry any valid name, `_total` included), and the file ends with `# EOF`. Timestamps are
//! seconds with millisecond precision from a fixed epoch, [`EPOCH_S`], so the file is a pure
//! function of the run. Staleness markers are left out: the text format has only one NaN, and
//! a plain NaN would read back as a value, not as the end of a series.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::labels::{Labels, METRIC_NAME};
use super::store::{Sample, Store, is_stale};

/// Virtual time 0 in the export: 2024-01-01T00:00:00Z.
pub const EPOCH_S: i64 = 1_704_067_200;

/// Bound on the samples one export writes (about 60 bytes each).
pub const MAX_SAMPLES: usize = 50_000_000;

fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn timestamp(t_ms: i64) -> String {
    let ms = EPOCH_S * 1000 + t_ms;
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn series_text(labels: &Labels) -> String {
    let name = labels.name().unwrap_or_default();
    let pairs: Vec<String> =
        labels.iter().filter(|(k, _)| *k != METRIC_NAME).map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    if pairs.is_empty() { name.to_string() } else { format!("{name}{{{}}}", pairs.join(",")) }
}

/// The store as OpenMetrics text, or an error if it holds more than [`MAX_SAMPLES`].
pub fn export(store: &Store) -> Result<String, String> {
    let mut families: BTreeMap<&str, Vec<(&Labels, &[Sample])>> = BTreeMap::new();
    let mut count = 0usize;
    for (labels, samples) in store.series() {
        let Some(name) = labels.name() else { continue };
        count += samples.len();
        families.entry(name).or_default().push((labels, samples));
    }
    if count > MAX_SAMPLES {
        return Err(format!("{count} samples, more than the {MAX_SAMPLES} an export writes"));
    }
    let mut out = String::with_capacity(count * 64);
    for (name, series) in families {
        let _ = writeln!(out, "# TYPE {name} unknown");
        for (labels, samples) in series {
            let s = series_text(labels);
            for x in samples.iter().filter(|x| !is_stale(x.v)) {
                let _ = writeln!(out, "{s} {} {}", value(x.v), timestamp(x.t));
            }
        }
    }
    out.push_str("# EOF\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_series_and_timestamps() {
        let mut s = Store::default();
        let up = Labels::metric("up", &[("instance", "n1"), ("job", "api")]);
        s.append(&up, 0, 1.0).expect("append");
        s.append(&up, 15_250, 0.0).expect("append");
        s.mark_stale(&up, 30_000).expect("stale");
        s.append(&Labels::metric("a:b", &[("x", "q\"\\\n")]), 1, 0.5).expect("append");
        let text = export(&s).expect("export");
        assert_eq!(
            text,
            "# TYPE a:b unknown\na:b{x=\"q\\\"\\\\\\n\"} 0.5 1704067200.001\n\
             # TYPE up unknown\nup{instance=\"n1\",job=\"api\"} 1 1704067200.000\n\
             up{instance=\"n1\",job=\"api\"} 0 1704067215.250\n# EOF\n"
        );
    }
}
