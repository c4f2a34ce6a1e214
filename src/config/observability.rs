//! The observability settings' values: metrics_bind, statsd_host (gunicorn's forms),
//! statsd_prefix (gunicorn's normalisation) and dogstatsd_tags. Pure: every error names the key,
//! the value and what is allowed.
use std::path::PathBuf;

use super::bind::split_host_port;
use super::{BindSpec, StatsdTarget};
use crate::{Error, Result};

/// Like a `bind` address, but an inherited fd makes no sense for it and the empty string is off.
pub fn metrics_bind(value: Option<String>) -> Result<Option<BindSpec>> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match BindSpec::parse(value.trim()) {
        Ok(BindSpec::Fd(_)) | Err(_) => Err(Error::config(
            "metrics_bind",
            &value,
            "HOST:PORT, [IPV6]:PORT or unix:PATH",
        )),
        Ok(spec) => Ok(Some(spec)),
    }
}

/// gunicorn's `statsd_host`: HOST[:PORT] or [IPV6][:PORT] (port 8125 by default, as in
/// gunicorn), or a unix datagram socket as unix:PATH, unix://PATH or an absolute path.
/// `unix:PORT` is the host named unix, as gunicorn keeps it for compatibility.
pub fn statsd_host(value: Option<String>) -> Result<Option<StatsdTarget>> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let invalid = || Error::config("statsd_host", &value, "HOST[:PORT] or unix:PATH");
    let unix = value
        .strip_prefix("unix://")
        .or(value.strip_prefix("unix:"))
        .filter(|path| path.is_empty() || !path.bytes().all(|b| b.is_ascii_digit()));
    if let Some(path) = unix.or(value.starts_with('/').then_some(value.as_str())) {
        return match path.is_empty() {
            true => Err(invalid()),
            false => Ok(Some(StatsdTarget::Unix(PathBuf::from(path)))),
        };
    }
    let (host, port) = split_host_port(&value).ok_or_else(invalid)?;
    let port = match port {
        None => STATSD_DEFAULT_PORT,
        Some(port) => port.parse::<u16>().map_err(|_| invalid())?,
    };
    match host.is_empty() || port == 0 {
        true => Err(invalid()),
        false => Ok(Some(StatsdTarget::Udp {
            host: host.to_owned(),
            port,
        })),
    }
}

/// gunicorn's port for a statsd_host without one.
const STATSD_DEFAULT_PORT: u16 = 8125;

/// gunicorn ends a non-empty prefix with exactly one '.'.
pub fn statsd_prefix(value: Option<String>) -> Result<String> {
    let value = value.unwrap_or_default();
    let trimmed = value.trim().trim_end_matches('.');
    if trimmed.contains(|c: char| c.is_whitespace() || ":|@#".contains(c)) {
        return Err(Error::config(
            "statsd_prefix",
            &value,
            "a metric name prefix without spaces or :|@#",
        ));
    }
    Ok(match trimmed.is_empty() {
        true => String::new(),
        false => format!("{trimmed}."),
    })
}

pub fn dogstatsd_tags(value: Option<String>) -> Result<String> {
    let value = value.unwrap_or_default();
    let tags = value.trim();
    if tags.contains(|c: char| c.is_whitespace() || "|#@".contains(c)) {
        let allowed = "comma-separated tags (key:value) without spaces or |#@";
        return Err(Error::config("dogstatsd_tags", &value, allowed));
    }
    Ok(tags.trim_matches(',').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statsd_host_takes_gunicorns_forms() {
        let udp = |host: &str, port| {
            Some(StatsdTarget::Udp {
                host: host.into(),
                port,
            })
        };
        let unix = |path: &str| Some(StatsdTarget::Unix(PathBuf::from(path)));
        let parse = |v: &str| statsd_host(Some(v.to_owned())).unwrap();
        assert_eq!(parse("localhost:8125"), udp("localhost", 8125));
        assert_eq!(parse("[::1]:8125"), udp("::1", 8125));
        assert_eq!(parse("unix:/run/statsd.sock"), unix("/run/statsd.sock"));
        assert_eq!(parse("unix:///run/statsd.sock"), unix("/run/statsd.sock"));
        assert_eq!(parse("/run/statsd.sock"), unix("/run/statsd.sock"));
        assert_eq!(parse(""), None);
        assert_eq!(parse("localhost"), udp("localhost", 8125));
        assert_eq!(parse("[::1]"), udp("::1", 8125));
        assert_eq!(parse("unix:8125"), udp("unix", 8125));
        for bad in ["host:0", "host:x", ":8125", "unix:", "a b:1", "[x]:1"] {
            let error = statsd_host(Some(bad.into())).unwrap_err().to_string();
            assert!(
                error.contains("statsd_host") && error.contains("HOST[:PORT]"),
                "{error}"
            );
        }
    }

    #[test]
    fn prefix_ends_in_one_dot_and_tags_are_checked() {
        assert_eq!(statsd_prefix(Some("app".into())).unwrap(), "app.");
        assert_eq!(statsd_prefix(Some("app...".into())).unwrap(), "app.");
        assert_eq!(statsd_prefix(None).unwrap(), "");
        assert!(statsd_prefix(Some("a|b".into())).is_err());
        assert_eq!(
            dogstatsd_tags(Some("env:prod,team:web,".into())).unwrap(),
            "env:prod,team:web"
        );
        assert!(dogstatsd_tags(Some("env:prod|x".into())).is_err());
    }

    #[test]
    fn metrics_bind_is_an_address_or_off() {
        assert_eq!(metrics_bind(Some(" ".into())).unwrap(), None);
        assert!(metrics_bind(Some("127.0.0.1:9101".into()))
            .unwrap()
            .is_some());
        assert!(metrics_bind(Some("fd://3".into())).is_err());
    }
}
