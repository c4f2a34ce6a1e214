//! Validation of the process settings that are not plain numbers or flags: `umask` (gunicorn's
//! auto_int: 0o22, 022, 0x12 or 18), `socket_mode` (octal, as for chmod) and the `user` /
//! `group` names. Pure: names are checked for shape only; `privileges::resolve` looks them up.
use crate::{Error, Result};

const UMASK_ALLOWED: &str =
    "an integer from 0 to 0o777: octal as 0o22 or 022, hexadecimal as 0x12, or decimal";
const SOCKET_MODE_ALLOWED: &str = "an octal file mode from 0 to 777, such as 660 or 0o660";

/// The umask; unset is 0, gunicorn's default.
pub fn umask(value: Option<&str>) -> Result<u32> {
    let Some(value) = value else {
        return Ok(0);
    };
    auto_int(value)
        .filter(|&mask| mask <= 0o777)
        .ok_or_else(|| Error::config("umask", value, UMASK_ALLOWED))
}

/// Python's int(x, 0) after gunicorn's rewrite of a leading `0` to `0o`.
fn auto_int(value: &str) -> Option<u32> {
    let lower = value.trim().to_ascii_lowercase();
    let (digits, radix) = if let Some(rest) = lower.strip_prefix("0o") {
        (rest, 8)
    } else if let Some(rest) = lower.strip_prefix("0x") {
        (rest, 16)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (rest, 2)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (&lower[1..], 8)
    } else {
        (lower.as_str(), 10)
    };
    let plain = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_alphanumeric());
    plain
        .then(|| u32::from_str_radix(digits, radix).ok())
        .flatten()
}

/// The mode for unix socket files; unset leaves the mode that bind and the umask give.
pub fn socket_mode(value: Option<&str>) -> Result<Option<u32>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let trimmed = value.trim();
    let digits = trimmed.strip_prefix("0o").unwrap_or(trimmed);
    let octal = !digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
    octal
        .then(|| u32::from_str_radix(digits, 8).ok())
        .flatten()
        .filter(|&mode| mode <= 0o777)
        .map(Some)
        .ok_or_else(|| Error::config("socket_mode", value, SOCKET_MODE_ALLOWED))
}

/// `user` / `group`: trimmed and non-empty when set.
pub fn account(key: &str, value: Option<String>) -> Result<Option<String>> {
    match value.as_deref().map(str::trim) {
        None => Ok(None),
        Some("") => Err(Error::config(
            key,
            "",
            format!("a {key} name or a numeric id"),
        )),
        Some(name) => Ok(Some(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umask_reads_like_gunicorn() {
        let cases = [
            (None, 0),
            (Some("0"), 0),
            (Some("18"), 18),
            (Some("022"), 0o22),
            (Some("0022"), 0o22),
            (Some("0o027"), 0o27),
            (Some("0O77"), 0o77),
            (Some("0x12"), 0x12),
            (Some("0b101"), 5),
            (Some(" 077 "), 0o77),
            (Some("511"), 0o777),
        ];
        for (value, want) in cases {
            assert_eq!(umask(value).unwrap(), want, "{value:?}");
        }
    }

    #[test]
    fn bad_umask_names_key_value_and_forms() {
        for bad in [
            "", "-1", "+1", "09", "0o8", "abc", "512", "0o1000", "0x", "1_0",
        ] {
            match umask(Some(bad)) {
                Err(Error::Config {
                    key,
                    value,
                    allowed,
                }) => {
                    assert_eq!((key.as_str(), value.as_str()), ("umask", bad));
                    assert!(allowed.contains("0o22"), "{allowed}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn socket_mode_is_octal() {
        assert_eq!(socket_mode(None).unwrap(), None);
        for (value, want) in [("660", 0o660), ("0660", 0o660), ("0o600", 0o600), ("7", 7)] {
            assert_eq!(socket_mode(Some(value)).unwrap(), Some(want), "{value}");
        }
        for bad in ["", "888", "1777", "rw-rw----", "0x1ff", "-660"] {
            let err = socket_mode(Some(bad)).unwrap_err().to_string();
            assert!(
                err.contains("socket_mode") && err.contains("octal"),
                "{err}"
            );
        }
    }

    #[test]
    fn accounts_are_trimmed_and_not_empty() {
        assert_eq!(account("user", None).unwrap(), None);
        let name = account("user", Some(" www-data ".into())).unwrap();
        assert_eq!(name.as_deref(), Some("www-data"));
        let err = account("group", Some(" ".into())).unwrap_err().to_string();
        assert!(
            err.contains("`group`") && err.contains("group name"),
            "{err}"
        );
    }
}
