//! What instances report: calls per caller edge, instance and version over
//! one window, with a latency histogram.
//!
//! The simulator counts every call into an accumulator for its (edge,
//! instance, version), as a sidecar on the caller's side would: a call the
//! caller gave up on is an error with the timeout as its latency. At each
//! window boundary the touched accumulators are read (by the faultline arm
//! as `faultline.window` events, by Flagger as canary metrics) and cleared.
//! Latencies go into log buckets, four per octave (about 19 % wide), which
//! is exact enough for p99 and costs one shift per call.

/// Buckets: 0.25 ms to about 1,000 s, four per octave.
const BUCKETS: usize = 88;
const FIRST: u64 = 0.25f64.to_bits() >> 50;

/// A latency histogram in log buckets.
#[derive(Clone, Debug, PartialEq)]
pub struct Hist {
    counts: [u32; BUCKETS],
    /// Values recorded.
    pub n: u64,
    /// Sum of values, ms.
    pub sum: f64,
    /// Largest value, ms.
    pub max: f64,
}

impl Default for Hist {
    fn default() -> Self {
        Self {
            counts: [0; BUCKETS],
            n: 0,
            sum: 0.0,
            max: 0.0,
        }
    }
}

impl Hist {
    /// Records `ms`.
    pub fn add(&mut self, ms: f64) {
        let v = ms.clamp(0.25, 1.0e6);
        let b = ((v.to_bits() >> 50) - FIRST) as usize;
        self.counts[b.min(BUCKETS - 1)] += 1;
        self.n += 1;
        self.sum += ms;
        self.max = self.max.max(ms);
    }

    /// Adds another histogram.
    pub fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.n += o.n;
        self.sum += o.sum;
        self.max = self.max.max(o.max);
    }

    /// The `q` quantile (0–1): the middle of its bucket, at most the max.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                let lo = f64::from_bits((b as u64 + FIRST) << 50);
                let hi = f64::from_bits((b as u64 + FIRST + 1) << 50);
                return Some(((lo + hi) / 2.0).min(self.max));
            }
        }
        Some(self.max)
    }

    /// Mean, ms.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// Calls counted for one (edge, instance, version).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Acc {
    /// Calls.
    pub requests: u64,
    /// Failed calls.
    pub errors: u64,
    /// Latencies as the caller saw them.
    pub latency: Hist,
}

/// Where one accumulator belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// The edge.
    pub edge: usize,
    /// The instance (global index).
    pub instance: usize,
    /// 0: the running version, 1: the new one.
    pub version: usize,
}

/// The accumulators of one window.
#[derive(Clone, Debug)]
pub struct Windows {
    accs: Vec<Acc>,
    keys: Vec<Key>,
    /// Per edge, its first slot; per instance of the callee, two versions.
    base: Vec<usize>,
    first_instance: Vec<usize>,
    touched: Vec<usize>,
}

impl Windows {
    /// Accumulators for `world`'s edges.
    pub fn new(w: &super::world::World) -> Self {
        let mut base = Vec::new();
        let mut keys = Vec::new();
        let mut first_instance = Vec::new();
        for (e, edge) in w.edges.iter().enumerate() {
            base.push(keys.len());
            let range = w.services[edge.to].instances.clone();
            first_instance.push(range.start);
            for instance in range {
                for version in 0..2 {
                    keys.push(Key {
                        edge: e,
                        instance,
                        version,
                    });
                }
            }
        }
        Self {
            accs: vec![Acc::default(); keys.len()],
            keys,
            base,
            first_instance,
            touched: Vec::new(),
        }
    }

    /// Counts one call.
    pub fn record(&mut self, edge: usize, instance: usize, version: usize, ok: bool, ms: f64) {
        let slot = self.base[edge] + (instance - self.first_instance[edge]) * 2 + version;
        let a = &mut self.accs[slot];
        if a.requests == 0 {
            self.touched.push(slot);
        }
        a.requests += 1;
        a.errors += u64::from(!ok);
        a.latency.add(ms);
    }

    /// The accumulators touched this window, in a fixed order.
    pub fn touched(&mut self) -> impl Iterator<Item = (Key, &Acc)> {
        self.touched.sort_unstable();
        self.touched.iter().map(|s| (self.keys[*s], &self.accs[*s]))
    }

    /// Clears the window.
    pub fn clear(&mut self) {
        for s in self.touched.drain(..) {
            self.accs[s] = Acc::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket() {
        let mut h = Hist::default();
        for i in 1..=1000 {
            h.add(f64::from(i));
        }
        let p50 = h.quantile(0.5).unwrap();
        let p99 = h.quantile(0.99).unwrap();
        assert!((p50 / 500.0 - 1.0).abs() < 0.12, "{p50}");
        assert!((p99 / 990.0 - 1.0).abs() < 0.12, "{p99}");
        let top = h.quantile(1.0).unwrap();
        assert!(top <= 1000.0 && top > 860.0, "{top}");
        assert_eq!(Hist::default().quantile(0.5), None);
        let mut tiny = Hist::default();
        tiny.add(0.0);
        assert_eq!(tiny.quantile(0.5), Some(0.0));
    }
}
