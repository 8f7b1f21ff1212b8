//! The run digest: a running 64-bit hash of every processed event.
//!
//! Every word written is folded into one 64-bit lane (xor, multiply, rotate) and the count of
//! words is kept beside it; events are fed through `std::hash::Hash`, so message and timer
//! types only need `#[derive(Hash)]`. The hasher is ours and unkeyed, so the digest is the
//! same on every run: same scenario + seed + regsim version => same digest. 64 bits leave a
//! 2^-64 chance that a diverging run goes unnoticed, ample for determinism checks; a second
//! lane (tried first) cost ~4 % of the engine's time on the heartbeat workload.

use std::hash::Hasher;

#[derive(Clone, Debug)]
pub struct Digest {
    a: u64,
    words: u64,
}

impl Default for Digest {
    fn default() -> Self {
        Digest { a: 0x243F_6A88_85A3_08D3, words: 0 }
    }
}

impl Digest {
    #[inline]
    pub fn fold(&mut self, word: u64) {
        self.a = (self.a ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        self.words += 1;
    }

    /// The lane after a final mix with the word count: 16 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", super::rng::mix64(self.a ^ super::rng::mix64(self.words)))
    }
}

impl Hasher for Digest {
    fn finish(&self) -> u64 {
        self.a
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
    fn write_u16(&mut self, i: u16) {
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
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.fold(i as u64);
    }
}

/// A hasher that folds `tag` into the first word written through it: hashing a nested enum's
/// inner value through `Tagged` (outer discriminant as `tag`, the inner enum's discriminant as
/// its first word) costs one fold for both discriminants instead of two. The digest folds
/// every word of every processed event, so one fold less per event is measurable.
pub struct Tagged<'a, H> {
    state: &'a mut H,
    tag: Option<u64>,
}

impl<'a, H: Hasher> Tagged<'a, H> {
    #[inline]
    pub fn new(state: &'a mut H, tag: u8) -> Self {
        Tagged { state, tag: Some(u64::from(tag)) }
    }
    #[inline]
    fn word(&mut self, w: u64) {
        match self.tag.take() {
            // The first word is a discriminant or a small field in practice; any 64-bit value
            // still hashes deterministically (the tag's bits are mixed in above bit 56).
            Some(t) => self.state.write_u64(w ^ (t << 56)),
            None => self.state.write_u64(w),
        }
    }
}

impl<H: Hasher> Hasher for Tagged<'_, H> {
    fn finish(&self) -> u64 {
        self.state.finish()
    }
    fn write(&mut self, bytes: &[u8]) {
        if let Some(t) = self.tag.take() {
            self.state.write_u64(t << 56);
        }
        self.state.write(bytes);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.word(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.word(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.word(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.word(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.word(i as u64);
    }
    #[inline]
    fn write_isize(&mut self, i: isize) {
        self.word(i as u64);
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.word(i as u64);
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
        assert_eq!(h(&[]).len(), 16);
        assert_ne!(h(&[0]), h(&[0, 0]), "the word count is part of the digest");
    }

    #[test]
    fn tagged_folds_the_tag_into_the_first_word() {
        let hex = |tag: u8, v: (u8, u32)| {
            let mut d = Digest::default();
            v.hash(&mut Tagged::new(&mut d, tag));
            d.hex()
        };
        // Same inner value, other tag; other inner value, same tag: all differ.
        assert_ne!(hex(1, (1, 7)), hex(2, (1, 7)));
        assert_ne!(hex(1, (1, 7)), hex(1, (2, 7)));
        assert_ne!(hex(1, (1, 7)), hex(1, (1, 8)));
        assert_eq!(hex(3, (1, 7)), hex(3, (1, 7)));
        // One word fewer than hashing the tag on its own.
        let mut plain = Digest::default();
        (3u8, (1u8, 7u32)).hash(&mut plain);
        let mut tagged = Digest::default();
        (1u8, 7u32).hash(&mut Tagged::new(&mut tagged, 3));
        assert_eq!(tagged.words + 1, plain.words);
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
