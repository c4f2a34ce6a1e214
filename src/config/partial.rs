//! `Partial`: every setting as an `Option`, declared once and used by the TOML file, by
//! RGUNICORN_CMD_ARGS and by the command line, plus the field-by-field merge of those layers.
//! Holds raw, unvalidated values only: checking and conversion belong to `validate`.
use std::collections::BTreeMap;

use serde::de::{Deserializer, SeqAccess, Visitor};

/// Declares `Partial` once so that clap flags, TOML keys, the merge and the list of names can
/// never drift apart.
macro_rules! partial_settings {
    ($( $(#[$attr:meta])* $name:ident : $ty:ty, )*) => {
        /// One layer of settings; `None` means "this layer does not say".
        #[derive(Debug, Default, Clone, PartialEq, clap::Args, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Partial {
            $( $(#[$attr])* pub $name: Option<$ty>, )*
        }

        impl Partial {
            /// Every TOML key, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];

            /// `over` wins wherever it says something.
            pub fn merge(self, over: Partial) -> Partial {
                Partial { $( $name: over.$name.or(self.$name), )* }
            }
        }
    };
}

partial_settings! {
    /// WSGI application: module, module:callable or module:factory(args).
    #[arg(value_name = "APP")]
    wsgi_app: String,
    /// Socket to bind: HOST:PORT, HOST, [IPV6]:PORT, unix:PATH or fd://N (repeatable).
    #[arg(short, long, value_name = "ADDRESS")]
    #[serde(default, deserialize_with = "one_or_many")]
    bind: Vec<String>,
    /// Maximum number of pending connections.
    #[arg(long, value_name = "INT")]
    backlog: u32,
    /// Number of worker processes [default: $WEB_CONCURRENCY or 1].
    #[arg(short, long, value_name = "INT")]
    workers: u32,
    /// Python threads per worker; more than 1 selects the gthread worker.
    #[arg(long, value_name = "INT")]
    threads: u32,
    /// Worker type: sync or gthread.
    #[arg(short = 'k', long, value_name = "STRING")]
    worker_class: String,
    /// Maximum number of simultaneous clients per worker.
    #[arg(long, value_name = "INT")]
    worker_connections: u32,
    /// Seconds a request may run before its worker is killed and restarted (0 = never).
    #[arg(short, long, value_name = "SECONDS", allow_negative_numbers = true)]
    timeout: f64,
    /// Seconds workers get to finish in-flight requests after a stop or reload.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    graceful_timeout: f64,
    /// Seconds to wait for the next request on a keep-alive connection.
    #[arg(long = "keep-alive", value_name = "SECONDS", allow_negative_numbers = true)]
    keepalive: f64,
    /// Requests a worker serves before it is restarted (0 = no limit).
    #[arg(long, value_name = "INT")]
    max_requests: u64,
    /// Random extra requests added to max_requests per worker.
    #[arg(long, value_name = "INT")]
    max_requests_jitter: u64,
    /// MiB of unshared memory past which a worker is replaced after its current requests (0 = off).
    #[arg(long, value_name = "MIB")]
    max_worker_memory: u64,
    /// Load the application in the master before forking the workers.
    #[arg(long = "preload", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    preload_app: bool,
    /// Change to this directory before loading the application.
    #[arg(long, value_name = "PATH")]
    chdir: String,
    /// Comma-separated directories to add to the Python path.
    #[arg(long, value_name = "STRING", value_delimiter = ',')]
    #[serde(default, deserialize_with = "list_or_csv")]
    pythonpath: Vec<String>,
    /// Virtual environment to run the application in [default: $VIRTUAL_ENV].
    #[arg(long, value_name = "PATH")]
    virtualenv: String,
    /// KEY=VALUE environment variable for the workers (repeatable).
    #[arg(short = 'e', long = "env", value_name = "ENV")]
    raw_env: Vec<String>,
    /// Access log file ("-" = stdout); no access log when unset.
    #[arg(long = "access-logfile", value_name = "FILE")]
    accesslog: String,
    /// Error log file ("-" = stderr).
    #[arg(long = "error-logfile", visible_alias = "log-file", value_name = "FILE")]
    errorlog: String,
    /// Error log level: debug, info, warning, error or critical.
    #[arg(long = "log-level", value_name = "LEVEL")]
    loglevel: String,
    /// Access log line format: gunicorn's atoms, or "json" for one JSON object per request.
    #[arg(long = "access-logformat", visible_alias = "access-log-format", value_name = "STRING")]
    access_log_format: String,
    /// Error log line format: "text" (gunicorn's) or "json" (one JSON object per line).
    #[arg(long = "log-format", value_name = "FORMAT")]
    log_format: String,
    /// Serve Prometheus /metrics at this address (HOST:PORT or unix:PATH); off when unset.
    #[arg(long, value_name = "ADDRESS")]
    metrics_bind: String,
    /// Send statsd metrics to HOST:PORT (UDP) or unix:PATH (a unix datagram socket).
    #[arg(long, value_name = "STATSD_ADDR")]
    statsd_host: String,
    /// Prefix of the statsd metric names ("app" sends app.gunicorn.requests).
    #[arg(long, value_name = "STATSD_PREFIX")]
    statsd_prefix: String,
    /// Comma-separated DogStatsD tags (key:value) added to every statsd metric.
    #[arg(long, value_name = "DOGSTATSD_TAGS")]
    dogstatsd_tags: String,
    /// Unix socket (mode 0600) where the master takes `rgunicorn ctl` commands; off when unset.
    #[arg(long, value_name = "PATH")]
    control_socket: String,
    /// Set SO_REUSEPORT on the listening sockets.
    #[arg(long, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    reuse_port: bool,
    /// Process name shown by ps and top.
    #[arg(short = 'n', long = "name", value_name = "STRING")]
    proc_name: String,
    /// Write the master's PID to this file; removed on exit.
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pidfile: String,
    /// Run the workers as this user: a name or a numeric uid.
    #[arg(short = 'u', long, value_name = "USER")]
    user: String,
    /// Run the workers as this group: a name or a numeric gid [default: the user's group].
    #[arg(short = 'g', long, value_name = "GROUP")]
    group: String,
    /// Mask for the mode of files the server creates, such as unix sockets: 0o22, 022, 0x12, 18.
    #[arg(short = 'm', long, value_name = "INT")]
    #[serde(default, deserialize_with = "int_or_string")]
    umask: String,
    /// Mode of unix socket files, in octal like chmod (e.g. 660) [default: as the umask leaves it].
    #[arg(long, value_name = "OCTAL")]
    socket_mode: String,
    /// Detach from the terminal and run in the background.
    #[arg(short = 'D', long, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    daemon: bool,
    /// Restart the workers when a Python source file of the app changes (development only).
    #[arg(long, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    reload: bool,
    /// Maximum size of the request line in bytes (0 = unlimited, at most 8190).
    #[arg(long, value_name = "INT")]
    limit_request_line: u64,
    /// Maximum number of request header fields (0 = the maximum, 32768).
    #[arg(long, value_name = "INT")]
    limit_request_fields: u64,
    /// Maximum size of one request header field in bytes (0 = the default, 8190).
    #[arg(long = "limit-request-field_size", visible_alias = "limit-request-field-size",
          value_name = "INT")]
    limit_request_field_size: u64,
    /// Maximum request body size in bytes (0 = unlimited).
    #[arg(long, value_name = "INT")]
    limit_request_body: u64,
    /// Comma-separated addresses or CIDR networks trusted to set forwarding headers, or "*".
    #[arg(long, value_name = "STRING", value_delimiter = ',')]
    #[serde(default, deserialize_with = "list_or_csv")]
    forwarded_allow_ips: Vec<String>,
    /// Headers (and values) that mark a request as https; TOML file only.
    #[arg(skip)]
    secure_scheme_headers: BTreeMap<String, String>,
    /// Accept a PROXY protocol v1 or v2 preamble at the start of each connection.
    #[arg(long, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    proxy_protocol: bool,
    /// Comma-separated addresses or CIDR networks whose PROXY preambles are believed, or "*".
    #[arg(long = "proxy-allow-from", visible_alias = "proxy-allow-ips", value_name = "STRING",
          value_delimiter = ',')]
    #[serde(default, deserialize_with = "list_or_csv")]
    proxy_allow_ips: Vec<String>,
    /// Serve HTTP/1.1 requests that lack a Host header instead of refusing them with 400.
    #[arg(long, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    permit_missing_host: bool,
    /// Comma-separated header names a trusted proxy may set straight into the environ.
    #[arg(long, value_name = "STRING", value_delimiter = ',')]
    #[serde(default, deserialize_with = "list_or_csv")]
    forwarder_headers: Vec<String>,
}

