//! Alarm hysteresis: a score becomes an alarm when it reaches `raise`, and
//! the alarm ends only after `clear_points` consecutive points below
//! `clear`. A noisy score near the threshold therefore produces one alarm,
//! not a flapping series of them. Used by the predictor for its decisions and
//! by the detector evaluation, so both count alarms the same way.

use serde::{Deserialize, Serialize};

/// Thresholds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hysteresis {
    /// Score at or above which an alarm is raised.
    pub raise: f64,
    /// Score below which a point counts towards clearing.
    pub clear: f64,
    /// Consecutive points below `clear` that end an alarm.
    pub clear_points: u32,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Self {
            raise: 0.5,
            clear: 0.3,
            clear_points: 5,
        }
    }
}

/// A change of alarm state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// The alarm started.
    Raised,
    /// The alarm ended.
    Cleared,
}

/// One alarm's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    on: bool,
    calm: u32,
}

impl Alarm {
    /// Whether the alarm is raised.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Folds in a score; returns the edge, if any.
    pub fn update(&mut self, score: f64, h: &Hysteresis) -> Option<Edge> {
        if !self.on {
            if score >= h.raise {
                self.on = true;
                self.calm = 0;
                return Some(Edge::Raised);
            }
            return None;
        }
        if score < h.clear {
            self.calm += 1;
            if self.calm >= h.clear_points {
                self.on = false;
                self.calm = 0;
                return Some(Edge::Cleared);
            }
        } else {
            self.calm = 0;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_noisy_score_near_the_threshold_raises_once() {
        let h = Hysteresis::default();
        let mut a = Alarm::default();
        let scores = [0.1, 0.55, 0.45, 0.52, 0.35, 0.6, 0.2, 0.1, 0.1, 0.1, 0.29];
        let edges: Vec<_> = scores.iter().filter_map(|&s| a.update(s, &h)).collect();
        assert_eq!(edges, vec![Edge::Raised, Edge::Cleared]);
        assert!(!a.is_on());
    }

    #[test]
    fn one_calm_point_is_not_enough() {
        let h = Hysteresis::default();
        let mut a = Alarm::default();
        a.update(0.9, &h);
        for _ in 0..4 {
            assert_eq!(a.update(0.0, &h), None);
        }
        assert_eq!(a.update(0.31, &h), None);
        assert!(a.is_on());
    }
}
