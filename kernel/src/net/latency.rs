//! One-way message latency distributions.
//!
//! Constant, uniform, normal (truncated at 0 by redrawing), lognormal (given by its median and
//! log-space sigma), exponential with a minimum (`min + Exp` with the given overall mean), and
//! an optional heavy tail on any of them: a fraction of messages gets an extra delay drawn from
//! a Pareto distribution, as FoundationDB's simulator "buggifies" latency. The scenario form is
//! a table such as `{ dist = "uniform", min = "1ms", max = "10ms" }`.

use rand::RngExt;
use rand_distr::{Distribution, Exp, LogNormal, Normal, Pareto};
use serde::Deserialize;

use crate::{SimDuration, SimRng, nanos_from_f64};

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DistKind {
    Constant,
    Uniform,
    Normal,
    Lognormal,
    Exponential,
}

/// The scenario form; `build` checks that the fields fit the kind.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(
    deny_unknown_fields,
    expecting = "a latency table such as { dist = \"constant\", value = \"5ms\" } or { dist = \"uniform\", min = \"1ms\", max = \"10ms\" }"
)]
pub struct LatencySpec {
    pub dist: DistKind,
    pub value: Option<SimDuration>,
    pub min: Option<SimDuration>,
    pub max: Option<SimDuration>,
    pub mean: Option<SimDuration>,
    pub stddev: Option<SimDuration>,
    pub median: Option<SimDuration>,
    pub sigma: Option<f64>,
    pub tail: Option<TailSpec>,
}

/// A fraction of messages delayed by an extra Pareto(scale, alpha) amount.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TailSpec {
    pub fraction: f64,
    pub scale: SimDuration,
    pub alpha: f64,
}

#[derive(Clone, Debug)]
enum Kind {
    Constant(u64),
    Uniform(u64, u64),
    Normal(Normal<f64>),
    LogNormal(LogNormal<f64>),
    Exponential { min: f64, exp: Exp<f64> },
}

/// A ready-to-sample latency distribution.
#[derive(Clone, Debug)]
pub struct Latency {
    kind: Kind,
    tail: Option<(f64, Pareto<f64>)>,
}

