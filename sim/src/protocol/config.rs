//! What every protocol's `Config` shares: the error shape of `validate()` and its common
//! checks. Each protocol folder owns its settings as one serde type whose `Default` is the
//! real system's default, written once; the scenario schema embeds these types as its
//! sections (`[registry.distro]` is `nacos::distro::DistroConfig`), so a key, its default and
//! its check live beside the mechanism that reads them.

use regsim_kernel::SimDuration;

/// A semantic error: (key path, message). A protocol's `validate()` gives key paths relative
/// to its own section; the schema prefixes the section's path.
pub type Invalid = (String, String);

/// The shortest timer period or timeout a scenario may set (1 ms): every periodic timer then
/// fires at most 1,000 times per virtual second per node, so a run's events stay bounded by its
/// duration (a 1 µs Raft heartbeat ran without end).
pub const MIN_PERIOD: SimDuration = SimDuration::from_millis(1);

/// Checks that every `(key, duration)` is at least [`MIN_PERIOD`].
pub fn periods(items: &[(&str, SimDuration)]) -> Result<(), Invalid> {
    match items.iter().find(|(_, d)| *d < MIN_PERIOD) {
        Some((key, _)) => Err((key.to_string(), "expected a duration of at least 1ms".to_string())),
        None => Ok(()),
    }
}

/// Prefixes the key path of an error from a section's `validate()` with the section's path.
/// An empty key is the section itself.
pub fn within<T>(section: &str, r: Result<T, Invalid>) -> Result<T, Invalid> {
    r.map_err(|(key, m)| if key.is_empty() { (section.to_string(), m) } else { (format!("{section}.{key}"), m) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_name_the_first_short_key() {
        let ms = SimDuration::from_millis;
        assert_eq!(periods(&[("a", ms(1)), ("b", ms(5))]), Ok(()));
        let err = periods(&[("a", ms(1)), ("b", SimDuration::ZERO), ("c", SimDuration::ZERO)]).expect_err("b is 0");
        assert_eq!(err.0, "b");
        assert_eq!(within("registry.distro", Err::<(), _>(err)).expect_err("stays an error").0, "registry.distro.b");
    }
}
