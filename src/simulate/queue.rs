//! An instance's backlog as a fluid queue in 10 ms slots.
//!
//! Requests are followed depth first, so calls reach an instance out of
//! time order: a request's deep calls run a few hundred ms after its
//! arrival, and the next request's shallow calls land before them. A single
//! "busy until" time would make the second request wait for work placed in
//! its future. Instead work is added to the slot of its own time, and the
//! backlog a call meets is the fluid queue up to its slot,
//! `B(k) = max(0, B(k-1) + work(k) - slot)`, computed forward from the
//! *frontier*: the arrival time of the request being followed, before which
//! no further work can land (arrivals are processed in time order and calls
//! never go back in time). Slots behind the frontier are folded into a
//! carried backlog and reused, so memory is a fixed ring per instance.
//! Within a slot, work is counted whatever its order, an error of at most
//! one slot of work (10 ms).

/// Length of a slot, ms.
pub const SLOT_MS: f64 = 10.0;
/// Slots in the ring: 20 s ahead of the frontier (later work lands in the last).
const SLOTS: usize = 2048;

/// One instance's queue.
#[derive(Clone, Debug)]
pub struct Queue {
    work: Vec<f64>,
    /// Backlog at the start of slot `base`, ms.
    carry: f64,
    base: i64,
}

impl Default for Queue {
    fn default() -> Self {
        Self {
            work: vec![0.0; SLOTS],
            carry: 0.0,
            base: 0,
        }
    }
}

impl Queue {
    /// Folds every slot before `frontier` (ms) into the carried backlog.
    fn advance(&mut self, frontier: f64) {
        let f = (frontier / SLOT_MS) as i64;
        if f - self.base > SLOTS as i64 {
            // Idle longer than the ring: fold what is there, then jump.
            for _ in 0..SLOTS {
                self.fold();
            }
            self.base = f;
            return;
        }
        while self.base < f {
            self.fold();
        }
    }

    fn fold(&mut self) {
        let slot = &mut self.work[self.base as usize % SLOTS];
        self.carry = (self.carry + *slot - SLOT_MS).max(0.0);
        *slot = 0.0;
        self.base += 1;
    }

    /// The wait of a call arriving at `t` (ms) given work already placed,
    /// with `frontier` the earliest time any further call can arrive.
    pub fn wait(&mut self, frontier: f64, t: f64) -> f64 {
        self.advance(frontier);
        let k = ((t / SLOT_MS) as i64).clamp(self.base, self.base + SLOTS as i64 - 1);
        let mut b = self.carry;
        for s in self.base..k {
            b = (b + self.work[s as usize % SLOTS] - SLOT_MS).max(0.0);
        }
        let into = (t - k as f64 * SLOT_MS).max(0.0);
        (b + self.work[k as usize % SLOTS] - into).max(0.0)
    }

    /// Adds `work` ms at time `t` (after [`Queue::wait`] for the same call).
    pub fn add(&mut self, t: f64, work: f64) {
        let k = ((t / SLOT_MS) as i64).clamp(self.base, self.base + SLOTS as i64 - 1);
        self.work[k as usize % SLOTS] += work;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_capacity_nothing_waits_long() {
        let mut q = Queue::default();
        let mut worst: f64 = 0.0;
        for i in 0..10_000 {
            let t = f64::from(i) * 2.0;
            worst = worst.max(q.wait(t, t));
            q.add(t, 1.0);
        }
        assert!(worst <= 1.0, "{worst}");
    }

    #[test]
    fn over_capacity_the_backlog_grows_at_the_excess_rate() {
        let mut q = Queue::default();
        let mut last = 0.0;
        for i in 0..1_000 {
            let t = f64::from(i);
            last = q.wait(t, t);
            q.add(t, 1.5);
        }
        // 1,000 ms of arrivals bring 1,500 ms of work: about 500 ms behind.
        assert!((last - 500.0).abs() < 15.0, "{last}");
    }

    #[test]
    fn work_placed_in_the_future_does_not_delay_earlier_calls() {
        let mut q = Queue::default();
        q.add(300.0, 50.0);
        assert_eq!(q.wait(0.0, 5.0), 0.0);
        assert!(q.wait(0.0, 301.0) > 40.0);
        assert_eq!(q.wait(400.0, 400.0), 0.0, "drained by then");
    }
}
