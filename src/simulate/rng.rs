//! Named random streams. Every decision draws from a stream keyed by what
//! it decides and for which truck and day, so that the fleet does not change
//! when an unrelated part of the simulation draws one more number, and any
//! truck's day can be recomputed on its own (the planner looks ahead at
//! days the generator reaches later).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a stream decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Truck = 2,
    Duty = 3,
    Scenario = 4,
    Services = 5,
    Noise = 6,
    Gateway = 7,
    Glitch = 8,
    Garbage = 9,
}

/// The root seed of one simulation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seeds {
    seed: u64,
}

impl Seeds {
    pub(crate) const fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// The stream for `purpose` of (`a`, `b`), e.g. (truck, day). The key
    /// is the ChaCha key itself rather than `seed_from_u64`, whose seed
    /// expansion is not part of ChaCha's value-stability promise.
    pub(crate) fn rng(&self, purpose: Purpose, a: u64, b: u64) -> ChaCha8Rng {
        let mut key = [0u8; 32];
        for (chunk, word) in key
            .chunks_exact_mut(8)
            .zip([self.seed, purpose as u64, a, b])
        {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        ChaCha8Rng::from_seed(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_repeatable_and_independent() {
        let s = Seeds::new(7);
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = s.rng(Purpose::Duty, 1, 2);
                move |_| r.next_u64()
            })
            .collect();
        let mut again = s.rng(Purpose::Duty, 1, 2);
        assert_eq!(a, (0..4).map(|_| again.next_u64()).collect::<Vec<_>>());
        assert_ne!(a[0], s.rng(Purpose::Duty, 2, 1).next_u64());
        assert_ne!(a[0], s.rng(Purpose::Noise, 1, 2).next_u64());
        assert_ne!(a[0], Seeds::new(8).rng(Purpose::Duty, 1, 2).next_u64());
    }

    // The first word of a fixed key: a change of ChaCha8 output (a
    // dependency update) would silently change every simulated fleet.
    #[test]
    fn chacha_output_is_pinned() {
        let first = Seeds::new(1).rng(Purpose::Truck, 0, 0).next_u64();
        assert_eq!(first, PINNED_FIRST_WORD, "{first:#x}");
    }

    const PINNED_FIRST_WORD: u64 = 0x546a_768e_304f_f33a;
}
