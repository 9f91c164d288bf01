//! The timestamps storage APIs use (feature `time`):
//!
//! | form | example | where |
//! |---|---|---|
//! | RFC 3339 | `2009-10-12T17:50:30.000Z`, `2019-02-01T10:00:00+01:00` | S3 `ListObjectsV2` `LastModified`, GCS JSON `updated`, Azure SAS `st`/`se` |
//! | IMF-fixdate (RFC 9110 §5.6.7, the RFC 1123 form) | `Mon, 12 Oct 2009 17:50:30 GMT` | `Last-Modified`, `Date`, Azure `x-ms-date` and listings |
//! | ISO 8601 basic, UTC | `20190201` and `20190201T090000Z` | the date and timestamp of AWS SigV4 and Google V4 signatures |
//!
//! Instants are Unix time (UTC, no leap seconds): milliseconds since the epoch for the
//! `last-modified` of an [`Entry`](crate::Entry), seconds for signing, [`SystemTime`] otherwise.
//! Parsers return `None` for anything they cannot read, including instants before 1970.
//!
//! The calendar (days of months, leap years, Unix time conversions) and the RFC 3339 parser are
//! the `time` crate's. The fixed-width forms are split and written field by field here rather than
//! through `time`'s format descriptions (features `formatting`, `macros`), which add about 57 KB to
//! every adapter component.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::time::format_description::well_known::Rfc3339;
use ::time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Month names of IMF-fixdate, `Jan` = January.
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Weekday names of IMF-fixdate, from Monday.
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Seconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Milliseconds since the epoch of `instant`, sub-millisecond digits dropped; `None` before 1970.
fn millis(instant: OffsetDateTime) -> Option<u64> {
    u64::try_from(instant.unix_timestamp_nanos() / 1_000_000).ok()
}

/// `instant` in UTC. Instants past year 9999 (out of the formats' range) read as the last second
/// of 9999.
fn utc(instant: SystemTime) -> OffsetDateTime {
    let max = PrimitiveDateTime::MAX.assume_utc();
    if instant.duration_since(UNIX_EPOCH).is_ok_and(|d| d.as_secs() >= max.unix_timestamp().unsigned_abs()) {
        return max;
    }
    OffsetDateTime::from(instant)
}

/// Milliseconds since the epoch of an RFC 3339 timestamp (`2009-10-12T17:50:30.000Z`,
/// `2026-11-30T12:57:54.978481Z`, `2019-02-01T10:00:00+01:00`), surrounding white space ignored.
/// S3 lists `LastModified` in this form
/// (<https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html>), GCS its `updated`
/// (<https://cloud.google.com/storage/docs/json_api/v1/objects>).
pub fn rfc3339_millis(value: &str) -> Option<u64> {
    OffsetDateTime::parse(value.trim(), &Rfc3339).ok().and_then(millis)
}

/// Milliseconds since the epoch of an IMF-fixdate (`Mon, 12 Oct 2009 17:50:30 GMT`), surrounding
/// white space ignored: the `Last-Modified` header of S3, GCS and Azure, and `Last-Modified` in
/// Azure's List Blobs. The weekday is not checked against the date (the date is complete without
/// it), as S3's and GCS's clients read `Last-Modified`.
pub fn http_date_millis(value: &str) -> Option<u64> {
    let mut parts = value.split_whitespace();
    let weekday = parts.next()?.strip_suffix(',')?;
    let day = parts.next()?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)?;
    let year = parts.next()?;
    let (hour, rest) = parts.next()?.split_once(':')?;
    let (minute, second) = rest.split_once(':')?;
    if !WEEKDAYS.contains(&weekday) || parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    let month = Month::try_from(u8::try_from(month + 1).ok()?).ok()?;
    let date = Date::from_calendar_date(digits(year, 4)?, month, digits(day, 2)?).ok()?;
    let time = Time::from_hms(digits(hour, 2)?, digits(minute, 2)?, digits(second, 2)?).ok()?;
    millis(PrimitiveDateTime::new(date, time).assume_utc())
}

/// `value` if it is exactly `width` ASCII digits.
fn digits<T: std::str::FromStr>(value: &str, width: usize) -> Option<T> {
    (value.len() == width && value.bytes().all(|b| b.is_ascii_digit())).then(|| value.parse().ok()).flatten()
}

/// `instant` as an IMF-fixdate (`Mon, 12 Oct 2009 17:50:30 GMT`), e.g. Azure's `x-ms-date`.
pub fn http_date(instant: SystemTime) -> String {
    let t = utc(instant);
    let weekday = WEEKDAYS[usize::from(t.weekday().number_days_from_monday())];
    let month = MONTHS[usize::from(u8::from(t.month())) - 1];
    let (year, day, (h, m, s)) = (t.year(), t.day(), t.to_hms());
    format!("{weekday}, {day:02} {month} {year:04} {h:02}:{m:02}:{s:02} GMT")
}

