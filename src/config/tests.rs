//! Tests of `load` and `reload` as a whole: precedence, environment fallbacks, errors, the
//! example config file and the --print-config round trip. Test code only.
use std::path::Path;

use super::*;

const EXAMPLE: &str = include_str!("../../config/rgunicorn.toml");

fn argv(args: &[&str]) -> Vec<OsString> {
    std::iter::once("rgunicorn")
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect()
}

/// A config file unique to this test process and `name`, removed when dropped.
pub(super) struct TempToml(PathBuf);

impl TempToml {
    pub(super) fn new(name: &str, text: &str) -> TempToml {
        let file = format!("rgunicorn-config-{}-{name}.toml", std::process::id());
        let path = std::env::temp_dir().join(file);
        std::fs::write(&path, text).unwrap();
        TempToml(path)
    }
}

impl std::ops::Deref for TempToml {
    type Target = PathBuf;

    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for TempToml {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(super) fn run(args: &[&str], env: &Environment) -> Result<Settings> {
    let (settings, action) = load(argv(args), env)?;
    assert_eq!(action, Action::Run);
    Ok(settings)
}

/// Each (flags, key, value, part of what is allowed): the flags fail with that config error.
pub(super) fn assert_config_errors(cases: &[(&[&str], &str, &str, &str)]) {
    for (args, key, value, allowed) in cases {
        let args: Vec<&str> = std::iter::once("app").chain(args.iter().copied()).collect();
        let (k, v, a) = config_error(run(&args, &Environment::default()));
        assert_eq!((k.as_str(), v.as_str()), (*key, *value), "{args:?}");
        assert!(a.contains(allowed), "{args:?}: {a}");
    }
}

pub(super) fn config_error(result: Result<Settings>) -> (String, String, String) {
    match result {
        Err(Error::Config {
            key,
            value,
            allowed,
        }) => (key, value, allowed),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn defaults_match_gunicorn() {
    let s = run(&["app"], &Environment::default()).unwrap();
    let want = Settings {
        wsgi_app: "app".to_owned(),
        ..default_settings()
    };
    assert_eq!(s, want);
    assert_eq!(s.bind, [BindSpec::parse("127.0.0.1:8000").unwrap()]);
    assert_eq!((s.workers, s.threads, s.backlog), (1, 1, 2048));
    assert_eq!(s.worker_class, WorkerClass::Sync);
    assert_eq!(s.timeout, Duration::from_secs(30));
    assert_eq!(s.keepalive, Duration::from_secs(2));
    assert_eq!(s.limit_request_line, 4094);
    assert_eq!(s.limit_request_field_size, 8190);
    assert_eq!(s.forwarded_allow_ips, ["127.0.0.1", "::1"]);
    assert_eq!(s.proxy_allow_ips, ["127.0.0.1", "::1"]);
    assert!(!s.proxy_protocol && !s.permit_missing_host);
    assert_eq!(
        s.secure_scheme_headers[0],
        ("X-FORWARDED-PROTO".into(), "https".into())
    );
    assert_eq!((s.errorlog.as_str(), s.accesslog.as_deref()), ("-", None));
}

#[test]
fn each_layer_overrides_the_one_below() {
    let path = TempToml::new(
        "layers",
        "workers = 2\nthreads = 2\nbacklog = 10\ntimeout = 5\n",
    );
    let file_arg = format!("-c={}", path.display());
    let env = Environment {
        web_concurrency: Some("9".into()),
        cmd_args: Some("--threads 3 --backlog 11".into()),
        ..Environment::default()
    };
    let s = run(&["app", &file_arg, "--backlog", "12"], &env).unwrap();
    assert_eq!(s.workers, 2, "file beats WEB_CONCURRENCY");
    assert_eq!(s.threads, 3, "env args beat the file");
    assert_eq!(s.backlog, 12, "the command line beats env args");
    assert_eq!(s.timeout, Duration::from_secs(5), "file beats defaults");
    assert_eq!(s.config_file, Some(ConfigSource::Toml(path.to_path_buf())));
}

#[test]
fn config_path_may_come_from_env_args() {
    let path = TempToml::new("env-c", "wsgi_app = \"site.wsgi:app\"\nworkers = 4\n");
    let env = Environment {
        cmd_args: Some(format!("-c '{}'", path.display())),
        ..Environment::default()
    };
    let s = run(&[], &env).unwrap();
    assert_eq!((s.wsgi_app.as_str(), s.workers), ("site.wsgi:app", 4));
}

#[test]
fn environment_fallbacks() {
    let env = Environment {
        web_concurrency: Some("6".into()),
        virtual_env: Some("/venv".into()),
        forwarded_allow_ips: Some("10.0.0.0/8, *".into()),
        ..Environment::default()
    };
    let s = run(&["app"], &env).unwrap();
    assert_eq!(s.workers, 6);
    assert_eq!(s.virtualenv.as_deref(), Some(Path::new("/venv")));
    assert_eq!(s.forwarded_allow_ips, ["10.0.0.0/8", "*"]);
    let s = run(&["app", "-w", "2", "--virtualenv", "/other"], &env).unwrap();
    assert_eq!(s.workers, 2);
    assert_eq!(s.virtualenv.as_deref(), Some(Path::new("/other")));
    let bad = Environment {
        web_concurrency: Some("lots".into()),
        ..Environment::default()
    };
    assert_eq!(config_error(run(&["app"], &bad)).0, "workers");
}

#[test]
fn env_args_keep_shell_quoting() {
    let env = Environment {
        cmd_args: Some(r#"-e 'MSG=a b' --access-logformat "%(h)s \"%(r)s\"""#.into()),
        ..Environment::default()
    };
    let s = run(&["app"], &env).unwrap();
    assert_eq!(s.raw_env, [("MSG".into(), "a b".into())]);
    assert_eq!(s.access_log_format, r#"%(h)s "%(r)s""#);
}

#[test]
fn threads_switch_sync_to_gthread() {
    let env = Environment::default();
    let s = run(&["app", "--threads", "4"], &env).unwrap();
    assert_eq!(s.worker_class, WorkerClass::Gthread);
    let s = run(&["app", "-k", "gthread"], &env).unwrap();
    assert_eq!((s.worker_class, s.threads), (WorkerClass::Gthread, 1));
    let s = run(&["app", "--threads", "1", "-k", "SYNC"], &env).unwrap();
    assert_eq!(s.worker_class, WorkerClass::Sync);
}

#[test]
fn bad_values_name_key_value_and_what_is_allowed() {
    let cases: &[(&[&str], &str, &str, &str)] = &[
        (&["-w", "0"], "workers", "0", ">= 1"),
        (&["--threads", "0"], "threads", "0", ">= 1"),
        (&["--backlog", "0"], "backlog", "0", ">= 1"),
        (&["-k", "gevent"], "worker_class", "gevent", "sync, gthread"),
        (&["--log-level", "loud"], "loglevel", "loud", "critical"),
        (&["-t", "-1"], "timeout", "-1", "seconds"),
        (&["-b", "host:http"], "bind", "host:http", "HOST:PORT"),
        (&["-e", "NOEQUALS"], "raw_env", "NOEQUALS", "KEY=VALUE"),
        (
            &["--limit-request-line", "8191"],
            "limit_request_line",
            "8191",
            "8190",
        ),
        (
            &["--limit-request-fields", "40000"],
            "limit_request_fields",
            "40000",
            "32768",
        ),
        (
            &["--forwarded-allow-ips", "1.2.3.4,nope"],
            "forwarded_allow_ips",
            "nope",
            "CIDR",
        ),
        (
            &["--forwarded-allow-ips", "10.0.0.0/33"],
            "forwarded_allow_ips",
            "10.0.0.0/33",
            "CIDR",
        ),
        (
            &["--proxy-allow-from", "10.0.0.1,proxy.example"],
            "proxy_allow_ips",
            "proxy.example",
            "CIDR",
        ),
    ];
    assert_config_errors(cases);
}

#[test]
fn app_spec_is_checked_and_required() {
    let env = Environment::default();
    for good in [
        "app",
        "my_pkg.wsgi",
        "mod:application",
        "m.n:create_app('x', 1)",
    ] {
        assert_eq!(run(&[good], &env).unwrap().wsgi_app, good);
    }
    for bad in ["1app", "a..b", "mod:", "mod:1x", "mod:f(", "a-b:app"] {
        assert_eq!(
            config_error(run(&[bad], &env)),
            (
                "wsgi_app".to_owned(),
                bad.to_owned(),
                "module, module:callable or module:factory(args)".to_owned()
            )
        );
    }
    let (key, value, allowed) = config_error(run(&[], &env));
    assert_eq!((key.as_str(), value.as_str()), ("wsgi_app", ""));
    assert!(allowed.contains("no application module specified"));
    let err = load(argv(&["--check-config"]), &env).unwrap_err();
    assert!(matches!(err, Error::Config { .. }));
    let (_, action) = load(argv(&["--print-config"]), &env).unwrap();
    assert_eq!(action, Action::PrintConfig);
}

#[test]
fn raw_env_keeps_everything_after_the_first_equals() {
    let s = run(
        &["app", "-e", "A=1", "-e", "URL=a=b", "-e", "EMPTY="],
        &Environment::default(),
    );
    let want = [("A", "1"), ("URL", "a=b"), ("EMPTY", "")];
    let got: Vec<_> = s.unwrap().raw_env;
    let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(got, want);
}

#[test]
fn limits_store_the_effective_value() {
    let args = [
        "app",
        "--limit-request-line",
        "0",
        "--limit-request-fields",
        "0",
    ];
    let s = run(
        &[&args[..], &["--limit-request-field_size", "0"]].concat(),
        &Environment::default(),
    )
    .unwrap();
    assert_eq!(s.limit_request_line, usize::MAX);
    assert_eq!(s.limit_request_fields, 32768);
    assert_eq!(s.limit_request_field_size, 8190);
}

#[test]
fn unknown_file_key_is_reported_with_the_key() {
    let path = TempToml::new("unknown", "wsgi_app = \"app\"\nworker = 3\n");
    let err = run(&["-c", path.to_str().unwrap()], &Environment::default()).unwrap_err();
    match err {
        Error::ConfigFile { message, .. } => assert!(message.contains("`worker`"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn secure_scheme_headers_are_upper_cased_and_sorted() {
    let text = "wsgi_app = \"app\"\nsecure_scheme_headers = { x-proto = \"https\", A = \"1\" }\n";
    let path = TempToml::new("scheme", text);
    let s = run(&["-c", path.to_str().unwrap()], &Environment::default()).unwrap();
    let want = [("A".into(), "1".into()), ("X-PROTO".into(), "https".into())];
    assert_eq!(s.secure_scheme_headers, want);
}

#[test]
fn print_config_round_trips() {
    let args = [
        "pkg.wsgi:app",
        "-b",
        "[::1]:9000",
        "-b",
        "unix:/tmp/x.sock",
        "--threads",
        "3",
        "-t",
        "0.25",
        "--preload",
        "--pythonpath",
        "/a,/b",
        "-e",
        "K=v \"q\"",
        "--access-logfile",
        "-",
        "--log-level",
        "DEBUG",
        "-n",
        "svc",
        "--limit-request-line",
        "0",
        "--forwarded-allow-ips",
        "*",
        "--chdir",
        "/srv",
        "--reuse-port",
    ];
    let env = Environment::default();
    let original = run(&args, &env).unwrap();
    let path = TempToml::new("roundtrip", &original.to_toml());
    let reread = run(&["-c", path.to_str().unwrap()], &env).unwrap();
    assert_eq!(
        reread,
        Settings {
            config_file: Some(ConfigSource::Toml(path.to_path_buf())),
            ..original
        }
    );
    let defaults = default_settings().to_toml();
    let path = TempToml::new("roundtrip-defaults", &defaults);
    let (reread, _) = load(
        argv(&["-c", path.to_str().unwrap(), "--print-config"]),
        &env,
    )
    .unwrap();
    assert_eq!(reread.to_toml(), defaults);
}

#[test]
fn reload_rereads_the_same_file() {
    let path = TempToml::new("reload", "wsgi_app = \"app\"\nworkers = 2\n");
    let args = argv(&["-c", path.to_str().unwrap(), "--timeout", "7"]);
    let env = Environment::default();
    let (first, _) = load(args.clone(), &env).unwrap();
    std::fs::write(&*path, "wsgi_app = \"app\"\nworkers = 5\n").unwrap();
    let second = reload(&first, args, &env).unwrap();
    assert_eq!((first.workers, second.workers), (2, 5));
    assert_eq!(second.timeout, Duration::from_secs(7));
    assert_eq!(second.config_file, first.config_file);
}

#[test]
fn example_file_parses_and_documents_every_key() {
    let parsed = file::parse(Path::new("config/rgunicorn.toml"), EXAMPLE).unwrap();
    for name in Partial::NAMES {
        let line = EXAMPLE
            .lines()
            .position(|l| l.starts_with(&format!("{name} = ")));
        let line = line.unwrap_or_else(|| panic!("{name} missing from config/rgunicorn.toml"));
        let doc = EXAMPLE.lines().nth(line - 1).unwrap();
        assert!(doc.starts_with("# "), "{name} has no doc comment");
    }
    let example_valued = [
        "wsgi_app",
        "chdir",
        "virtualenv",
        "accesslog",
        "proc_name",
        "pidfile",
        "user",
        "group",
        "socket_mode",
        "metrics_bind",
        "statsd_host",
        "control_socket",
    ];
    let mut defaults = default_settings();
    let s = validate::settings(parsed, None).unwrap();
    defaults.wsgi_app = s.wsgi_app.clone();
    defaults.chdir = s.chdir.clone();
    defaults.virtualenv = s.virtualenv.clone();
    defaults.accesslog = s.accesslog.clone();
    defaults.proc_name = s.proc_name.clone();
    defaults.pidfile = s.pidfile.clone();
    defaults.user = s.user.clone();
    defaults.group = s.group.clone();
    defaults.socket_mode = s.socket_mode;
    defaults.metrics_bind = s.metrics_bind.clone();
    defaults.statsd_host = s.statsd_host.clone();
    defaults.control_socket = s.control_socket.clone();
    assert_eq!(
        s, defaults,
        "keys other than {example_valued:?} must show the default"
    );
}
