//! gunicorn's two log timestamp layouts, in UTC. Pure formatting: never reads the clock itself.
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::clock::{civil_from_unix, MONTHS};

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
    let c = civil_from_unix(unix_secs(t));
    let (y, mo, d) = (c.year, c.month, c.day);
    let _ = write!(
        out,
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} +0000",
        c.hour, c.minute, c.second
    );
}

/// The access log's `[26/Nov/2026:12:00:00 +0000]`.
pub fn write_access_log_time(out: &mut String, t: SystemTime) {
    let c = civil_from_unix(unix_secs(t));
    let month = MONTHS[(c.month - 1) as usize];
    let (d, y) = (c.day, c.year);
    let _ = write!(
        out,
        "[{d:02}/{month}/{y:04}:{:02}:{:02}:{:02} +0000]",
        c.hour, c.minute, c.second
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
