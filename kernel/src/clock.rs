//! Per-node local clocks with skew and drift.
//!
//! Actors read local time and set timers in local durations; the world converts. A clock is
//! an affine map of true time: `local(t) = anchor_local + (t - anchor_true) * (1 + ppm/10^6)`.
//! A skew fault re-anchors it so that local time becomes `true time + offset` from that
//! instant (a step, forwards or backwards, like an NTP correction or a bad manual set) and
//! runs fast or slow by `drift_ppm` afterwards. Local time never goes below zero.
//!
//! Every node's oscillator may also drift on its own ([`Clocks`]): a seeded rate within
//! `±max_drift_ppm` from the start (crystal oscillators are specified to tens of ppm), and
//! each timer fires late by a seeded scheduling jitter in `[0, timer_jitter)` (a thread is
//! woken some microseconds after its deadline: Linux's default timer slack alone is 50 µs).
//! Both draw from a hash of the seed, the node and the timer, not from any random stream, so
//! they perturb nothing else. A skew fault's drift comes on top of the node's own.

use super::time::{SimDuration, SimTime};

const PPM: i128 = 1_000_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalClock {
    anchor_true: u64,
    /// Local reading at `anchor_true` (signed: a large backwards step may go below zero).
    anchor_local: i64,
    drift_ppm: i64,
}

impl LocalClock {
    /// The node's local reading at true time `t`.
    #[inline]
    pub fn local(&self, t: SimTime) -> SimTime {
        // `elapsed * (1 + ppm / 10^6)`, floored: in i64 (a hardware multiply; the division by
        // a constant becomes one) whenever `elapsed * ppm` fits, which covers every scenario
        // (30 days at 1,000 ppm is 2.6e18); i128 otherwise. Every node's clock drifts by
        // default, so this is on the path of every event.
        let elapsed = i128::from(t.0) - i128::from(self.anchor_true);
        let scaled = match (i64::try_from(elapsed), self.drift_ppm) {
            (_, 0) => elapsed,
            (Ok(e), ppm) if e >= 0 => match e.checked_mul(ppm) {
                Some(x) => i128::from(e) + i128::from(x.div_euclid(PPM as i64)),
                None => elapsed * (PPM + i128::from(ppm)) / PPM,
            },
            _ => elapsed * (PPM + i128::from(self.drift_ppm)) / PPM,
        };
        let local = i128::from(self.anchor_local) + scaled;
        SimTime(local.clamp(0, i128::from(u64::MAX)) as u64)
    }

    /// The true duration that `local` of this clock's time takes (rounded up, at least 1 ns
    /// for a non-zero delay so a timer never fires before it was set).
    pub fn true_delay(&self, local: SimDuration) -> SimDuration {
        if self.drift_ppm == 0 || local.0 == 0 {
            return local;
        }
        let rate = PPM + i128::from(self.drift_ppm);
        // In u64 (one hardware division) when `local * 10^6` fits: timers up to about 5 h.
        if let (Some(scaled), Ok(r)) = (local.0.checked_mul(PPM as u64), u64::try_from(rate))
            && r > 0
            && let Some(num) = scaled.checked_add(r - 1)
        {
            return SimDuration((num / r).max(1));
        }
        let d = (i128::from(local.0) * PPM + rate - 1) / rate;
        SimDuration(d.clamp(1, i128::from(u64::MAX)) as u64)
    }

    /// From true time `now` on, local time reads `now + offset` and drifts by `drift_ppm`
    /// more than the oscillator's own `base_ppm`.
    pub fn set_skew(&mut self, now: SimTime, offset_ns: i64, drift_ppm: i64, base_ppm: i64) {
        self.anchor_true = now.0;
        self.anchor_local = i64::try_from(now.0).unwrap_or(i64::MAX).saturating_add(offset_ns);
        self.drift_ppm = base_ppm.saturating_add(drift_ppm).max(-PPM as i64 + 1);
    }

    /// A clock that reads true time at 0 and drifts by `ppm`.
    pub fn drifting(ppm: i64) -> LocalClock {
        LocalClock { anchor_true: 0, anchor_local: 0, drift_ppm: ppm }
    }
}

/// `[clocks]` of a scenario: the bound of every oscillator's drift and of every timer's
/// scheduling jitter. Defaults: 50 ppm (a common crystal tolerance) and 100 µs (Linux's 50 µs
/// timer slack plus a thread's wake-up); `0` and `"0s"` give perfect clocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockSpec {
    pub max_drift_ppm: u32,
    pub timer_jitter: SimDuration,
}

impl Default for ClockSpec {
    fn default() -> Self {
        ClockSpec { max_drift_ppm: 50, timer_jitter: SimDuration::from_micros(100) }
    }
}

impl ClockSpec {
    /// The clocks of a run with `seed`.
    pub fn clocks(&self, seed: u64) -> Clocks {
        Clocks { seed, max_drift_ppm: self.max_drift_ppm, timer_jitter: self.timer_jitter }
    }

