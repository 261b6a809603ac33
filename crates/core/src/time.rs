//! [`Timestamp`]: microseconds since the Unix epoch; RFC 3339 in JSON and in messages.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time with microsecond precision.
///
/// Every value the store writes must be readable again, and RFC 3339 has four-digit years: times computed
/// from outside input (a delay, a `Retry-After`) saturate at [`Timestamp::MAX`] (the last microsecond of
/// year 9999) and [`Timestamp::MIN`] (the first of year 0000), and a timestamp outside that range is written
/// as the nearest end of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// 9999-12-31T23:59:59.999999Z, the latest time RFC 3339 can write.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999_999);
    /// 0000-01-01T00:00:00Z, the earliest time RFC 3339 can write.
    pub const MIN: Timestamp = Timestamp(-62_167_219_200_000_000);

    /// The current wall-clock time.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(d.as_micros() as i64)
    }

    /// From whole seconds since the epoch.
    pub fn from_unix_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    /// Whole seconds since the epoch.
    pub fn unix_secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// This time plus a duration.
    pub fn plus(self, d: std::time::Duration) -> Self {
        Self(self.0.saturating_add(d.as_micros().min(i64::MAX as u128) as i64)).clamped()
    }

    /// Within [`Timestamp::MIN`]..=[`Timestamp::MAX`].
    pub fn clamped(self) -> Self {
        Self(self.0.clamp(Self::MIN.0, Self::MAX.0))
    }

    /// Microseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn micros_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0).max(0) as u64
    }

    /// Parses RFC 3339 (`2026-11-22T05:32:28Z`, `2026-11-22T06:32:28.5+01:00`). A time whose UTC year is
    /// outside 0000–9999 (`9999-12-31T23:59:59-01:00`) is refused: it could not be written back.
    pub fn parse_rfc3339(s: &str) -> Result<Self, String> {
        let t = OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|e| format!("expected an RFC 3339 time such as 2026-11-22T05:32:28Z, got {s:?} ({e})"))?;
        let micros = t.unix_timestamp_nanos() / 1_000;
        if micros < Self::MIN.0 as i128 || micros > Self::MAX.0 as i128 {
            return Err(format!(
                "{s:?} is outside the years 0000 to 9999 in UTC; give a time from {} to {}",
                Self::MIN.to_rfc3339(),
                Self::MAX.to_rfc3339()
            ));
        }
        Ok(Self(micros as i64))
    }

    /// RFC 3339 in UTC.
    /// Outside the range RFC 3339 can write, the nearest end of it.
    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(self.clamped().0 as i128 * 1_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| self.0.to_string())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // Versions before 0.1.1 wrote a time beyond year 9999 as its microseconds since the epoch: read
        // those back (saturated) instead of refusing the whole record.
        if let Ok(micros) = s.parse::<i64>() {
            return Ok(Self(micros).clamped());
        }
        Self::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let t = Timestamp::parse_rfc3339("2026-11-22T06:32:28.5+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T05:32:28.5Z");
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn far_times_saturate_and_read_back() {
        let ten_thousand_years = std::time::Duration::from_secs(10_000 * 366 * 86_400);
        let far = Timestamp::now().plus(ten_thousand_years);
        assert_eq!(far, Timestamp::MAX);
        assert_eq!(far.to_rfc3339(), "9999-12-31T23:59:59.999999Z");
        let back: Timestamp = serde_json::from_str(&serde_json::to_string(&far).unwrap()).unwrap();
        assert_eq!(back, far);
        assert_eq!(Timestamp(i64::MAX).to_rfc3339(), "9999-12-31T23:59:59.999999Z");
        assert_eq!(Timestamp(i64::MIN).to_rfc3339(), "0000-01-01T00:00:00Z");
        // What an earlier version wrote for such a time is read back, saturated.
        let legacy: Timestamp = serde_json::from_str("\"9223372036854775807\"").unwrap();
        assert_eq!(legacy, Timestamp::MAX);
    }

    /// Found by fuzzing: an offset moves a four-digit year out of 0000–9999 in UTC; such a time was
    /// accepted and then written back as another time (the nearest end of the range).
    #[test]
    fn times_outside_years_0000_to_9999_in_utc_are_refused() {
        for s in [
            "9999-12-31T23:59:59-00:01",
            "0000-01-01T00:00:00+00:01",
            "9999-12-31T23:59:59.9-23:59",
        ] {
            let err = Timestamp::parse_rfc3339(s).unwrap_err();
            assert!(err.contains("outside the years 0000 to 9999"), "{s}: {err}");
            assert!(serde_json::from_str::<Timestamp>(&format!("{s:?}")).is_err());
        }
        for s in [
            "9999-12-31T23:59:59.999999Z",
            "0000-01-01T00:00:00Z",
            "0000-01-01T00:00:00-01:00",
        ] {
            let t = Timestamp::parse_rfc3339(s).unwrap();
            assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Ok(t), "{s}");
        }
    }
}
