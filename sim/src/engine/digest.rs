//! The run digest: a running 128-bit hash of every processed event.
//!
//! Two independent 64-bit lanes (different multipliers) are folded with every word written;
//! events are fed through `std::hash::Hash`, so message and timer types only need
//! `#[derive(Hash)]`. The hasher is ours and unkeyed, so the digest is the same on every run:
//! same scenario + seed + regsim version => same digest.

use std::hash::Hasher;

#[derive(Clone, Debug)]
pub struct Digest {
    a: u64,
    b: u64,
}

impl Default for Digest {
    fn default() -> Self {
        Digest { a: 0x243F_6A88_85A3_08D3, b: 0x1319_8A2E_0370_7344 }
    }
}

impl Digest {
    #[inline]
    pub fn fold(&mut self, word: u64) {
        self.a = (self.a ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        self.b = (self.b.rotate_left(17) ^ word).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    }

    /// Hex of both lanes after a final mix: 32 lowercase hex digits.
    pub fn hex(&self) -> String {
        let fa = super::rng::mix64(self.a ^ self.b.rotate_left(32));
        let fb = super::rng::mix64(self.b ^ fa);
        format!("{fa:016x}{fb:016x}")
    }
}

impl Hasher for Digest {
    fn finish(&self) -> u64 {
        self.a ^ self.b
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.fold(u64::from_le_bytes(w) ^ ((chunk.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.fold(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.fold(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.fold(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.fold(i as u64);
    }
    #[inline]
    fn write_isize(&mut self, i: isize) {
        self.fold(i as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    #[test]
    fn order_and_content_change_the_digest() {
        let h = |words: &[u64]| {
            let mut d = Digest::default();
            words.iter().for_each(|w| d.fold(*w));
            d.hex()
        };
        assert_eq!(h(&[1, 2, 3]), h(&[1, 2, 3]));
        assert_ne!(h(&[1, 2, 3]), h(&[1, 3, 2]));
        assert_ne!(h(&[1, 2, 3]), h(&[1, 2, 4]));
        assert_eq!(h(&[]).len(), 32);
    }

    #[test]
    fn hash_derive_feeds_it() {
        let mut a = Digest::default();
        let mut b = Digest::default();
        ("beat", 17u32).hash(&mut a);
        ("beat", 18u32).hash(&mut b);
        assert_ne!(a.hex(), b.hex());
    }
}