/// TOML `bind`: one address or a list of them.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    d.deserialize_any(StringList {
        split_commas: false,
    })
    .map(Some)
}

/// TOML `pythonpath` / `forwarded_allow_ips`: a comma-separated string or a list, as in gunicorn.
fn list_or_csv<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    d.deserialize_any(StringList { split_commas: true })
        .map(Some)
}

/// TOML `umask`: an integer (0o22 is TOML's octal) or a string such as "022".
fn int_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(IntOrString).map(Some)
}

struct IntOrString;

impl Visitor<'_> for IntOrString {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an integer or a string")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.to_string())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.to_owned())
    }
}

struct StringList {
    split_commas: bool,
}

impl<'de> Visitor<'de> for StringList {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string or a list of strings")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(if self.split_commas {
            v.split(',').map(str::to_owned).collect()
        } else {
            vec![v.to_owned()]
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<String>()? {
            items.push(item);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layer_wins_field_by_field() {
        let low = Partial {
            workers: Some(2),
            threads: Some(4),
            ..Partial::default()
        };
        let high = Partial {
            workers: Some(8),
            ..Partial::default()
        };
        let merged = low.merge(high);
        assert_eq!(merged.workers, Some(8));
        assert_eq!(merged.threads, Some(4));
        assert_eq!(merged.backlog, None);
    }

    #[test]
    fn names_are_the_toml_keys() {
        assert_eq!(Partial::NAMES[0], "wsgi_app");
        assert!(Partial::NAMES.contains(&"secure_scheme_headers"));
        assert_eq!(Partial::NAMES.len(), 47);
    }

    #[test]
    fn string_lists_accept_a_string_or_a_list() {
        let p: Partial = toml::from_str(
            "bind = \"unix:/run/a.sock\"\npythonpath = \"a,b\"\nforwarded_allow_ips = [\"1.2.3.4\"]",
        )
        .unwrap();
        assert_eq!(p.bind, Some(vec!["unix:/run/a.sock".to_owned()]));
        assert_eq!(p.pythonpath, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(p.forwarded_allow_ips, Some(vec!["1.2.3.4".to_owned()]));
    }

    #[test]
    fn durations_accept_integers_and_floats() {
        let p: Partial = toml::from_str("timeout = 5\ngraceful_timeout = 0.5").unwrap();
        assert_eq!(p.timeout, Some(5.0));
        assert_eq!(p.graceful_timeout, Some(0.5));
    }
}
