//! A per-endpoint circuit breaker: sony/gobreaker's state machine (what Go kit's
//! `circuitbreaker.Gobreaker` wraps), with Hystrix's error-ratio trip as an option.
//!
//! Model (ANCHORS.md, "the gateway (Go kit)"):
//! - **Closed** lets every request through and counts outcomes. It trips to **Open** when a
//!   failure is recorded and either `consecutive_failures` failures in a row have been seen
//!   (gobreaker's default `ReadyToTrip` is "more than 5", so the default here is 6; 0 turns
//!   the condition off), or, with `error_ratio > 0`, the rolling window holds at least
//!   `min_requests` outcomes of which a fraction of at least `error_ratio` failed (Hystrix:
//!   50 % of at least 20 requests in 10 s). As in gobreaker, the trip is only evaluated when a
//!   failure is recorded. The window counts *completed* requests, as Hystrix's health counts
//!   do, in 10 buckets of `window / 10`: the current bucket and the 9 before it, so it spans
//!   between 9/10 of `window` and `window` and costs O(1) memory (allocated only when the
//!   ratio trip is on, so a default breaker stays small).
//! - **Open** rejects every request. The first `allow` strictly after `open_for` has elapsed
//!   since it opened (gobreaker's `expiry.Before(now)`) moves it to **HalfOpen**. `open_for`
//!   0 means gobreaker's default `Timeout`, 60 s.
//! - **HalfOpen** admits at most `half_open_max` requests in total (gobreaker `MaxRequests`;
//!   0 means 1, as in gobreaker). `half_open_max` successes in a row close it; any failure
//!   reopens it for a new `open_for`.
//!
//! Every state change starts a new *generation* and clears the counts. **Interface change
//! from a plain `(bool, Option<BreakerState>)`:** [`Breaker::allow`] returns an [`Admission`]
//! carrying the generation it admitted the request in, and [`Breaker::record`] takes it back;
//! the outcome of a request admitted in an older generation (its answer arrives after the
//! breaker opened, say) is ignored, exactly as gobreaker's `afterRequest` does, so late
//! answers cannot corrupt the counts of the new state. A caller that gives up on a request
//! (timeout) should record it as a failure, else a half-open breaker keeps its probe slot.
//!
//! Time is the caller's (local) [`SimTime`]; a clock that steps backwards never reopens or
//! closes anything by itself (elapsed times saturate at zero).

use regsim_kernel::{SimDuration, SimTime};

/// gobreaker's default `Timeout` (used when `open_for` is zero).
pub const GOBREAKER_TIMEOUT: SimDuration = SimDuration::from_secs(60);

/// Buckets of the rolling window (Hystrix: 10 buckets over 10 s).
pub const WINDOW_BUCKETS: usize = 10;

/// `[gateway.breaker]` (keys it omits take gobreaker's defaults, [`BreakerConfig::default`]).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Trip after this many failures in a row; 0 turns this condition off.
    pub consecutive_failures: u32,
    /// Trip when failures / requests in the window reach this fraction; 0 (or NaN) is off.
    pub error_ratio: f64,
    /// The ratio trip needs at least this many completed requests in the window.
    pub min_requests: u32,
    /// Length of the rolling window of the ratio trip.
    pub window: SimDuration,
    /// How long the breaker stays open before it lets a probe through (0 = 60 s).
    pub open_for: SimDuration,
    /// Requests admitted while half-open, and successes in a row that close it (0 = 1).
    pub half_open_max: u32,
}

impl Default for BreakerConfig {
    /// gobreaker's defaults: open after more than 5 consecutive failures, 60 s open, 1 probe.
    /// The ratio trip is off; its window settings are Hystrix's, ready for `error_ratio`.
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: 6,
            error_ratio: 0.0,
            min_requests: 20,
            window: SimDuration::from_secs(10),
            open_for: GOBREAKER_TIMEOUT,
            half_open_max: 1,
        }
    }
}

