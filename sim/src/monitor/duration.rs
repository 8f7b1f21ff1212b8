//! Prometheus durations (`model.Duration`): `1h30m`, `5m`, `15s`, `250ms`, `0`.
//!
//! Model: Prometheus's configuration and rule files write durations as integers with units in
//! the fixed order `y w d h m s ms` (a year is 365 days), each at most once; `0` alone is zero.
//! promtool prints them back in the same form (`5m`, `1h0m0s` is written `1h`), which the
//! `rules test` output mirrors.

/// Units in their required order, with their length in milliseconds.
const UNITS: &[(&str, i64)] = &[
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a Prometheus duration into milliseconds.
pub fn parse_ms(text: &str) -> Result<i64, String> {
    let bad = || format!("expected a duration such as 30s, 5m or 1h30m, got {text:?}");
    if text == "0" {
        return Ok(0);
    }
    if text.is_empty() {
        return Err(bad());
    }
    let mut rest = text;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        // "ms" must be tried before "m".
        let found = UNITS
            .iter()
            .enumerate()
            .skip(next_unit)
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())
            .ok_or_else(bad)?;
        let (i, (unit, ms)) = found;
        rest = &rest[unit.len()..];
        next_unit = i + 1;
        total = n.checked_mul(*ms).and_then(|x| total.checked_add(x)).ok_or_else(bad)?;
    }
    Ok(total)
}

/// Formats milliseconds as Prometheus does (`1h30m`, `0s`).
pub fn format_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut left = ms.unsigned_abs();
    if ms < 0 {
        out.push('-');
    }
    for (unit, len) in UNITS {
        let len = len.unsigned_abs();
        // Years and weeks only when exact, as Prometheus (90d rather than 12w6d).
        if (*unit == "y" || *unit == "w") && !left.is_multiple_of(len) {
            continue;
        }
        if left >= len {
            out.push_str(&format!("{}{unit}", left / len));
            left %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_format() {
        for (text, ms) in
            [("0", 0), ("0s", 0), ("15s", 15_000), ("1h30m", 5_400_000), ("250ms", 250), ("1d", 86_400_000)]
        {
            assert_eq!(parse_ms(text), Ok(ms), "{text}");
        }
        for bad in ["", "5", "m", "1m1h", "1s1s", "1.5m", "-1m", "1 m"] {
            assert!(parse_ms(bad).is_err(), "{bad}");
        }
        assert_eq!(format_ms(5_400_000), "1h30m");
        assert_eq!(format_ms(0), "0s");
        assert_eq!(format_ms(604_800_000), "1w");
        assert_eq!(format_ms(61_500), "1m1s500ms");
    }
}
