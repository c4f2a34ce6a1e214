//! The `Date` response header value (IMF-fixdate), formatted at most once per second per thread.
use std::cell::RefCell;

use crate::clock::{civil_from_unix, unix_now, MONTHS, WEEKDAYS};

thread_local! {
    static CACHE: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
}

pub fn imf_fixdate(secs: i64) -> String {
    let c = civil_from_unix(secs);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[c.weekday as usize],
        c.day,
        MONTHS[c.month as usize - 1],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// Appends the current date to `out`.
pub fn push_now(out: &mut Vec<u8>) {
    let now = unix_now();
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != now {
            *cache = (now, imf_fixdate(now));
        }
        out.extend_from_slice(cache.1.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc9110_example() {
        assert_eq!(
            super::imf_fixdate(784_111_777),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }
}
