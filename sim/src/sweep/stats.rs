//! Aggregates of one metric over the runs (seeds) of one sweep point.
//!
//! Mean, sample standard deviation (n - 1), min, max, and a two-sided 95 % confidence
//! interval of the mean from Student's t: mean ± t(0.975, n - 1) · sd / √n. The seeds of a
//! point are independent replications, so the interval is exact for normally distributed
//! values and a fair approximation for the means of a few seeds otherwise; with n < 2 there is
//! no interval. t comes from a table for 1..=30 degrees of freedom and from the Cornish-Fisher
//! expansion above (error < 1e-5 there). Sums run in run order, so the result is the same
//! however the runs were scheduled.

use serde::Serialize;

/// One metric at one point.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Runs with a value.
    pub n: u64,
    /// Runs of the point without a value (absent from the report, or not a number).
    pub missing: u64,
    pub mean: Option<f64>,
    pub sd: Option<f64>,
    pub ci95_low: Option<f64>,
    pub ci95_high: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Samples behind the values (a duration statistic's `count`, summed over the runs with
    /// a value); none for other metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// Fewer samples per run than the statistic needs ([`super::metric::samples_needed`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub thin: bool,
}

/// t(0.975, df) for df = 1..=30.
const T975: [f64; 30] = [
    12.706_204_7,
    4.302_652_7,
    3.182_446_3,
    2.776_445_1,
    2.570_581_8,
    2.446_911_9,
    2.364_624_3,
    2.306_004_1,
    2.262_157_2,
    2.228_138_9,
    2.200_985_2,
    2.178_812_8,
    2.160_368_7,
    2.144_786_7,
    2.131_449_5,
    2.119_905_3,
    2.109_815_5,
    2.100_922_0,
    2.093_024_1,
    2.085_963_4,
    2.079_613_8,
    2.073_873_1,
    2.068_657_6,
    2.063_898_6,
    2.059_538_6,
    2.055_529_4,
    2.051_830_5,
    2.048_407_1,
    2.045_229_6,
    2.042_272_5,
];

/// The 0.975 quantile of Student's t with `df` >= 1 degrees of freedom.
pub fn t975(df: u64) -> f64 {
    assert!(df >= 1, "t975 needs at least one degree of freedom");
    if let Some(t) = T975.get(df as usize - 1) {
        return *t;
    }
    let z: f64 = 1.959_963_984_540_054;
    let v = df as f64;
    let (z3, z5, z7, z9) = (z.powi(3), z.powi(5), z.powi(7), z.powi(9));
    let g1 = (z3 + z) / 4.0;
    let g2 = (5.0 * z5 + 16.0 * z3 + 3.0 * z) / 96.0;
    let g3 = (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / 384.0;
    let g4 = (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z) / 92_160.0;
    z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v)
}

/// Summarizes values in run order (`None`: missing).
pub fn summarize(values: &[Option<f64>]) -> Summary {
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let n = present.len() as u64;
    let missing = values.len() as u64 - n;
    if n == 0 {
        return Summary {
            n,
            missing,
            mean: None,
            sd: None,
            ci95_low: None,
            ci95_high: None,
            min: None,
            max: None,
            samples: None,
            thin: false,
        };
    }
    let mean = present.iter().sum::<f64>() / n as f64;
    let min = present.iter().copied().fold(f64::INFINITY, f64::min);
    let max = present.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (sd, lo, hi) = if n >= 2 {
        let var = present.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
        let sd = var.sqrt();
        let half = t975(n - 1) * sd / (n as f64).sqrt();
        (Some(sd), Some(mean - half), Some(mean + half))
    } else {
        (None, None, None)
    };
    Summary {
        n,
        missing,
        mean: Some(mean),
        sd,
        ci95_low: lo,
        ci95_high: hi,
        min: Some(min),
        max: Some(max),
        samples: None,
        thin: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        assert_eq!(t975(1), 12.706_204_7);
        assert_eq!(t975(30), 2.042_272_5);
        // Beyond the table: the expansion, against published values.
        for (df, t) in
            [(31, 2.039_513_4), (40, 2.021_075_4), (60, 2.000_297_8), (120, 1.979_930_4), (1000, 1.962_339_3)]
        {
            assert!((t975(df) - t).abs() < 1e-5, "df {df}: {} vs {t}", t975(df));
        }
    }

    #[test]
    fn summary_of_known_values() {
        let s = summarize(&[Some(1.0), None, Some(2.0), Some(3.0)]);
        assert_eq!((s.n, s.missing), (3, 1));
        assert_eq!(s.mean, Some(2.0));
        assert_eq!(s.sd, Some(1.0));
        let half = 4.302_652_7 / 3f64.sqrt();
        assert_eq!(s.ci95_low, Some(2.0 - half));
        assert_eq!(s.ci95_high, Some(2.0 + half));
        assert_eq!((s.min, s.max), (Some(1.0), Some(3.0)));
    }

    #[test]
    fn one_value_has_no_interval_and_none_has_nothing() {
        let s = summarize(&[Some(5.0)]);
        assert_eq!((s.mean, s.sd, s.ci95_low), (Some(5.0), None, None));
        let s = summarize(&[None, None]);
        assert_eq!((s.n, s.missing, s.mean, s.min), (0, 2, None, None));
    }
}
