//! Tests of `breaker` (a child module: they reach its private items).

use super::*;

fn at_ms(ms: u64) -> SimTime {
    SimTime(ms * 1_000_000)
}

/// Admits a request at `now` and records its outcome at once; returns the state change.
fn call(b: &mut Breaker, cfg: &BreakerConfig, now: SimTime, ok: bool) -> Option<BreakerState> {
    let a = b.allow(cfg, now);
    assert!(a.allowed, "call at {now} should be admitted in {:?}", b.state());
    b.record(cfg, now, a.generation, ok)
}

fn open_by_failures(b: &mut Breaker, cfg: &BreakerConfig, now: SimTime) {
    for _ in 0..cfg.consecutive_failures {
        call(b, cfg, now, false);
    }
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn defaults_are_gobreakers_and_hystrixs() {
    let d = BreakerConfig::default();
    assert_eq!((d.consecutive_failures, d.open_for, d.half_open_max), (6, SimDuration::from_secs(60), 1));
    assert_eq!(d.error_ratio, 0.0);
    let h = BreakerConfig::hystrix();
    assert_eq!((h.error_ratio, h.min_requests, h.window), (0.5, 20, SimDuration::from_secs(10)));
    assert_eq!((h.consecutive_failures, h.open_for), (0, SimDuration::from_secs(5)));
}

#[test]
fn opens_after_more_than_five_consecutive_failures() {
    let cfg = BreakerConfig::default();
    let mut b = Breaker::new();
    for _ in 0..5 {
        assert_eq!(call(&mut b, &cfg, at_ms(0), false), None);
    }
    // A success resets the run.
    assert_eq!(call(&mut b, &cfg, at_ms(1), true), None);
    for _ in 0..5 {
        assert_eq!(call(&mut b, &cfg, at_ms(2), false), None);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(call(&mut b, &cfg, at_ms(3), false), Some(BreakerState::Open));
    let a = b.allow(&cfg, at_ms(3));
    assert!(!a.allowed);
    assert_eq!(a.changed, None);
}

#[test]
fn zero_turns_the_consecutive_trip_off() {
    let cfg = BreakerConfig { consecutive_failures: 0, ..BreakerConfig::default() };
    let mut b = Breaker::new();
    for i in 0..1_000 {
        assert_eq!(call(&mut b, &cfg, at_ms(i), false), None);
    }
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn open_until_strictly_after_open_for() {
    let cfg = BreakerConfig::default();
    let mut b = Breaker::new();
    open_by_failures(&mut b, &cfg, at_ms(1_000));
    let end = at_ms(1_000) + cfg.open_for;
    assert_eq!(b.state_at(&cfg, end), BreakerState::Open);
    let a = b.allow(&cfg, end);
    assert_eq!((a.allowed, a.changed), (false, None), "still open at exactly open_for");
    let later = SimTime(end.as_nanos() + 1);
    assert_eq!(b.state_at(&cfg, later), BreakerState::HalfOpen);
    assert_eq!(b.state(), BreakerState::Open, "state_at changes nothing");
    let a = b.allow(&cfg, later);
    assert_eq!((a.allowed, a.changed), (true, Some(BreakerState::HalfOpen)));
    assert_eq!(b.state(), BreakerState::HalfOpen);
}

#[test]
fn half_open_admits_one_probe_and_closes_on_success() {
    let cfg = BreakerConfig::default();
    let mut b = Breaker::new();
    open_by_failures(&mut b, &cfg, at_ms(0));
    let t = at_ms(60_001);
    let probe = b.allow(&cfg, t);
    assert!(probe.allowed);
    let second = b.allow(&cfg, t);
    assert_eq!((second.allowed, second.changed), (false, None), "one probe in half-open");
    assert_eq!(b.record(&cfg, at_ms(60_010), probe.generation, true), Some(BreakerState::Closed));
    // Counts were reset on closing: five failures do not trip it again.
    for _ in 0..5 {
        assert_eq!(call(&mut b, &cfg, at_ms(60_020), false), None);
    }
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn a_failed_probe_reopens_for_a_new_period() {
    let cfg = BreakerConfig::default();
    let mut b = Breaker::new();
    open_by_failures(&mut b, &cfg, at_ms(0));
    let probe = b.allow(&cfg, at_ms(60_001));
    assert_eq!(b.record(&cfg, at_ms(60_500), probe.generation, false), Some(BreakerState::Open));
    // The new open period runs from the failure, not from the first opening.
    assert!(!b.allow(&cfg, at_ms(120_500)).allowed);
    let a = b.allow(&cfg, SimTime(at_ms(120_500).as_nanos() + 1));
    assert_eq!((a.allowed, a.changed), (true, Some(BreakerState::HalfOpen)));
}

#[test]
fn several_probes_need_as_many_successes() {
    let cfg = BreakerConfig { half_open_max: 3, ..BreakerConfig::default() };
    let mut b = Breaker::new();
    open_by_failures(&mut b, &cfg, at_ms(0));
    let t = at_ms(60_001);
    let probes: Vec<Admission> = (0..3).map(|_| b.allow(&cfg, t)).collect();
    assert!(probes.iter().all(|p| p.allowed));
    assert!(!b.allow(&cfg, t).allowed, "a fourth request is one too many");
    assert_eq!(b.record(&cfg, t, probes[0].generation, true), None);
    assert_eq!(b.record(&cfg, t, probes[1].generation, true), None);
    // Admissions are counted in total, not in flight: still no room after two answers.
    assert!(!b.allow(&cfg, t).allowed);
    assert_eq!(b.record(&cfg, t, probes[2].generation, true), Some(BreakerState::Closed));
}

#[test]
fn zero_settings_fall_back_to_gobreakers_defaults() {
    let cfg = BreakerConfig { half_open_max: 0, open_for: SimDuration::ZERO, ..BreakerConfig::default() };
    let mut b = Breaker::new();
    open_by_failures(&mut b, &cfg, at_ms(0));
    assert!(!b.allow(&cfg, at_ms(60_000)).allowed, "open_for 0 means 60 s");
    let probe = b.allow(&cfg, at_ms(60_001));
    assert!(probe.allowed);
    assert!(!b.allow(&cfg, at_ms(60_001)).allowed, "half_open_max 0 means 1");
    assert_eq!(b.record(&cfg, at_ms(60_002), probe.generation, true), Some(BreakerState::Closed));
}

#[test]
fn late_outcomes_from_an_older_generation_are_ignored() {
    let cfg = BreakerConfig::default();
    let mut b = Breaker::new();
    let slow_ok = b.allow(&cfg, at_ms(0));
    let slow_fail = b.allow(&cfg, at_ms(0));
    open_by_failures(&mut b, &cfg, at_ms(1));
    let probe = b.allow(&cfg, at_ms(60_002));
    assert_eq!(probe.changed, Some(BreakerState::HalfOpen));
    // The slow closed-state success must not close the half-open breaker...
    assert_eq!(b.record(&cfg, at_ms(60_003), slow_ok.generation, true), None);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    // ...nor the slow failure reopen it.
    assert_eq!(b.record(&cfg, at_ms(60_004), slow_fail.generation, false), None);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert_eq!(b.record(&cfg, at_ms(60_005), probe.generation, true), Some(BreakerState::Closed));
    // A closed-state outcome from before the trip does not count in the new Closed state.
    for _ in 0..5 {
        call(&mut b, &cfg, at_ms(60_006), false);
    }
    assert_eq!(b.record(&cfg, at_ms(60_007), slow_fail.generation, false), None);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn record_reports_the_expiry_of_the_open_period() {
    let cfg = BreakerConfig::default();
    let mut b = Breaker::new();
    let old = b.allow(&cfg, at_ms(0));
    open_by_failures(&mut b, &cfg, at_ms(0));
    assert_eq!(b.record(&cfg, at_ms(60_001), old.generation, true), Some(BreakerState::HalfOpen));
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(b.allow(&cfg, at_ms(60_001)).allowed, "the probe slot is still free");
}

fn ratio_only() -> BreakerConfig {
    BreakerConfig { consecutive_failures: 0, ..BreakerConfig::hystrix() }
}

#[test]
fn ratio_trip_needs_min_requests() {
    let cfg = ratio_only();
    let mut b = Breaker::new();
    for _ in 0..19 {
        assert_eq!(call(&mut b, &cfg, at_ms(100), false), None);
    }
    assert_eq!(call(&mut b, &cfg, at_ms(100), false), Some(BreakerState::Open), "the 20th request trips");
}

#[test]
fn ratio_trip_at_exactly_the_threshold_not_below() {
    let cfg = ratio_only();
    // 10 successes then 9 failures: 9/19 < 0.5 and below min_requests; the 10th failure
    // makes 10/20 = 0.5, which trips (>=).
    let mut b = Breaker::new();
    for _ in 0..10 {
        call(&mut b, &cfg, at_ms(0), true);
    }
    for _ in 0..9 {
        assert_eq!(call(&mut b, &cfg, at_ms(0), false), None);
    }
    assert_eq!(call(&mut b, &cfg, at_ms(0), false), Some(BreakerState::Open));
    // 11 successes and 10 failures: 10/21 < 0.5, stays closed.
    let mut b = Breaker::new();
    for _ in 0..11 {
        call(&mut b, &cfg, at_ms(0), true);
    }
    for _ in 0..10 {
        assert_eq!(call(&mut b, &cfg, at_ms(0), false), None);
    }
    assert_eq!(b.state(), BreakerState::Closed);
}

/// 15 failures at 0.5 s (bucket 0), then failures later: does bucket 0 still count?
fn window_case(later: SimTime) -> Option<BreakerState> {
    let cfg = BreakerConfig { min_requests: 16, ..ratio_only() };
    let mut b = Breaker::new();
    for _ in 0..15 {
        assert_eq!(call(&mut b, &cfg, at_ms(500), false), None);
    }
    call(&mut b, &cfg, later, false)
}

#[test]
fn old_buckets_leave_the_window_at_the_bucket_boundary() {
    // Buckets are 1 s: at 9.999 s bucket 0 is the oldest of ten and still counts.
    assert_eq!(window_case(SimTime(9_999_999_999)), Some(BreakerState::Open));
    // At exactly 10 s bucket 10 starts and bucket 0 is dropped: 1 request < 16.
    assert_eq!(window_case(at_ms(10_000)), None);
    assert_eq!(window_case(at_ms(3_600_000)), None, "a long gap empties the whole window");
}

#[test]
fn window_counts_outcomes_not_admissions_and_resets_on_state_change() {
    let cfg = BreakerConfig { min_requests: 4, ..ratio_only() };
    let mut b = Breaker::new();
    // Many admitted but unanswered requests do not dilute the ratio.
    let pending: Vec<Admission> = (0..100).map(|_| b.allow(&cfg, at_ms(0))).collect();
    for p in &pending[..3] {
        assert_eq!(b.record(&cfg, at_ms(1), p.generation, false), None);
    }
    assert_eq!(b.record(&cfg, at_ms(1), pending[3].generation, false), Some(BreakerState::Open));
    let probe = b.allow(&cfg, at_ms(6_002));
    assert_eq!(b.record(&cfg, at_ms(6_003), probe.generation, true), Some(BreakerState::Closed));
    // The failures before the trip are gone: three more failures are below min_requests.
    for _ in 0..3 {
        assert_eq!(call(&mut b, &cfg, at_ms(6_004), false), None);
    }
    assert_eq!(call(&mut b, &cfg, at_ms(6_004), false), Some(BreakerState::Open));
}

#[test]
fn either_condition_trips() {
    let cfg = BreakerConfig { consecutive_failures: 3, error_ratio: 0.9, min_requests: 100, ..Default::default() };
    let mut b = Breaker::new();
    for _ in 0..2 {
        call(&mut b, &cfg, at_ms(0), false);
    }
    assert_eq!(call(&mut b, &cfg, at_ms(0), false), Some(BreakerState::Open));
}

#[test]
fn a_clock_stepping_back_changes_nothing() {
    let cfg = BreakerConfig::default();
    let mut b = Breaker::new();
    open_by_failures(&mut b, &cfg, at_ms(100_000));
    assert!(!b.allow(&cfg, at_ms(0)).allowed);
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn breaker_stays_small() {
    assert!(std::mem::size_of::<Breaker>() <= 40, "Breaker is {} bytes", std::mem::size_of::<Breaker>());
}
