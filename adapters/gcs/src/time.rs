//! Calendar arithmetic for the timestamps GCS uses: RFC 3339 in JSON (`updated`), RFC 7231 dates
//! in headers (`Last-Modified`), and the compact UTC stamps of V4 signing (`20190201T090000Z`).
//! Proleptic Gregorian calendar, UTC, no leap seconds (as Unix time).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `(YYYYMMDD, YYYYMMDDTHHMMSSZ)` of Unix time `secs`, as V4 signing writes them.
pub fn stamps(secs: u64) -> (String, String) {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let date = format!("{y:04}{m:02}{d:02}");
    let time = format!("{date}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60);
    (date, time)
}

fn num(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn millis(year: i64, month: u32, day: u32, h: u32, min: u32, s: u32, ms: u32) -> Option<u64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + i64::from(h * 3600 + min * 60 + s);
    u64::try_from(secs).ok().map(|s| s * 1000 + u64::from(ms))
}

/// Milliseconds since the epoch of an RFC 3339 timestamp (`2026-11-30T12:57:54.978481Z`,
/// `...+01:00`), as GCS writes `updated` (<https://cloud.google.com/storage/docs/json_api/v1/objects>).
pub fn rfc3339_millis(value: &str) -> Option<u64> {
    let (date, rest) = value.trim().split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let (clock, offset_secs) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0i64)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (c, off) = rest.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        (c, sign * i64::from(num(oh)? * 3600 + num(om)? * 60))
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut t = hms.splitn(3, ':');
    let (h, min, s) = (num(t.next()?)?, num(t.next()?)?, num(t.next()?)?);
    let ms = if fraction.is_empty() { 0 } else { num(&format!("{fraction:0<3}")[..3])? };
    let local = millis(i64::from(y), m, day, h, min, s, ms)?;
    u64::try_from(local as i64 - offset_secs * 1000).ok()
}

/// Milliseconds since the epoch of an IMF-fixdate (`Mon, 30 Nov 2026 12:57:54 GMT`, RFC 7231 §7.1.1.1).
pub fn http_date_millis(value: &str) -> Option<u64> {
    let mut parts = value.split_whitespace().skip(1);
    let day = num(parts.next()?)?;
    let name = parts.next()?;
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = months.iter().position(|m| *m == name)? as u32 + 1;
    let year = num(parts.next()?)?;
    let mut t = parts.next()?.splitn(3, ':');
    let (h, min, s) = (num(t.next()?)?, num(t.next()?)?, num(t.next()?)?);
    millis(i64::from(year), month, day, h, min, s, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_stamps() {
        assert_eq!(stamps(1_549_011_600), ("20190201".into(), "20190201T090000Z".into()));
        assert_eq!(stamps(0), ("19700101".into(), "19700101T000000Z".into()));
        assert_eq!(stamps(951_782_400), ("20000229".into(), "20000229T000000Z".into()));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(rfc3339_millis("2019-02-01T09:00:00Z"), Some(1_549_011_600_000));
        assert_eq!(rfc3339_millis("2019-02-01T09:00:00.978481Z"), Some(1_549_011_600_978));
        assert_eq!(rfc3339_millis("2019-02-01T09:00:00.5Z"), Some(1_549_011_600_500));
        assert_eq!(rfc3339_millis("2019-02-01T10:00:00+01:00"), Some(1_549_011_600_000));
        assert_eq!(rfc3339_millis("2019-02-01T08:30:00-00:30"), Some(1_549_011_600_000));
        for bad in ["", "2019-02-01", "2019-13-01T00:00:00Z", "x019-02-01T00:00:00Z", "2019-02-01T09:00Z"] {
            assert_eq!(rfc3339_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date_millis("Fri, 01 Feb 2019 09:00:00 GMT"), Some(1_549_011_600_000));
        assert_eq!(http_date_millis("Fri, 01 Fob 2019 09:00:00 GMT"), None);
        assert_eq!(http_date_millis("garbage"), None);
    }
}