    /// Bounds: at most 1,000 ppm (0.1 %) and 1 s of jitter.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.max_drift_ppm > 1_000 {
            return Err(("max_drift_ppm".into(), format!("expected at most 1000 ppm, got {}", self.max_drift_ppm)));
        }
        if self.timer_jitter > SimDuration::from_secs(1) {
            return Err(("timer_jitter".into(), format!("expected at most 1s, got {}", self.timer_jitter)));
        }
        Ok(())
    }
}

/// The imperfections of every node's clock (see the module doc); `Clocks::default()` is
/// perfect clocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clocks {
    pub seed: u64,
    pub max_drift_ppm: u32,
    pub timer_jitter: SimDuration,
}

/// SplitMix64's finaliser: a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Clocks {
    /// Node `node`'s own drift, uniform in `[-max_drift_ppm, max_drift_ppm]`.
    pub fn drift_ppm(&self, node: u32) -> i64 {
        if self.max_drift_ppm == 0 {
            return 0;
        }
        let span = 2 * u64::from(self.max_drift_ppm) + 1;
        (mix(self.seed ^ mix(u64::from(node))) % span) as i64 - i64::from(self.max_drift_ppm)
    }

    /// How late timer `timer` of `node` fires, uniform in `[0, timer_jitter)`.
    #[inline]
    pub fn jitter(&self, node: u32, timer: u32) -> SimDuration {
        if self.timer_jitter.0 == 0 {
            return SimDuration::ZERO;
        }
        let h = mix(self.seed.rotate_left(17) ^ (u64::from(node) << 32 | u64::from(timer)));
        SimDuration(h % self.timer_jitter.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_clock_is_true_time() {
        let c = LocalClock::default();
        assert_eq!(c.local(SimTime(12_345)), SimTime(12_345));
        assert_eq!(c.true_delay(SimDuration(500)), SimDuration(500));
    }

    #[test]
    fn offset_steps_and_drift_stretches() {
        let mut c = LocalClock::default();
        let s = SimDuration::from_secs(1).0;
        c.set_skew(SimTime(10 * s), 2 * s as i64, 0, 0);
        assert_eq!(c.local(SimTime(10 * s)), SimTime(12 * s));
        c.set_skew(SimTime(20 * s), -(5 * s as i64), 100_000, 0); // 10 % fast, 5 s behind
        assert_eq!(c.local(SimTime(20 * s)), SimTime(15 * s));
        assert_eq!(c.local(SimTime(30 * s)), SimTime(26 * s));
        // A 11 s local timer takes 10 s of true time on a 10 %-fast clock.
        assert_eq!(c.true_delay(SimDuration(11 * s)), SimDuration(10 * s));
    }

    #[test]
    fn drifts_and_jitters_stay_in_their_bounds_and_spread() {
        let c = Clocks { seed: 7, max_drift_ppm: 50, timer_jitter: SimDuration::from_micros(100) };
        let drifts: Vec<i64> = (0..1000).map(|n| c.drift_ppm(n)).collect();
        assert!(drifts.iter().all(|d| (-50..=50).contains(d)), "{drifts:?}");
        assert!(drifts.iter().any(|d| *d < -40) && drifts.iter().any(|d| *d > 40), "spread over the range");
        let jitters: Vec<u64> = (0..1000).map(|t| c.jitter(3, t).0).collect();
        assert!(jitters.iter().all(|j| *j < 100_000));
        let mean = jitters.iter().sum::<u64>() as f64 / 1000.0;
        assert!((mean - 50_000.0).abs() < 5_000.0, "uniform: mean {mean}");
        assert_eq!(Clocks::default().drift_ppm(3), 0);
        assert_eq!(Clocks::default().jitter(3, 4), SimDuration::ZERO);
        // A 50 ppm fast clock: a 1 s local timer takes 1 s / 1.00005 of true time.
        assert_eq!(LocalClock::drifting(50).true_delay(SimDuration::from_secs(1)), SimDuration(999_950_003));
    }

    /// The fast integer paths give what the exact i128 formulas give.
    #[test]
    fn fast_paths_match_the_exact_formulas() {
        for ppm in [-1_000i64, -50, -1, 1, 37, 50, 1_000, 250_000] {
            let c = LocalClock::drifting(ppm);
            for t in [0u64, 1, 999_999, 1_000_001, 5_000_000_017, 86_400_000_000_123, 2_592_000_000_000_000] {
                let exact = (i128::from(t) * (PPM + i128::from(ppm)) / PPM).clamp(0, i128::from(u64::MAX)) as u64;
                assert_eq!(c.local(SimTime(t)), SimTime(exact), "local, ppm {ppm}, t {t}");
                if t > 0 {
                    let rate = PPM + i128::from(ppm);
                    let exact = ((i128::from(t) * PPM + rate - 1) / rate).clamp(1, i128::from(u64::MAX)) as u64;
                    assert_eq!(c.true_delay(SimDuration(t)), SimDuration(exact), "delay, ppm {ppm}, t {t}");
                }
            }
        }
    }

    #[test]
    fn local_time_is_clamped_at_zero() {
        let mut c = LocalClock::default();
        c.set_skew(SimTime(1_000), -1_000_000, 0, 0);
        assert_eq!(c.local(SimTime(2_000)), SimTime(0));
    }
}
