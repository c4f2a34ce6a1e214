//! Wall-clock arithmetic shared by the HTTP Date header and the logs: Unix seconds to a UTC civil
//! date. Pure; reads no clock and knows no format.

/// A UTC calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday .. 6 = Saturday
    pub weekday: u32,
}

pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
pub const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// Converts seconds since the Unix epoch to UTC (Howard Hinnant's days-to-civil algorithm).
pub fn civil_from_unix(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem / 60 % 60,
        second: rem % 60,
        weekday: (days + 4).rem_euclid(7) as u32,
    }
}

/// Seconds since the Unix epoch now.
pub fn unix_now() -> i64 {
    // Whole seconds (the Date header of every response): the coarse clock is enough and cheaper.
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME_COARSE)
        .map(|now| now.tv_sec())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let c = civil_from_unix(secs);
            assert_eq!(
                (c.year, c.month, c.day, c.hour, c.minute, c.second),
                want,
                "{secs}"
            );
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
            let c = civil_from_unix(days * 86_400 + 3_661);
            let (cy, cm, cd) = (c.year, c.month, c.day);
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
    fn epoch_is_thursday_first_of_january_1970() {
        let c = civil_from_unix(0);
        assert_eq!((c.year, c.month, c.day, c.weekday), (1970, 1, 1, 4));
    }

    #[test]
    fn known_dates_convert() {
        // 2000-02-29 12:34:56 UTC, a leap day in a century leap year.
        let c = civil_from_unix(951_827_696);
        assert_eq!((c.year, c.month, c.day), (2000, 2, 29));
        assert_eq!((c.hour, c.minute, c.second, c.weekday), (12, 34, 56, 2));
        // 2026-11-26 00:00:00 UTC was a Thursday.
        let c = civil_from_unix(1_795_651_200);
        assert_eq!((c.year, c.month, c.day, c.weekday), (2026, 11, 26, 4));
    }

    #[test]
    fn before_epoch_rolls_back() {
        let c = civil_from_unix(-1);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (1969, 12, 31, 23, 59, 59)
        );
    }
}
