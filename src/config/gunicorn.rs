//! Every gunicorn setting name (gunicorn 27) that is not one of ours, and what a config file that
//! sets it gets: a server hook we run, an error saying what we support instead (it would change
//! what the server does), or a warning (a tuning knob with no meaning here). Data only.

/// gunicorn's server hooks that rgunicorn calls, with the number of positional parameters
/// gunicorn requires of each (its `validate_callable(arity)`).
pub const HOOKS: &[(&str, usize)] = &[
    ("on_starting", 1),
    ("on_reload", 1),
    ("when_ready", 1),
    ("pre_fork", 2),
    ("post_fork", 2),
    ("post_worker_init", 1),
    ("worker_int", 1),
    ("worker_abort", 1),
    ("pre_exec", 1),
    ("pre_request", 2),
    ("post_request", 4),
    ("child_exit", 2),
    ("worker_exit", 2),
    ("nworkers_changed", 3),
    ("on_exit", 1),
];

/// The parameters each hook takes, for error messages.
pub fn hook_parameters(arity: usize, name: &str) -> &'static str {
    match (arity, name) {
        (1, "post_worker_init" | "worker_int" | "worker_abort") => "(worker)",
        (1, _) => "(server)",
        (2, "pre_request") => "(worker, req)",
        (2, _) => "(server, worker)",
        (3, _) => "(server, new_value, old_value)",
        _ => "(worker, req, environ, resp)",
    }
}

/// Settings that mean something only on the command line.
pub const COMMAND_LINE_ONLY: &[&str] = &["config", "check_config", "print_config"];

const TLS: &str = "TLS is not supported: terminate TLS in Caddy or nginx in front of rgunicorn \
                   (config/caddy/Caddyfile, config/nginx/rgunicorn.conf)";
const STRICT_PARSER: &str = "not supported: the HTTP parser is strict, always";
const LOGGING: &str = "Python logging configuration is not supported: use errorlog, loglevel, \
                       accesslog and access_log_format";

/// Settings that would change what the server does, which rgunicorn does not do, with what it
/// supports instead; `defaults` are the values that ask for nothing (besides None, False, 0 and
/// empty ones).
pub const UNSUPPORTED: &[(&str, &[&str], &str)] = &[
    ("certfile", &[], TLS),
    ("keyfile", &[], TLS),
    ("ca_certs", &[], TLS),
    ("ssl_context", &[], TLS),
    ("syslog", &[], "syslog is not supported: log to stderr (journald) or a file (errorlog)"),
    ("logconfig", &[], LOGGING),
    ("logconfig_dict", &[], LOGGING),
    ("logconfig_json", &[], LOGGING),
    ("logger_class", &["gunicorn.glogging.Logger"], LOGGING),
    ("capture_output", &[], "not supported: the app's stdout and stderr stay the server's (point both where errorlog goes, e.g. journald)"),
    ("paste", &[], "PasteDeploy apps are not supported: give module:callable"),
    ("raw_paste_global_conf", &[], "PasteDeploy apps are not supported: give module:callable"),
    ("protocol", &["http"], "not supported: only http (no uwsgi protocol)"),
    ("http_protocols", &["h1"], "not supported: only HTTP/1.1 (h1); HTTP/2 belongs to the proxy in front"),
    ("dirty_apps", &[], "not supported: there are no dirty arbiters"),
    ("dirty_workers", &[], "not supported: there are no dirty arbiters"),
    ("reload_extra_files", &[], "not supported: reload watches the files of the modules the app imported"),
    ("initgroups", &[], "not supported: workers take the user's primary group (or group)"),
    ("header_map", &["drop"], "not supported: header names with '_' are always dropped"),
    ("strip_header_spaces", &[], STRICT_PARSER),
    ("permit_obsolete_folding", &[], STRICT_PARSER),
    ("permit_unconventional_http_method", &[], STRICT_PARSER),
    ("permit_unconventional_http_version", &[], STRICT_PARSER),
    ("casefold_http_method", &[], STRICT_PARSER),
];

