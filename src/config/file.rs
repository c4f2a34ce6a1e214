//! The TOML config file (-c): reads it into a `Partial`. Knows nothing of precedence or
//! validation; unknown keys and wrongly typed values are rejected here by serde.
use std::path::Path;

use super::partial::Partial;
use crate::{Error, Result};

/// Reads and parses the file at `path`.
pub fn read(path: &Path) -> Result<Partial> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

/// Parses TOML text; toml's message quotes the offending line, so it names the key and value.
pub fn parse(path: &Path, text: &str) -> Result<Partial> {
    toml::from_str(text).map_err(|err| Error::ConfigFile {
        path: path.to_owned(),
        message: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> String {
        match parse(Path::new("r.toml"), text) {
            Err(Error::ConfigFile { path, message }) => {
                assert_eq!(path, Path::new("r.toml"));
                message
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_key_is_named_with_the_allowed_keys() {
        let m = message("workers = 2\nwrokers = 4\n");
        assert!(m.contains("unknown field `wrokers`"), "{m}");
        assert!(
            m.contains("`workers`") && m.contains("`secure_scheme_headers`"),
            "{m}"
        );
    }

    #[test]
    fn wrong_type_names_key_and_value() {
        for (text, value) in [
            ("workers = \"four\"", "four"),
            ("preload_app = 1", "1"),
            ("bind = 8000", "8000"),
            ("timeout = \"30s\"", "30s"),
            ("limit_request_line = -1", "-1"),
        ] {
            let m = message(text);
            let key = text.split(' ').next().unwrap();
            assert!(m.contains(key) && m.contains(value), "{text}: {m}");
        }
    }

    #[test]
    fn malformed_toml_is_a_config_file_error() {
        assert!(message("workers = ").contains("line 1"));
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let err = read(Path::new("/nonexistent/rgunicorn.toml")).unwrap_err();
        assert!(matches!(err, Error::ConfigRead { .. }), "{err:?}");
    }
}