/// A field error: (field name relative to the latency table, message).
pub type FieldError = (&'static str, String);

fn need<T: Copy>(v: Option<T>, field: &'static str, kind: &str) -> Result<T, FieldError> {
    v.ok_or_else(|| (field, format!("required for dist = \"{kind}\"")))
}

impl LatencySpec {
    pub fn constant(d: SimDuration) -> Self {
        LatencySpec {
            dist: DistKind::Constant,
            value: Some(d),
            min: None,
            max: None,
            mean: None,
            stddev: None,
            median: None,
            sigma: None,
            tail: None,
        }
    }

    pub fn uniform(min: SimDuration, max: SimDuration) -> Self {
        LatencySpec { dist: DistKind::Uniform, value: None, min: Some(min), max: Some(max), ..Self::constant(min) }
    }

    /// Checks the fields for this kind and builds the sampler.
    pub fn build(&self) -> Result<Latency, FieldError> {
        let allowed: &[&str] = match self.dist {
            DistKind::Constant => &["value"],
            DistKind::Uniform => &["min", "max"],
            DistKind::Normal => &["mean", "stddev"],
            DistKind::Lognormal => &["median", "sigma"],
            DistKind::Exponential => &["min", "mean"],
        };
        let present = [
            ("value", self.value.is_some()),
            ("min", self.min.is_some()),
            ("max", self.max.is_some()),
            ("mean", self.mean.is_some()),
            ("stddev", self.stddev.is_some()),
            ("median", self.median.is_some()),
            ("sigma", self.sigma.is_some()),
        ];
        for (field, is_set) in present {
            if is_set && !allowed.contains(&field) {
                return Err((
                    field,
                    format!("not used by dist = \"{}\" (it takes {})", self.kind_name(), allowed.join(", ")),
                ));
            }
        }
        let kind = match self.dist {
            DistKind::Constant => Kind::Constant(need(self.value, "value", "constant")?.0),
            DistKind::Uniform => {
                let (lo, hi) = (need(self.min, "min", "uniform")?.0, need(self.max, "max", "uniform")?.0);
                if lo > hi {
                    return Err(("max", "must be at least min".into()));
                }
                Kind::Uniform(lo, hi)
            }
            DistKind::Normal => {
                let mean = need(self.mean, "mean", "normal")?.0 as f64;
                let sd = need(self.stddev, "stddev", "normal")?.0 as f64;
                Kind::Normal(Normal::new(mean, sd).map_err(|e| ("stddev", e.to_string()))?)
            }
            DistKind::Lognormal => {
                let median = need(self.median, "median", "lognormal")?.0 as f64;
                let sigma = need(self.sigma, "sigma", "lognormal")?;
                if median <= 0.0 {
                    return Err(("median", "must be greater than 0".into()));
                }
                if !(0.0..=10.0).contains(&sigma) {
                    return Err(("sigma", "expected a number in [0, 10]".into()));
                }
                Kind::LogNormal(LogNormal::new(median.ln(), sigma).map_err(|e| ("sigma", e.to_string()))?)
            }
            DistKind::Exponential => {
                let min = need(self.min, "min", "exponential")?.0 as f64;
                let mean = need(self.mean, "mean", "exponential")?.0 as f64;
                if mean <= min {
                    return Err(("mean", "must be greater than min".into()));
                }
                let exp = Exp::new(1.0 / (mean - min)).map_err(|e| ("mean", e.to_string()))?;
                Kind::Exponential { min, exp }
            }
        };
        let tail = match &self.tail {
            None => None,
            Some(t) => {
                if !(0.0..=1.0).contains(&t.fraction) {
                    return Err(("tail.fraction", "expected a fraction in [0, 1]".into()));
                }
                if !(t.alpha > 0.0 && t.alpha.is_finite()) {
                    return Err(("tail.alpha", "expected a positive number".into()));
                }
                if t.scale.0 == 0 {
                    return Err(("tail.scale", "must be greater than 0".into()));
                }
                let p = Pareto::new(t.scale.0 as f64, t.alpha).map_err(|e| ("tail.alpha", e.to_string()))?;
                Some((t.fraction, p))
            }
        };
        Ok(Latency { kind, tail })
    }

    fn kind_name(&self) -> &'static str {
        match self.dist {
            DistKind::Constant => "constant",
            DistKind::Uniform => "uniform",
            DistKind::Normal => "normal",
            DistKind::Lognormal => "lognormal",
            DistKind::Exponential => "exponential",
        }
    }

    /// An upper bound on a single draw, if the distribution has one (used by invariants that
    /// only hold when latency is bounded).
    pub fn max_bound(&self) -> Option<SimDuration> {
        if self.tail.as_ref().is_some_and(|t| t.fraction > 0.0) {
            return None;
        }
        match self.dist {
            DistKind::Constant => self.value,
            DistKind::Uniform => self.max,
            _ => None,
        }
    }

    /// A lower bound on a single draw, if the distribution has a positive one (a tail only
    /// adds): the constant, or the uniform's minimum.
    pub fn min_bound(&self) -> Option<SimDuration> {
        match self.dist {
            DistKind::Constant => self.value,
            DistKind::Uniform => self.min,
            _ => None,
        }
    }
}

impl Latency {
    /// Whether every draw is 0 (a constant 0 without a tail): callers may skip the delay.
    pub fn is_zero(&self) -> bool {
        matches!(self.kind, Kind::Constant(0)) && self.tail.as_ref().is_none_or(|(f, _)| *f == 0.0)
    }

    /// One draw. Uses the generator a fixed number of times per kind, so streams stay aligned.
    #[inline]
    pub fn sample(&self, rng: &mut SimRng) -> SimDuration {
        let base = match &self.kind {
            Kind::Constant(v) => *v,
            Kind::Uniform(lo, hi) => {
                if lo == hi {
                    *lo
                } else {
                    rng.random_range(*lo..=*hi)
                }
            }
            Kind::Normal(n) => truncated_normal(n, rng),
            Kind::LogNormal(l) => nanos_from_f64(l.sample(rng)),
            Kind::Exponential { min, exp } => nanos_from_f64(min + exp.sample(rng)),
        };
        let extra = match &self.tail {
            Some((fraction, pareto)) if rng.random::<f64>() < *fraction => nanos_from_f64(pareto.sample(rng)),
            _ => 0,
        };
        SimDuration(base.saturating_add(extra))
    }
}

