//! Lengths of simulated time as scenario files write them: `250ms`, `90s`,
//! `10m`, `1h30m`, or a bare number of seconds.
//!
//! The simulator keeps time in whole milliseconds so that every run with the
//! same seed sees exactly the same instants; a span finer than that is an
//! error, not a rounding.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A length of simulated time, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(pub u64);

impl Span {
    /// `s` whole seconds.
    pub const fn secs(s: u64) -> Self {
        Self(s * 1000)
    }

    /// Milliseconds.
    pub const fn ms(self) -> u64 {
        self.0
    }

    /// Seconds, as a float (for rates and reports).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Parses `250ms`, `90s`, `10m`, `2h`, `1h30m`, `1.5s`, or `42` (seconds).
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err("an empty duration (write e.g. 90s, 10m or 1h)".into());
        }
        if let Ok(secs) = t.parse::<f64>() {
            return from_secs(secs, text);
        }
        let mut total = 0.0;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| format!("'{text}' has a number without a unit (ms, s, m or h)"))?;
            if digits == 0 {
                return Err(format!(
                    "'{text}' is not a duration (write e.g. 250ms, 90s, 10m or 1h30m)"
                ));
            }
            let number: f64 = rest[..digits]
                .parse()
                .map_err(|_| format!("'{}' in '{text}' is not a number", &rest[..digits]))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let scale = match &rest[..unit_len] {
                "ms" => 0.001,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                other => {
                    return Err(format!(
                        "'{other}' in '{text}' is not a unit (use ms, s, m or h)"
                    ))
                }
            };
            total += number * scale;
            rest = &rest[unit_len..];
        }
        from_secs(total, text)
    }
}

fn from_secs(secs: f64, text: &str) -> Result<Span, String> {
    let ms = secs * 1000.0;
    if !ms.is_finite() || ms < 0.0 {
        return Err(format!("'{text}' is not a length of time at or above 0"));
    }
    if ms.fract() != 0.0 {
        return Err(format!(
            "'{text}' is finer than a millisecond, the simulator's resolution"
        ));
    }
    if ms > u64::MAX as f64 / 2.0 {
        return Err(format!("'{text}' is too long"));
    }
    Ok(Span(ms as u64))
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms % 3_600_000 == 0 && ms > 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms % 60_000 == 0 && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        let parsed = match Raw::deserialize(d)? {
            Raw::Number(n) => from_secs(n, &n.to_string()),
            Raw::Text(t) => Span::parse(&t),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_combine_and_bare_numbers_are_seconds() {
        assert_eq!(Span::parse("250ms"), Ok(Span(250)));
        assert_eq!(Span::parse("90s"), Ok(Span(90_000)));
        assert_eq!(Span::parse("10m"), Ok(Span(600_000)));
        assert_eq!(Span::parse("1h30m"), Ok(Span(5_400_000)));
        assert_eq!(Span::parse("1.5s"), Ok(Span(1500)));
        assert_eq!(Span::parse("42"), Ok(Span(42_000)));
        assert_eq!(Span::parse("0"), Ok(Span(0)));
    }

    #[test]
    fn bad_spans_say_what_is_wrong() {
        assert!(Span::parse("10x").unwrap_err().contains("'x'"));
        assert!(Span::parse("ten minutes")
            .unwrap_err()
            .contains("not a duration"));
        assert!(Span::parse("10").is_ok());
        assert!(Span::parse("5 ").is_ok());
        assert!(Span::parse("0.1ms").unwrap_err().contains("millisecond"));
        assert!(Span::parse("-5s").unwrap_err().contains("not a duration"));
        assert!(Span::parse("").unwrap_err().contains("empty"));
    }

    #[test]
    fn display_picks_the_largest_whole_unit() {
        for (ms, text) in [
            (0, "0s"),
            (250, "250ms"),
            (90_000, "90s"),
            (600_000, "10m"),
            (7_200_000, "2h"),
        ] {
            assert_eq!(Span(ms).to_string(), text);
            assert_eq!(Span::parse(text), Ok(Span(ms)));
        }
    }
}
