//! Per-component random streams.
//!
//! A run has one seed. Each component (the network, the fault schedule, the workload, each
//! node by role and index such as `instances/17`) draws from its own ChaCha8 stream whose key
//! is derived from `(seed, component name)`, so adding a node or a draw in one component never
//! perturbs another's. The derivation is ours and fixed (FNV-1a over the name, mixed with the
//! seed through SplitMix64), so streams are the same on every platform and release.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The random generator every component uses.
pub type SimRng = ChaCha8Rng;

/// SplitMix64 finalizer: a bijective 64-bit mixer.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, 64 bit.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The stream of component `name` in the run with `seed`.
pub fn stream(seed: u64, name: &str) -> SimRng {
    let mut state = mix64(seed ^ mix64(fnv1a64(name.as_bytes())));
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        state = mix64(state);
        chunk.copy_from_slice(&state.to_le_bytes());
    }
    ChaCha8Rng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a1 = stream(42, "instances/1").next_u64();
        let a2 = stream(42, "instances/1").next_u64();
        let b = stream(42, "instances/2").next_u64();
        let c = stream(43, "instances/1").next_u64();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(a1, c);
    }

    #[test]
    fn derivation_is_pinned() {
        // Changing the derivation silently would change every report; this pins it.
        let mut r = stream(1, "net");
        let first = r.next_u64();
        assert_eq!(first, stream(1, "net").next_u64());
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(mix64(0), 0xe220_a839_7b1d_cdaf);
    }
}
