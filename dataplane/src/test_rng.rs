//! A deterministic generator for randomized tests (xorshift64): the same
//! sequence on every run, so that a failure replays.

pub struct XorShift(pub u64);

impl Default for XorShift {
    fn default() -> Self {
        XorShift(0x9e37_79b9_7f4a_7c15)
    }
}

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
