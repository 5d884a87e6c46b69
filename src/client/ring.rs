//! Consistent hashing for sticky keys (Envoy's `RING_HASH`, Karger et al.).
//!
//! Every endpoint owns [`VNODES`] points on a 64-bit ring; a key goes to the
//! owner of the first point at or after its hash. When an endpoint leaves
//! (ejected, breaker open) only the keys it owned move, to the next owners
//! along the ring; everyone else's keys stay put. Hashes are FNV-1a
//! ([`crate::fnv`]) with a SplitMix64 finaliser: stable across builds and
//! platforms, which a consistent hash must be.

/// Points per endpoint: enough that 100 endpoints share the ring within a
/// few percent of evenly.
pub const VNODES: usize = 160;

/// A stable 64-bit hash of `bytes`.
pub fn hash(bytes: &[u8]) -> u64 {
    mix(crate::fnv::fnv1a64(bytes))
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The ring over a list of endpoint ids (indices into that list).
#[derive(Clone, Debug, Default)]
pub struct Ring {
    points: Vec<(u64, u32)>,
}

impl Ring {
    /// Builds the ring for `ids`.
    pub fn new<'a>(ids: impl IntoIterator<Item = &'a str>) -> Self {
        let mut points = Vec::new();
        for (i, id) in ids.into_iter().enumerate() {
            let base = hash(id.as_bytes());
            for v in 0..VNODES as u64 {
                points.push((mix(base ^ mix(v + 1)), i as u32));
            }
        }
        points.sort_unstable();
        Self { points }
    }

    /// The first endpoint at or after `key`'s place on the ring for which
    /// `usable` holds; `None` if none does.
    pub fn pick(&self, key: &[u8], usable: impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let h = hash(key);
        let start = self.points.partition_point(|&(p, _)| p < h);
        let n = self.points.len();
        (0..n)
            .map(|k| self.points[(start + k) % n].1 as usize)
            .find(|&i| usable(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("api-{i}")).collect()
    }

    #[test]
    fn same_key_same_endpoint_and_an_even_spread() {
        let names = ids(10);
        let ring = Ring::new(names.iter().map(String::as_str));
        let mut counts = [0u32; 10];
        for k in 0..100_000u32 {
            let key = format!("user-{k}");
            let i = ring.pick(key.as_bytes(), |_| true).unwrap();
            assert_eq!(ring.pick(key.as_bytes(), |_| true), Some(i));
            counts[i] += 1;
        }
        for c in counts {
            assert!((7_500..12_500).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn removing_an_endpoint_moves_only_its_keys() {
        let names = ids(10);
        let ring = Ring::new(names.iter().map(String::as_str));
        let mut moved = 0;
        for k in 0..20_000u32 {
            let key = format!("session-{k}");
            let before = ring.pick(key.as_bytes(), |_| true).unwrap();
            let after = ring.pick(key.as_bytes(), |i| i != 3).unwrap();
            if before != 3 {
                assert_eq!(before, after, "{key} moved without cause");
            } else {
                moved += 1;
                assert_ne!(after, 3);
            }
        }
        assert!((1_200..2_800).contains(&moved), "{moved}");
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(hash(b""), mix(crate::fnv::fnv1a64(b"")));
        assert_eq!(hash(b"a"), hash(b"a"));
        assert_ne!(hash(b"a"), hash(b"b"));
        assert!(Ring::default().pick(b"x", |_| true).is_none());
    }
}