/// Tuning knobs of gunicorn with no meaning in rgunicorn: accepted with a warning saying why.
pub const IGNORED: &[(&str, &str)] = &[
    (
        "worker_tmp_dir",
        "workers report to the master through shared memory, not temporary files",
    ),
    ("tmp_upload_dir", "gunicorn does not use it either"),
    ("sendfile", "file responses always go out with sendfile(2)"),
    (
        "reload_engine",
        "reload polls the files of the imported modules",
    ),
    ("spew", "no line tracing"),
    (
        "enable_stdio_inheritance",
        "daemon mode puts stdio on /dev/null",
    ),
    ("disable_redirect_access_to_syslog", "there is no syslog"),
    (
        "enable_backlog_metric",
        "the listen queue is always in /metrics (rgunicorn_listen_queue_depth)",
    ),
    ("syslog_addr", "there is no syslog"),
    ("syslog_facility", "there is no syslog"),
    ("syslog_prefix", "there is no syslog"),
    ("ssl_version", "there is no TLS"),
    ("cert_reqs", "there is no TLS"),
    ("ciphers", "there is no TLS"),
    ("do_handshake_on_connect", "there is no TLS"),
    ("suppress_ragged_eofs", "there is no TLS"),
    ("uwsgi_allow_ips", "there is no uwsgi protocol"),
    (
        "control_socket_disable",
        "the control socket is off unless control_socket is set",
    ),
    (
        "control_socket_mode",
        "the control socket is always mode 0600",
    ),
    (
        "default_proc_name",
        "the process name is proc_name, else the app",
    ),
    ("root_path", "ASGI only"),
    ("asgi_disconnect_grace_period", "ASGI only"),
    ("asgi_lifespan", "ASGI only"),
    ("asgi_loop", "ASGI only"),
    ("websocket_max_message_size", "ASGI only"),
    ("http_parser", "the parser is rgunicorn's own"),
    ("http2_cleartext", "there is no HTTP/2"),
    ("http2_initial_window_size", "there is no HTTP/2"),
    ("http2_max_concurrent_streams", "there is no HTTP/2"),
    ("http2_max_frame_size", "there is no HTTP/2"),
    ("http2_max_header_list_size", "there is no HTTP/2"),
    ("dirty_timeout", "there are no dirty arbiters"),
    ("dirty_threads", "there are no dirty arbiters"),
    ("dirty_graceful_timeout", "there are no dirty arbiters"),
    ("dirty_post_fork", "there are no dirty arbiters"),
    ("dirty_worker_exit", "there are no dirty arbiters"),
    ("dirty_worker_init", "there are no dirty arbiters"),
    ("on_dirty_starting", "there are no dirty arbiters"),
];

/// gunicorn's command-line flags of the settings above (gunicorn 27), and whether each takes a
/// value: accepted on the command line and in GUNICORN_CMD_ARGS, then treated as in a file.
pub const FLAGS: &[(&str, &[&str], bool)] = &[
    (
        "asgi_disconnect_grace_period",
        &["--asgi-disconnect-grace-period"],
        true,
    ),
    ("asgi_lifespan", &["--asgi-lifespan"], true),
    ("asgi_loop", &["--asgi-loop"], true),
    ("ca_certs", &["--ca-certs"], true),
    ("capture_output", &["--capture-output"], false),
    ("casefold_http_method", &["--casefold-http-method"], false),
    ("cert_reqs", &["--cert-reqs"], true),
    ("certfile", &["--certfile"], true),
    ("ciphers", &["--ciphers"], true),
    ("control_socket_disable", &["--no-control-socket"], false),
    ("control_socket_mode", &["--control-socket-mode"], true),
    ("dirty_apps", &["--dirty-app"], true),
    (
        "dirty_graceful_timeout",
        &["--dirty-graceful-timeout"],
        true,
    ),
    ("dirty_threads", &["--dirty-threads"], true),
    ("dirty_timeout", &["--dirty-timeout"], true),
    ("dirty_workers", &["--dirty-workers"], true),
    (
        "disable_redirect_access_to_syslog",
        &["--disable-redirect-access-to-syslog"],
        false,
    ),
    (
        "do_handshake_on_connect",
        &["--do-handshake-on-connect"],
        false,
    ),
    ("enable_backlog_metric", &["--enable-backlog-metric"], false),
    (
        "enable_stdio_inheritance",
        &["-R", "--enable-stdio-inheritance"],
        false,
    ),
    ("header_map", &["--header-map"], true),
    ("http2_cleartext", &["--http2-cleartext"], true),
    (
        "http2_initial_window_size",
        &["--http2-initial-window-size"],
        true,
    ),
    (
        "http2_max_concurrent_streams",
        &["--http2-max-concurrent-streams"],
        true,
    ),
    ("http2_max_frame_size", &["--http2-max-frame-size"], true),
    (
        "http2_max_header_list_size",
        &["--http2-max-header-list-size"],
        true,
    ),
    ("http_parser", &["--http-parser"], true),
    ("http_protocols", &["--http-protocols"], true),
    ("initgroups", &["--initgroups"], false),
    ("keyfile", &["--keyfile"], true),
    ("logconfig", &["--log-config"], true),
    ("logconfig_json", &["--log-config-json"], true),
    ("logger_class", &["--logger-class"], true),
    ("paste", &["--paste", "--paster"], true),
    (
        "permit_obsolete_folding",
        &["--permit-obsolete-folding"],
        false,
    ),
    (
        "permit_unconventional_http_method",
        &["--permit-unconventional-http-method"],
        false,
    ),
    (
        "permit_unconventional_http_version",
        &["--permit-unconventional-http-version"],
        false,
    ),
    ("protocol", &["--protocol"], true),
    ("raw_paste_global_conf", &["--paste-global"], true),
    ("reload_engine", &["--reload-engine"], true),
    ("reload_extra_files", &["--reload-extra-file"], true),
    ("root_path", &["--root-path"], true),
    ("sendfile", &["--no-sendfile"], false),
    ("spew", &["--spew"], false),
    ("ssl_version", &["--ssl-version"], true),
    ("strip_header_spaces", &["--strip-header-spaces"], false),
    ("suppress_ragged_eofs", &["--suppress-ragged-eofs"], false),
    ("syslog", &["--log-syslog"], false),
    ("syslog_addr", &["--log-syslog-to"], true),
    ("syslog_facility", &["--log-syslog-facility"], true),
    ("syslog_prefix", &["--log-syslog-prefix"], true),
    ("uwsgi_allow_ips", &["--uwsgi-allow-from"], true),
    (
        "websocket_max_message_size",
        &["--websocket-max-message-size"],
        true,
    ),
    ("worker_tmp_dir", &["--worker-tmp-dir"], true),
];

