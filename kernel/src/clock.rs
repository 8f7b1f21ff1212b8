//! Per-node local clocks with skew and drift.
//!
//! Actors read local time and set timers in local durations; the world converts. A clock is
//! an affine map of true time: `local(t) = anchor_local + (t - anchor_true) * (1 + ppm/10^6)`.
//! A skew fault re-anchors it so that local time becomes `true time + offset` from that
//! instant (a step, forwards or backwards, like an NTP correction or a bad manual set) and
//! runs fast or slow by `drift_ppm` afterwards. Local time never goes below zero.

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
        let elapsed = i128::from(t.0) - i128::from(self.anchor_true);
        let scaled = if self.drift_ppm == 0 { elapsed } else { elapsed * (PPM + i128::from(self.drift_ppm)) / PPM };
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
        let d = (i128::from(local.0) * PPM + rate - 1) / rate;
        SimDuration(d.clamp(1, i128::from(u64::MAX)) as u64)
    }

    /// From true time `now` on, local time reads `now + offset` and drifts by `drift_ppm`.
    pub fn set_skew(&mut self, now: SimTime, offset_ns: i64, drift_ppm: i64) {
        self.anchor_true = now.0;
        self.anchor_local = i64::try_from(now.0).unwrap_or(i64::MAX).saturating_add(offset_ns);
        self.drift_ppm = drift_ppm;
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
        c.set_skew(SimTime(10 * s), 2 * s as i64, 0);
        assert_eq!(c.local(SimTime(10 * s)), SimTime(12 * s));
        c.set_skew(SimTime(20 * s), -(5 * s as i64), 100_000); // 10 % fast, 5 s behind
        assert_eq!(c.local(SimTime(20 * s)), SimTime(15 * s));
        assert_eq!(c.local(SimTime(30 * s)), SimTime(26 * s));
        // A 11 s local timer takes 10 s of true time on a 10 %-fast clock.
        assert_eq!(c.true_delay(SimDuration(11 * s)), SimDuration(10 * s));
    }

    #[test]
    fn local_time_is_clamped_at_zero() {
        let mut c = LocalClock::default();
        c.set_skew(SimTime(1_000), -1_000_000, 0);
        assert_eq!(c.local(SimTime(2_000)), SimTime(0));
    }
}