impl BreakerConfig {
    pub fn validate(&self) -> Result<(), crate::protocol::config::Invalid> {
        crate::protocol::config::periods(&[("window", self.window), ("open_for", self.open_for)])?;
        if !(0.0..=1.0).contains(&self.error_ratio) {
            return Err(("error_ratio".into(), "expected a ratio in [0, 1]".into()));
        }
        if self.consecutive_failures == 0 && self.error_ratio == 0.0 {
            return Err((
                String::new(),
                "expected consecutive_failures or error_ratio above 0 (else it never opens)".into(),
            ));
        }
        if self.half_open_max == 0 {
            return Err(("half_open_max".into(), "expected at least 1".into()));
        }
        Ok(())
    }

    /// Hystrix's defaults: open at >= 50 % errors over at least 20 requests in a 10 s rolling
    /// window, sleep window 5 s, one test request; no consecutive-failure trip.
    pub fn hystrix() -> Self {
        BreakerConfig {
            consecutive_failures: 0,
            error_ratio: 0.5,
            min_requests: 20,
            window: SimDuration::from_secs(10),
            open_for: SimDuration::from_secs(5),
            half_open_max: 1,
        }
    }

    fn open_for(&self) -> SimDuration {
        if self.open_for == SimDuration::ZERO { GOBREAKER_TIMEOUT } else { self.open_for }
    }

    fn half_open_max(&self) -> u32 {
        self.half_open_max.max(1)
    }

    fn ratio_on(&self) -> bool {
        self.error_ratio > 0.0
    }

    fn bucket_ns(&self) -> u64 {
        (self.window.as_nanos() / WINDOW_BUCKETS as u64).max(1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// The answer of [`Breaker::allow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    /// May the request be sent?
    pub allowed: bool,
    /// The new state if this call changed it (Open -> HalfOpen).
    pub changed: Option<BreakerState>,
    /// Pass back to [`Breaker::record`] with the request's outcome.
    pub generation: u32,
}

/// One bucket of the rolling window: completed requests and failures among them.
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    requests: u32,
    failures: u32,
}

/// The rolling window: a ring of buckets, `head` the number (`now / bucket_ns`) of the newest.
#[derive(Clone, Debug, Default)]
struct Window {
    head: u64,
    buckets: [Bucket; WINDOW_BUCKETS],
}

impl Window {
    /// Moves the window to bucket `k`, emptying the buckets that fall out. A `k` before the
    /// head (clock stepped back) counts into the head bucket.
    fn advance(&mut self, k: u64) {
        if k <= self.head {
            return;
        }
        let steps = k - self.head;
        if steps >= WINDOW_BUCKETS as u64 {
            self.buckets = Default::default();
        } else {
            for i in 1..=steps {
                self.buckets[((self.head + i) % WINDOW_BUCKETS as u64) as usize] = Bucket::default();
            }
        }
        self.head = k;
    }

    fn add(&mut self, k: u64, failed: bool) {
        self.advance(k);
        let b = &mut self.buckets[(self.head % WINDOW_BUCKETS as u64) as usize];
        b.requests = b.requests.saturating_add(1);
        b.failures = b.failures.saturating_add(u32::from(failed));
    }

    fn totals(&self) -> (u64, u64) {
        self.buckets.iter().fold((0, 0), |(r, f), b| (r + u64::from(b.requests), f + u64::from(b.failures)))
    }
}

/// The breaker of one endpoint, kept per instance per gateway.
#[derive(Clone, Debug)]
pub struct Breaker {
    state: BreakerState,
    generation: u32,
    /// Requests admitted in this generation (the half-open limit).
    requests: u32,
    consecutive_successes: u32,
    consecutive_failures: u32,
    /// When the breaker last opened (meaningful while Open).
    opened_at: SimTime,
    /// The ratio trip's window, allocated on the first outcome with the ratio trip on.
    window: Option<Box<Window>>,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new()
    }
}

impl Breaker {
    /// A closed breaker with empty counts.
    pub fn new() -> Breaker {
        Breaker {
            state: BreakerState::Closed,
            generation: 0,
            requests: 0,
            consecutive_successes: 0,
            consecutive_failures: 0,
            opened_at: SimTime::ZERO,
            window: None,
        }
    }

    /// The state as of the last call (an Open breaker past `open_for` still reads Open until
    /// the next `allow`; see [`Breaker::state_at`]).
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// The state `allow` would find at `now`, without changing anything (gobreaker's `State()`).
    pub fn state_at(&self, cfg: &BreakerConfig, now: SimTime) -> BreakerState {
        if self.open_expired(cfg, now) { BreakerState::HalfOpen } else { self.state }
    }