/// What rgunicorn does with one gunicorn setting name that is not a plain setting of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Hook {
        name: &'static str,
        arity: usize,
    },
    CommandLineOnly,
    Unsupported {
        defaults: &'static [&'static str],
        instead: &'static str,
    },
    Ignored {
        why: &'static str,
    },
}

pub fn kind(name: &str) -> Option<Kind> {
    if let Some(&(name, arity)) = HOOKS.iter().find(|(n, _)| *n == name) {
        return Some(Kind::Hook { name, arity });
    }
    if COMMAND_LINE_ONLY.contains(&name) {
        return Some(Kind::CommandLineOnly);
    }
    if let Some((_, defaults, instead)) = UNSUPPORTED.iter().find(|(n, ..)| *n == name) {
        return Some(Kind::Unsupported { defaults, instead });
    }
    let (_, why) = IGNORED.iter().find(|(n, _)| *n == name)?;
    Some(Kind::Ignored { why })
}

#[cfg(test)]
mod tests {
    use super::super::partial::Partial;
    use super::*;

    /// gunicorn 27.0.1's `Config().settings`, sorted: every name must be ours or classified.
    const GUNICORN_SETTINGS: &str = "access_log_format accesslog asgi_disconnect_grace_period \
        asgi_lifespan asgi_loop backlog bind ca_certs capture_output casefold_http_method cert_reqs \
        certfile \
        chdir check_config child_exit ciphers config control_socket control_socket_disable \
        control_socket_mode daemon default_proc_name dirty_apps dirty_graceful_timeout \
        dirty_post_fork dirty_threads dirty_timeout dirty_worker_exit dirty_worker_init \
        dirty_workers disable_redirect_access_to_syslog do_handshake_on_connect dogstatsd_tags \
        enable_backlog_metric enable_stdio_inheritance errorlog forwarded_allow_ips \
        forwarder_headers graceful_timeout group header_map http2_cleartext \
        http2_initial_window_size http2_max_concurrent_streams http2_max_frame_size \
        http2_max_header_list_size http_parser http_protocols initgroups keepalive keyfile \
        limit_request_field_size limit_request_fields limit_request_line logconfig \
        logconfig_dict logconfig_json logger_class loglevel max_requests max_requests_jitter \
        nworkers_changed on_dirty_starting on_exit on_reload on_starting paste pidfile \
        permit_obsolete_folding permit_unconventional_http_method \
        permit_unconventional_http_version post_fork post_request post_worker_init pre_exec \
        pre_fork pre_request preload_app print_config proc_name protocol proxy_allow_ips \
        proxy_protocol pythonpath raw_env raw_paste_global_conf reload reload_engine \
        reload_extra_files reuse_port root_path secure_scheme_headers sendfile spew ssl_context \
        ssl_version statsd_host statsd_prefix strip_header_spaces suppress_ragged_eofs syslog \
        syslog_addr syslog_facility syslog_prefix threads timeout tmp_upload_dir umask \
        uwsgi_allow_ips user websocket_max_message_size when_ready worker_abort worker_class \
        worker_connections worker_exit worker_int worker_tmp_dir workers wsgi_app";

    #[test]
    fn every_gunicorn_setting_is_ours_or_classified_once() {
        let names: Vec<&str> = GUNICORN_SETTINGS.split_whitespace().collect();
        assert_eq!(names.len(), 120);
        for name in &names {
            let ours = Partial::NAMES.contains(name);
            assert!(
                ours != kind(name).is_some(),
                "{name}: ours {ours}, {:?}",
                kind(name)
            );
        }
        let classified = HOOKS.len() + COMMAND_LINE_ONLY.len() + UNSUPPORTED.len() + IGNORED.len();
        let ours = Partial::NAMES.iter().filter(|n| names.contains(n)).count();
        assert_eq!(
            classified + ours,
            names.len(),
            "a name classified twice or not gunicorn's"
        );
    }
}
