//! Virtual time: `u64` nanoseconds behind two newtypes.
//!
//! `SimTime` is an instant on the simulation's (true, global) time line; `SimDuration` is a span.
//! Durations are written in scenarios as `"150ms"`, `"5s"`, `"2m"`, `"1h"` (also `ns`, `us`,
//! fractions like `"1.5s"`, and sums like `"1m30s"`). Nothing here reads an OS clock.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// An instant of virtual time, in nanoseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

/// A span of virtual time, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimDuration(pub u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);
    pub const MAX: SimTime = SimTime(u64::MAX);

    pub fn as_nanos(self) -> u64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }
    /// Time elapsed since `earlier`, zero if `earlier` is later (clocks may step backwards).
    pub fn saturating_since(self, earlier: SimTime) -> SimDuration {
        SimDuration(self.0.saturating_sub(earlier.0))
    }
}

impl SimDuration {
    pub const ZERO: SimDuration = SimDuration(0);
    pub const MAX: SimDuration = SimDuration(u64::MAX);

    pub const fn from_nanos(n: u64) -> Self {
        SimDuration(n)
    }
    pub const fn from_micros(us: u64) -> Self {
        SimDuration(us * 1_000)
    }
    pub const fn from_millis(ms: u64) -> Self {
        SimDuration(ms * 1_000_000)
    }
    pub const fn from_secs(s: u64) -> Self {
        SimDuration(s * NANOS_PER_SEC)
    }
    /// Rounds to the nearest nanosecond; negative and NaN become zero, huge values saturate.
    pub fn from_secs_f64(s: f64) -> Self {
        SimDuration(nanos_from_f64(s * NANOS_PER_SEC as f64))
    }
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }
    pub fn saturating_mul(self, k: u64) -> Self {
        SimDuration(self.0.saturating_mul(k))
    }
}

/// Converts a float nanosecond count to `u64`, clamping NaN and negatives to 0.
pub fn nanos_from_f64(ns: f64) -> u64 {
    if ns.is_nan() || ns <= 0.0 {
        0
    } else if ns >= u64::MAX as f64 {
        u64::MAX
    } else {
        ns.round() as u64
    }
}

impl Add<SimDuration> for SimTime {
    type Output = SimTime;
    fn add(self, d: SimDuration) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
}
impl AddAssign<SimDuration> for SimTime {
    fn add_assign(&mut self, d: SimDuration) {
        self.0 = self.0.saturating_add(d.0);
    }
}
impl Sub<SimTime> for SimTime {
    type Output = SimDuration;
    fn sub(self, earlier: SimTime) -> SimDuration {
        self.saturating_since(earlier)
    }
}
impl Add for SimDuration {
    type Output = SimDuration;
    fn add(self, d: SimDuration) -> SimDuration {
        SimDuration(self.0.saturating_add(d.0))
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={}", SimDuration(self.0))
    }
}

impl fmt::Display for SimDuration {
    /// The shortest exact form in the largest unit that divides it: `5s`, `150ms`, `1.5s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, scale) in [("h", 3_600 * NANOS_PER_SEC), ("m", 60 * NANOS_PER_SEC)] {
            if n != 0 && n.is_multiple_of(scale) {
                return write!(f, "{}{unit}", n / scale);
            }
        }
        for (unit, scale) in [("s", NANOS_PER_SEC), ("ms", 1_000_000), ("us", 1_000)] {
            if n >= scale {
                let whole = n / scale;
                let frac = n % scale;
                if frac == 0 {
                    return write!(f, "{whole}{unit}");
                }
                let digits = scale.ilog10() as usize;
                let frac = format!("{frac:0digits$}");
                return write!(f, "{whole}.{}{unit}", frac.trim_end_matches('0'));
            }
        }
        write!(f, "{n}ns")
    }
}

/// Parses `"150ms"`, `"5s"`, `"2m"`, `"1h"`, `"1.5s"`, `"1m30s"`, `"0"`.
pub fn parse_duration(text: &str) -> Result<SimDuration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(SimDuration::ZERO);
    }
    if s.is_empty() {
        return Err("expected a duration like \"15s\", got an empty string".into());
    }
    let bad = || format!("expected a duration like \"15s\" (units ns, us, ms, s, m, h), got \"{text}\"");
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale: u64 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" | "min" => 60 * NANOS_PER_SEC,
            "h" => 3_600 * NANOS_PER_SEC,
            _ => return Err(bad()),
        };
        let value: f64 = num.parse().map_err(|_| bad())?;
        let nanos = value * scale as f64;
        if !nanos.is_finite() || nanos >= u64::MAX as f64 / 2.0 {
            return Err(format!("duration \"{text}\" is too large"));
        }
        total = total.checked_add(nanos.round() as u64).ok_or_else(bad)?;
        rest = tail;
    }
    Ok(SimDuration(total))
}

impl Serialize for SimDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = SimDuration;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration like \"15s\"")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<SimDuration, E> {
        parse_duration(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<SimDuration, E> {
        if v == 0 {
            return Ok(SimDuration::ZERO);
        }
        Err(E::custom(format!("expected a duration like \"15s\", got {v}")))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<SimDuration, E> {
        self.visit_i64(v.min(i64::MAX as u64) as i64)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<SimDuration, E> {
        Err(E::custom(format!("expected a duration like \"15s\", got {v}")))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<SimDuration, E> {
        Err(E::custom(format!("expected a duration like \"15s\", got {v}")))
    }
}

impl<'de> Deserialize<'de> for SimDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse_duration("150ms"), Ok(SimDuration::from_millis(150)));
        assert_eq!(parse_duration("5s"), Ok(SimDuration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(SimDuration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(SimDuration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(SimDuration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(SimDuration::from_secs(90)));
        assert_eq!(parse_duration("250us"), Ok(SimDuration::from_micros(250)));
        assert_eq!(parse_duration("0"), Ok(SimDuration::ZERO));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "15", "5 parsecs", "s", "1.2.3s", "-5s", "5x"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn display_round_trips() {
        for ns in [0, 1, 999, 1_500, 150_000_000, 1_500_000_000, 5 * NANOS_PER_SEC, 7_200 * NANOS_PER_SEC] {
            let d = SimDuration(ns);
            assert_eq!(parse_duration(&d.to_string()), Ok(d), "{d}");
        }
    }
}