/// Redraws negative values (a proper truncation, no mass piled at 0); after 64 tries gives 0.
fn truncated_normal(n: &Normal<f64>, rng: &mut SimRng) -> u64 {
    for _ in 0..64 {
        let x = n.sample(rng);
        if x >= 0.0 {
            return nanos_from_f64(x);
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    fn ms(x: u64) -> SimDuration {
        SimDuration::from_millis(x)
    }

    /// Sample mean and variance (in ms and ms^2) of `n` draws.
    fn moments(spec: &LatencySpec, n: usize) -> (f64, f64) {
        let lat = spec.build().expect("valid spec");
        let mut rng = stream(7, "latency-test");
        let xs: Vec<f64> = (0..n).map(|_| lat.sample(&mut rng).as_secs_f64() * 1e3).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
        (mean, var)
    }

    /// Tolerance: with n = 400k draws the standard error of the mean is sd/632 and that of the
    /// variance about var*sqrt((kurtosis-1)/n), well under 1 % for these light-tailed cases and
    /// about 2-3 % for the lognormal and Pareto tail. We allow 2 % on means and 5 % on variances
    /// (8 % where the fourth moment is large), i.e. several standard errors.
    fn check(spec: LatencySpec, mean: f64, var: f64, var_tol: f64) {
        let (m, v) = moments(&spec, 400_000);
        assert!((m - mean).abs() <= 0.02 * mean.max(1e-9), "{spec:?}: mean {m} vs theory {mean}");
        if var == 0.0 {
            assert!(v < 1e-12, "{spec:?}: variance {v} should be 0");
        } else {
            assert!((v - var).abs() <= var_tol * var, "{spec:?}: variance {v} vs theory {var}");
        }
    }

    #[test]
    fn constant_and_uniform() {
        check(LatencySpec::constant(ms(5)), 5.0, 0.0, 0.0);
        check(LatencySpec::uniform(ms(1), ms(10)), 5.5, 81.0 / 12.0, 0.05);
    }

    #[test]
    fn normal_far_from_zero() {
        // mean = 10 sd: truncation removes a 1e-23 share, negligible.
        let spec = LatencySpec {
            dist: DistKind::Normal,
            mean: Some(ms(20)),
            stddev: Some(ms(2)),
            ..LatencySpec::constant(ms(0))
        };
        let spec = LatencySpec { value: None, ..spec };
        check(spec, 20.0, 4.0, 0.05);
    }

    #[test]
    fn lognormal_by_median_and_sigma() {
        let (median, s) = (5.0_f64, 0.5_f64);
        let spec = LatencySpec {
            dist: DistKind::Lognormal,
            value: None,
            median: Some(ms(5)),
            sigma: Some(s),
            ..LatencySpec::constant(ms(0))
        };
        let mean = median * (s * s / 2.0).exp();
        let var = ((s * s).exp() - 1.0) * median * median * (s * s).exp();
        check(spec, mean, var, 0.08);
    }

    #[test]
    fn exponential_with_minimum() {
        let spec = LatencySpec {
            dist: DistKind::Exponential,
            value: None,
            min: Some(ms(1)),
            mean: Some(ms(5)),
            ..LatencySpec::constant(ms(0))
        };
        check(spec, 5.0, 16.0, 0.05);
    }

    #[test]
    fn pareto_tail_mixture() {
        // 5 % of messages get Pareto(scale 20 ms, alpha 5) extra: E[T] = a xm/(a-1) = 25 ms,
        // E[T^2] = a xm^2/(a-2) = 2000/3 ms^2. Mixture on a constant 2 ms base:
        // mean = 2 + f E[T]; var = f E[T^2] - (f E[T])^2.
        let (f, a, xm) = (0.05, 5.0, 20.0);
        let mut spec = LatencySpec::constant(ms(2));
        spec.tail = Some(TailSpec { fraction: f, scale: ms(20), alpha: a });
        let et = a * xm / (a - 1.0);
        let et2 = a * xm * xm / (a - 2.0);
        check(spec, 2.0 + f * et, f * et2 - (f * et).powi(2), 0.08);
    }

    #[test]
    fn bad_fields_are_named() {
        let mut spec = LatencySpec::uniform(ms(10), ms(1));
        assert_eq!(spec.build().err().map(|e| e.0), Some("max"));
        spec.value = Some(ms(1));
        assert_eq!(spec.build().err().map(|e| e.0), Some("value"));
        let spec = LatencySpec { dist: DistKind::Normal, value: None, ..LatencySpec::constant(ms(0)) };
        assert_eq!(spec.build().err(), Some(("mean", "required for dist = \"normal\"".to_string())));
    }
}
