//! `--bind` addresses: parsing gunicorn's forms into `BindSpec` and writing them back. Pure text
//! handling: never resolves names or touches sockets.
use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;

use super::BindSpec;
use crate::{Error, Result};

const ALLOWED: &str = "HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N";
const DEFAULT_PORT: u16 = 8000;

impl BindSpec {
    /// Parses one `--bind` value the way gunicorn does (`tcp://` and `unix://` prefixes
    /// included); an empty host means every IPv4 address, as in gunicorn.
    pub fn parse(value: &str) -> Result<BindSpec> {
        let bad = || Error::config("bind", value, ALLOWED);
        if let Some(path) = value
            .strip_prefix("unix://")
            .or_else(|| value.strip_prefix("unix:"))
        {
            return match path {
                "" => Err(bad()),
                _ => Ok(BindSpec::Unix(PathBuf::from(path))),
            };
        }
        if let Some(fd) = value.strip_prefix("fd://") {
            return match fd.parse::<i32>() {
                Ok(n) if n >= 0 => Ok(BindSpec::Fd(n)),
                _ => Err(bad()),
            };
        }
        let netloc = value.strip_prefix("tcp://").unwrap_or(value);
        let (host, port) = split_host_port(netloc).ok_or_else(bad)?;
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
        };
        let host = match host {
            "" => "0.0.0.0".to_owned(),
            h => h.to_ascii_lowercase(),
        };
        Ok(BindSpec::Tcp { host, port })
    }
}

/// Splits `host[:port]` or `[v6][:port]`; None when the host part is malformed.
pub(super) fn split_host_port(netloc: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = netloc.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        return Some((host, port));
    }
    let (host, port) = match netloc.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (netloc, None),
    };
    let host_ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    host_ok.then_some((host, port))
}

impl fmt::Display for BindSpec {
    /// The form `parse` reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindSpec::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            BindSpec::Tcp { host, port } => write!(f, "{host}:{port}"),
            BindSpec::Unix(path) => write!(f, "unix:{}", path.display()),
            BindSpec::Fd(n) => write!(f, "fd://{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> BindSpec {
        BindSpec::Tcp {
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn every_gunicorn_form_parses() {
        let cases = [
            ("127.0.0.1:8000", tcp("127.0.0.1", 8000)),
            ("0.0.0.0:0", tcp("0.0.0.0", 0)),
            ("LocalHost:9000", tcp("localhost", 9000)),
            ("example.com", tcp("example.com", 8000)),
            ("tcp://10.0.0.1:81", tcp("10.0.0.1", 81)),
            (":8080", tcp("0.0.0.0", 8080)),
            ("", tcp("0.0.0.0", 8000)),
            ("[::1]:8000", tcp("::1", 8000)),
            ("[::]", tcp("::", 8000)),
            ("[fe80::1]:65535", tcp("fe80::1", 65535)),
            ("unix:/run/app.sock", BindSpec::Unix("/run/app.sock".into())),
            ("unix://run/app.sock", BindSpec::Unix("run/app.sock".into())),
            ("fd://3", BindSpec::Fd(3)),
        ];
        for (text, want) in cases {
            assert_eq!(BindSpec::parse(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn bad_binds_name_the_value() {
        for text in [
            "host:port",
            "host:",
            "host:65536",
            "host:-1",
            "host:+80",
            "::1:8000",
            "[::1",
            "[::1]8000",
            "[not-v6]:80",
            "a b:80",
            "unix:",
            "fd://",
            "fd://-1",
            "fd://x",
        ] {
            match BindSpec::parse(text) {
                Err(Error::Config {
                    key,
                    value,
                    allowed,
                }) => {
                    assert_eq!(key, "bind");
                    assert_eq!(value, text);
                    assert_eq!(allowed, ALLOWED);
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn display_reads_back() {
        for text in [
            "1.2.3.4:80",
            "[::1]:8000",
            "unix:/tmp/s",
            "fd://4",
            "name:1",
        ] {
            let spec = BindSpec::parse(text).unwrap();
            assert_eq!(spec.to_string(), text);
            assert_eq!(BindSpec::parse(&spec.to_string()).unwrap(), spec);
        }
    }
}