    /// The current generation (changes with every state change).
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// May a request go to this endpoint now? Moves Open -> HalfOpen once `open_for` has
    /// elapsed (strictly). In HalfOpen, counts the request against `half_open_max`.
    pub fn allow(&mut self, cfg: &BreakerConfig, now: SimTime) -> Admission {
        let changed = self.refresh(cfg, now);
        let allowed = match self.state {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => self.requests < cfg.half_open_max(),
        };
        if allowed {
            self.requests = self.requests.saturating_add(1);
        }
        Admission { allowed, changed, generation: self.generation }
    }

    /// The outcome of a request `allow` admitted in `generation`. Returns the new state on a
    /// change. Outcomes from an older generation are ignored (a state change may still be
    /// returned: Open -> HalfOpen when `open_for` has elapsed, as `allow` would).
    pub fn record(&mut self, cfg: &BreakerConfig, now: SimTime, generation: u32, ok: bool) -> Option<BreakerState> {
        let expired = self.refresh(cfg, now);
        if generation != self.generation {
            return expired;
        }
        match (self.state, ok) {
            (BreakerState::Closed, true) => {
                self.count(ok);
                self.add_to_window(cfg, now, false);
                None
            }
            (BreakerState::Closed, false) => {
                self.count(ok);
                self.add_to_window(cfg, now, true);
                self.ready_to_trip(cfg).then(|| self.set_state(BreakerState::Open, now))
            }
            (BreakerState::HalfOpen, true) => {
                self.count(ok);
                (self.consecutive_successes >= cfg.half_open_max()).then(|| self.set_state(BreakerState::Closed, now))
            }
            (BreakerState::HalfOpen, false) => Some(self.set_state(BreakerState::Open, now)),
            // Nothing is admitted while Open, so no outcome of this generation can arrive.
            (BreakerState::Open, _) => None,
        }
    }

    fn open_expired(&self, cfg: &BreakerConfig, now: SimTime) -> bool {
        self.state == BreakerState::Open && now.saturating_since(self.opened_at) > cfg.open_for()
    }

    /// gobreaker's `currentState`: Open -> HalfOpen once the open period is over.
    fn refresh(&mut self, cfg: &BreakerConfig, now: SimTime) -> Option<BreakerState> {
        self.open_expired(cfg, now).then(|| self.set_state(BreakerState::HalfOpen, now))
    }

    fn count(&mut self, ok: bool) {
        if ok {
            self.consecutive_successes = self.consecutive_successes.saturating_add(1);
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.consecutive_successes = 0;
        }
    }

    fn add_to_window(&mut self, cfg: &BreakerConfig, now: SimTime, failed: bool) {
        if !cfg.ratio_on() {
            return;
        }
        let k = now.as_nanos() / cfg.bucket_ns();
        let w = self.window.get_or_insert_with(|| Box::new(Window { head: k, ..Window::default() }));
        w.add(k, failed);
    }

    fn ready_to_trip(&self, cfg: &BreakerConfig) -> bool {
        if cfg.consecutive_failures > 0 && self.consecutive_failures >= cfg.consecutive_failures {
            return true;
        }
        if !cfg.ratio_on() {
            return false;
        }
        let Some(w) = &self.window else { return false };
        let (requests, failures) = w.totals();
        requests > 0 && requests >= u64::from(cfg.min_requests) && failures as f64 / requests as f64 >= cfg.error_ratio
    }

    /// gobreaker's `setState` + `toNewGeneration`: new generation, counts cleared.
    fn set_state(&mut self, state: BreakerState, now: SimTime) -> BreakerState {
        self.state = state;
        self.generation = self.generation.wrapping_add(1);
        self.requests = 0;
        self.consecutive_successes = 0;
        self.consecutive_failures = 0;
        // The window restarts empty at the next outcome (trips are rare; the box is cheap).
        self.window = None;
        if state == BreakerState::Open {
            self.opened_at = now;
        }
        state
    }
}

#[cfg(test)]
mod tests;
