//! Event time.
//!
//! Every record carries its event time; agents never read a clock. Internally a
//! [`Timestamp`] is nanoseconds since the Unix epoch in UTC, so it orders, subtracts
//! and hashes cheaply. On the wire (JSON and msgpack alike) it is an RFC 3339 string,
//! as the contract requires. Input may carry any offset; output is always UTC with
//! `Z` and only as many fractional digits as needed, so the same instant always
//! encodes to the same bytes.

use std::fmt;

use schemars::JsonSchema;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// An instant in event time: nanoseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// Nanoseconds in one millisecond.
pub const NANOS_PER_MS: i64 = 1_000_000;
/// Nanoseconds in one second.
pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Why a string is not an event time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time {value:?} is not an RFC 3339 timestamp between 1678 and 2261 ({reason})")]
pub struct TimeError {
    /// The offending text.
    pub value: String,
    /// What the parser said.
    pub reason: String,
}

impl Timestamp {
    /// From nanoseconds since the epoch.
    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// From milliseconds since the epoch (saturating).
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms.saturating_mul(NANOS_PER_MS))
    }

    /// Nanoseconds since the epoch.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch, rounded towards negative infinity.
    pub const fn epoch_second(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SEC)
    }

    /// This instant plus `ms` milliseconds (saturating at the representable range).
    pub const fn plus_millis(self, ms: u64) -> Self {
        let ms = if ms > i64::MAX as u64 {
            i64::MAX
        } else {
            ms as i64
        };
        Self(self.0.saturating_add(ms.saturating_mul(NANOS_PER_MS)))
    }

    /// Milliseconds from `earlier` to `self` (negative when `earlier` is later).
    pub fn millis_since(self, earlier: Timestamp) -> f64 {
        (self.0 as f64 - earlier.0 as f64) / NANOS_PER_MS as f64
    }

    /// Parses RFC 3339 text with any offset.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        if let Some(t) = fast_utc(text.as_bytes()) {
            return Ok(t);
        }
        let err = |reason: String| TimeError {
            value: text.to_owned(),
            reason,
        };
        let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| err(e.to_string()))?;
        let nanos = i64::try_from(parsed.unix_timestamp_nanos())
            .map_err(|_| err("outside the representable range".into()))?;
        Ok(Self(nanos))
    }

    /// Canonical RFC 3339 text: UTC, `Z`, fractional digits only when non-zero.
    pub fn to_rfc3339(self) -> String {
        let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0))
            .expect("every i64 nanosecond count is within time's range");
        dt.format(&Rfc3339)
            .expect("RFC 3339 formatting of a UTC instant cannot fail")
    }
}

/// The common form `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z` without the general parser
/// (it dominated decoding in the `process` benchmark). Anything else, or any
/// out-of-range field, returns `None` and goes to the `time` crate's parser,
/// which also produces the error message.
fn fast_utc(b: &[u8]) -> Option<Timestamp> {
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let frac = &b[19..b.len() - 1];
    let nanos_frac = match frac {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let v = num(20..20 + digits.len())?;
            v * 10i64.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    // Days from civil (H. Hinnant), proleptic Gregorian.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    secs.checked_mul(NANOS_PER_SEC)?
        .checked_add(nanos_frac)
        .map(Timestamp)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 timestamp (event time)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_and_prints_canonical_utc() {
        let t = Timestamp::parse("2026-01-01T02:00:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-01T00:00:00Z");
        let t = Timestamp::parse("2026-01-01T00:00:00.250Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-01T00:00:00.25Z");
        assert_eq!(Timestamp::parse(&t.to_rfc3339()).unwrap(), t);
    }

    #[test]
    fn fast_path_agrees_with_the_general_parser() {
        let general = |s: &str| {
            let d = OffsetDateTime::parse(s, &Rfc3339).unwrap();
            Timestamp(i64::try_from(d.unix_timestamp_nanos()).unwrap())
        };
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let nanos = (x % 7_000_000_000_000_000_000) as i64 - 1_000_000_000_000_000_000;
            let text = Timestamp(nanos).to_rfc3339();
            assert_eq!(fast_utc(text.as_bytes()), Some(general(&text)), "{text}");
        }
        for s in [
            "2024-02-29T23:59:59.5Z",
            "1970-01-01T00:00:00Z",
            "2000-03-01T00:00:00.000000001Z",
        ] {
            assert_eq!(fast_utc(s.as_bytes()), Some(general(s)), "{s}");
        }
        for s in [
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00+00:00",
        ] {
            assert_eq!(fast_utc(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn rejects_garbage_with_the_value() {
        let err = Timestamp::parse("yesterday").unwrap_err();
        assert!(err.to_string().contains("\"yesterday\""), "{err}");
    }

    #[test]
    fn arithmetic() {
        let t = Timestamp::from_millis(1_500);
        assert_eq!(t.epoch_second(), 1);
        assert_eq!(t.plus_millis(500).nanos(), 2 * NANOS_PER_SEC);
        assert_eq!(Timestamp::from_millis(-1).epoch_second(), -1);
        assert_eq!(t.plus_millis(250).millis_since(t), 250.0);
    }
}
