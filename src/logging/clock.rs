//! UTC wall-clock formatting for log lines: the civil date of a Unix time and gunicorn's two
//! timestamp layouts. Pure arithmetic: never reads the clock itself.
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month 1-12, day 1-31, hour, minute, second) of a Unix time, in UTC.
///
/// Howard Hinnant's `civil_from_days`: counts in 400-year eras starting on March 1st so that
/// the leap day falls at the end of each year.
pub fn civil_from_unix(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let second_of_day = secs.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let (hour, minute, second) = (
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    (year, month, day, hour, minute, second)
}

/// Whole seconds since the epoch; times before it are negative.
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let before = e.duration();
            let whole = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            -whole - i64::from(before.subsec_nanos() > 0)
        }
    }
}

/// The error log's `2026-11-26 12:00:00 +0000`.
pub fn write_error_log_time(out: &mut String, t: SystemTime) {
    let (y, mo, d, h, mi, s) = civil_from_unix(unix_secs(t));
    let _ = write!(out, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000");
}

/// The access log's `[26/Nov/2026:12:00:00 +0000]`.
pub fn write_access_log_time(out: &mut String, t: SystemTime) {
    let (y, mo, d, h, mi, s) = civil_from_unix(unix_secs(t));
    let month = MONTHS[(mo - 1) as usize];
    let _ = write!(out, "[{d:02}/{month}/{y:04}:{h:02}:{mi:02}:{s:02} +0000]");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants() {
        let cases = [
            (0, (1970, 1, 1, 0, 0, 0)),
            (-1, (1969, 12, 31, 23, 59, 59)),
            (951_782_400, (2000, 2, 29, 0, 0, 0)),
            (1_709_251_199, (2024, 2, 29, 23, 59, 59)),
            (1_795_694_400, (2026, 11, 26, 12, 0, 0)),
            (4_107_542_400, (2100, 3, 1, 0, 0, 0)),
            (253_402_300_799, (9999, 12, 31, 23, 59, 59)),
            (-62_135_596_800, (1, 1, 1, 0, 0, 0)),
        ];
        for (secs, want) in cases {
            assert_eq!(civil_from_unix(secs), want, "{secs}");
        }
    }

    /// Walks day by day from 1900 to 2400 against a naive calendar.
    #[test]
    fn every_day_follows_the_previous_one() {
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_len = |y, m| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (mut y, mut m, mut d) = (1900, 1, 1);
        for days in -25_567..157_054_i64 {
            let (cy, cm, cd, ..) = civil_from_unix(days * 86_400 + 3_661);
            assert_eq!((cy, cm, cd), (y, m, d), "day {days}");
            d += 1;
            if d > month_len(y, m) {
                (d, m) = (1, m + 1);
            }
            if m > 12 {
                (m, y) = (1, y + 1);
            }
        }
    }

    #[test]
    fn both_layouts() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_694_400) + Duration::from_millis(999);
        let mut out = String::new();
        write_error_log_time(&mut out, t);
        out.push('|');
        write_access_log_time(&mut out, t);
        assert_eq!(
            out,
            "2026-11-26 12:00:00 +0000|[26/Nov/2026:12:00:00 +0000]"
        );
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_millis(500)), -1);
    }
}
