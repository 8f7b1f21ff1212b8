//! A cache prefetch hint: the one `unsafe` block of the crate.
//!
//! The world touches one random node per event (its `Meta` and its actor). On the
//! 10,000-instance heartbeat workload these lines are usually out of L1/L2 (they are spread
//! over ~1 MB), and profiling showed the two loads as a third of the run time: the CPU waits
//! for them. `World::step` knows the next event before it handles the current one, so it asks
//! for those lines early and the wait overlaps the current event's work. A prefetch is only a
//! hint: it never faults, never changes memory and never changes what the program computes,
//! so it cannot affect determinism.

/// Asks the CPU to bring the cache line holding `*r` into L1. A no-op where we have no hint.
#[inline(always)]
#[allow(unsafe_code)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is a hint that does not access memory architecturally (it cannot
    // fault, even on an invalid address; here the address comes from a live reference), and
    // SSE, the feature it needs, is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>((r as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}
