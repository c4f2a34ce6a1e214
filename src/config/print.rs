//! `--print-config`: writes `Settings` back as TOML that `load` reads again via -c. Pure
//! formatting: the caller decides where the text goes.
use std::path::Path;
use std::time::Duration;

use toml::Value;

use super::Settings;

impl Settings {
    /// Every setting as `key = value`, in the order of config/rgunicorn.toml; unset optional
    /// settings appear as comments because TOML has no null.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        for (key, value) in self.toml_entries() {
            match value {
                Some(value) => out.push_str(&format!("{key} = {value}\n")),
                None => out.push_str(&format!("# {key} is not set\n")),
            }
        }
        if !self.hooks.is_empty() {
            out.push_str(&format!("# server hooks: {}\n", self.hooks.join(", ")));
        }
        out
    }

    /// Every setting under its name, in the order of config/rgunicorn.toml (None: unset).
    pub fn toml_entries(&self) -> Vec<(&'static str, Option<Value>)> {
        let path = |p: &Path| text(p.display());
        let headers = self.secure_scheme_headers.iter();
        let headers = headers.map(|(k, v)| (k.clone(), Value::String(v.clone())));
        vec![
            (
                "wsgi_app",
                Some(&self.wsgi_app)
                    .filter(|a| !a.is_empty())
                    .and_then(text),
            ),
            ("bind", list(&self.bind)),
            ("backlog", int(self.backlog)),
            ("workers", int(self.workers)),
            ("threads", int(self.threads)),
            ("worker_class", text(self.worker_class.as_str())),
            ("worker_connections", int(self.worker_connections)),
            ("timeout", Some(seconds(self.timeout))),
            ("graceful_timeout", Some(seconds(self.graceful_timeout))),
            ("keepalive", Some(seconds(self.keepalive))),
            ("max_requests", int(self.max_requests)),
            ("max_requests_jitter", int(self.max_requests_jitter)),
            ("max_worker_memory", int(self.max_worker_memory)),
            ("preload_app", Some(Value::Boolean(self.preload_app))),
            ("chdir", self.chdir.as_deref().and_then(path)),
            (
                "pythonpath",
                list(self.pythonpath.iter().map(|p| p.display())),
            ),
            ("virtualenv", self.virtualenv.as_deref().and_then(path)),
            (
                "raw_env",
                list(self.raw_env.iter().map(|(k, v)| format!("{k}={v}"))),
            ),
            ("accesslog", self.accesslog.as_deref().and_then(text)),
            ("errorlog", text(&self.errorlog)),
            ("loglevel", text(self.loglevel.as_str())),
            ("access_log_format", text(&self.access_log_format)),
            ("log_format", text(self.log_format.as_str())),
            ("metrics_bind", self.metrics_bind.as_ref().and_then(text)),
            ("statsd_host", self.statsd_host.as_ref().and_then(text)),
            ("statsd_prefix", text(&self.statsd_prefix)),
            ("dogstatsd_tags", text(&self.dogstatsd_tags)),
            (
                "control_socket",
                self.control_socket.as_deref().and_then(path),
            ),
            ("reuse_port", Some(Value::Boolean(self.reuse_port))),
            ("proc_name", self.proc_name.as_deref().and_then(text)),
            ("pidfile", self.pidfile.as_deref().and_then(path)),
            ("user", self.user.as_deref().and_then(text)),
            ("group", self.group.as_deref().and_then(text)),
            ("umask", text(format!("0o{:03o}", self.umask))),
            (
                "socket_mode",
                self.socket_mode.and_then(|m| text(format!("{m:03o}"))),
            ),
            ("daemon", Some(Value::Boolean(self.daemon))),
            ("reload", Some(Value::Boolean(self.reload))),
            ("limit_request_line", limit(self.limit_request_line)),
            ("limit_request_fields", limit(self.limit_request_fields)),
            (
                "limit_request_field_size",
                limit(self.limit_request_field_size),
            ),
            ("limit_request_body", int(self.limit_request_body)),
            ("forwarded_allow_ips", list(&self.forwarded_allow_ips)),
            (
                "secure_scheme_headers",
                Some(Value::Table(headers.collect())),
            ),
            ("proxy_protocol", Some(Value::Boolean(self.proxy_protocol))),
            ("proxy_allow_ips", list(&self.proxy_allow_ips)),
            (
                "permit_missing_host",
                Some(Value::Boolean(self.permit_missing_host)),
            ),
            ("forwarder_headers", list(&self.forwarder_headers)),
        ]
    }
}

fn text(value: impl ToString) -> Option<Value> {
    Some(Value::String(value.to_string()))
}

fn list<T: ToString>(items: impl IntoIterator<Item = T>) -> Option<Value> {
    let items = items
        .into_iter()
        .map(|item| Value::String(item.to_string()));
    Some(Value::Array(items.collect()))
}

fn int(n: impl Into<u64>) -> Option<Value> {
    Some(Value::Integer(i64::try_from(n.into()).unwrap_or(i64::MAX)))
}

/// Limits are stored as effective values; unlimited goes back to the 0 that means it.
fn limit(n: usize) -> Option<Value> {
    match n {
        usize::MAX => int(0u64),
        n => int(n as u64),
    }
}

/// Whole seconds print as integers, as users write them.
fn seconds(d: Duration) -> Value {
    match d.subsec_nanos() {
        0 => Value::Integer(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        _ => Value::Float(d.as_secs_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::partial::Partial;

    #[test]
    fn entries_cover_every_setting_in_order() {
        let names: Vec<_> = super::super::default_settings()
            .toml_entries()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(names, Partial::NAMES);
    }

    #[test]
    fn unset_settings_are_comments() {
        let text = super::super::default_settings().to_toml();
        assert!(text.contains("# chdir is not set\n"), "{text}");
        assert!(text.contains("# wsgi_app is not set\n"), "{text}");
        assert!(text.contains("workers = 1\n"), "{text}");
        assert!(text.contains("limit_request_field_size = 8190\n"), "{text}");
    }
}