/// `instant` as RFC 3339 in UTC, to the second (`2009-10-12T17:50:30Z`): Azure SAS `st` and `se`.
pub fn rfc3339_seconds(instant: SystemTime) -> String {
    let t = utc(instant);
    let (year, month, day, (h, m, s)) = (t.year(), u8::from(t.month()), t.day(), t.to_hms());
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// `(YYYYMMDD, YYYYMMDDTHHMMSSZ)` of Unix time `secs`, UTC: the date of a signing scope and the
/// timestamp of a signature (AWS SigV4 `x-amz-date`, Google V4 `X-Goog-Date`).
pub fn basic_stamps(secs: u64) -> (String, String) {
    let t = utc(UNIX_EPOCH.checked_add(Duration::from_secs(secs)).unwrap_or(UNIX_EPOCH));
    let date = format!("{:04}{:02}{:02}", t.year(), u8::from(t.month()), t.day());
    let (h, m, s) = t.to_hms();
    let timestamp = format!("{date}T{h:02}{m:02}{s:02}Z");
    (date, timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn rfc3339_parsing() {
        assert_eq!(rfc3339_millis("2019-02-01T09:00:00Z"), Some(1_549_011_600_000));
        assert_eq!(rfc3339_millis(" 2009-10-12T17:50:30.000Z "), Some(1_255_369_830_000));
        assert_eq!(rfc3339_millis("2019-02-01T09:00:00.978481Z"), Some(1_549_011_600_978));
        assert_eq!(rfc3339_millis("2019-02-01T09:00:00.5Z"), Some(1_549_011_600_500));
        assert_eq!(rfc3339_millis("2019-02-01T10:00:00+01:00"), Some(1_549_011_600_000));
        assert_eq!(rfc3339_millis("2019-02-01T08:30:00-00:30"), Some(1_549_011_600_000));
        assert_eq!(rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        let bad = [
            "",
            "garbage",
            "2019-02-01",
            "2019-13-01T00:00:00Z",
            "2019-02-30T00:00:00Z",
            "x019-02-01T00:00:00Z",
            "2019-02-01T09:00Z",
            "1969-12-31T23:59:59Z",
        ];
        for bad in bad {
            assert_eq!(rfc3339_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn http_date_parsing() {
        assert_eq!(http_date_millis("Mon, 12 Oct 2009 17:50:30 GMT"), Some(1_255_369_830_000));
        assert_eq!(http_date_millis("Fri, 01 Feb 2019 09:00:00 GMT "), Some(1_549_011_600_000));
        // A wrong weekday does not make the date unreadable.
        assert_eq!(http_date_millis("Wed, 12 Oct 2009 17:50:30 GMT"), Some(1_255_369_830_000));
        let bad = [
            "",
            "garbage",
            "2019-02-01T09:00:00Z",
            "Fri, 01 Fob 2019 09:00:00 GMT",
            "Fri, 32 Jan 2019 09:00:00 GMT",
            "Sun, 29 Feb 2009 00:00:00 GMT",
            "Mon, 12 Oct 2009 24:00:00 GMT",
            "Mon 12 Oct 2009 17:50:30 GMT",
            "Xyz, 12 Oct 2009 17:50:30 GMT",
            "Mon, 2 Oct 2009 17:50:30 GMT",
            "Mon, 12 Oct 2009 17:50:30 UTC",
            "Mon, 12 Oct 2009 17:50:30",
            "Mon, 12 Oct 2009 17:50:30 GMT extra",
            "Monday, 12-Oct-09 17:50:30 GMT",
        ];
        for bad in bad {
            assert_eq!(http_date_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn formatting() {
        assert_eq!(http_date(at(1_255_369_830)), "Mon, 12 Oct 2009 17:50:30 GMT");
        assert_eq!(http_date(at(1_255_369_830) + Duration::from_millis(999)), "Mon, 12 Oct 2009 17:50:30 GMT");
        assert_eq!(rfc3339_seconds(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_seconds(at(1_255_369_830)), "2009-10-12T17:50:30Z");
        assert_eq!(rfc3339_seconds(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_seconds(at(4_102_444_799)), "2099-12-31T23:59:59Z");
        assert_eq!(rfc3339_seconds(at(u64::MAX / 4)), "9999-12-31T23:59:59Z");
        assert_eq!(basic_stamps(1_549_011_600), ("20190201".into(), "20190201T090000Z".into()));
        assert_eq!(basic_stamps(0), ("19700101".into(), "19700101T000000Z".into()));
        assert_eq!(basic_stamps(951_782_400), ("20000229".into(), "20000229T000000Z".into()));
    }

    /// What is written reads back.
    #[test]
    fn round_trips() {
        let t = at(1_700_000_000);
        assert_eq!(http_date_millis(&http_date(t)), Some(1_700_000_000_000));
        assert_eq!(rfc3339_millis(&rfc3339_seconds(t)), Some(1_700_000_000_000));
    }
}
