//! Tests of the settings that come from several places at once: the process settings through
//! flags, files and --print-config, gunicorn's environment and `-c` forms, the front door's
//! proxy settings. Test code only.
use std::path::Path;
use std::time::Duration;

use super::tests::{assert_config_errors, config_error, run, TempToml};
use super::*;

#[test]
fn process_settings_from_flags_file_and_print() {
    let env = Environment::default();
    let flags = [
        "app",
        "-p",
        "/run/a.pid",
        "-u",
        "www-data",
        "-g",
        "33",
        "-m",
        "027",
        "--socket-mode",
        "660",
        "-D",
        "--reload",
    ];
    let s = run(&flags, &env).unwrap();
    assert_eq!(s.pidfile.as_deref(), Some(Path::new("/run/a.pid")));
    assert_eq!(
        (s.user.as_deref(), s.group.as_deref()),
        (Some("www-data"), Some("33"))
    );
    assert_eq!((s.umask, s.socket_mode), (0o27, Some(0o660)));
    assert!(s.daemon && s.reload);
    let path = TempToml::new("process", &s.to_toml());
    assert!(s
        .to_toml()
        .contains("umask = \"0o027\"\nsocket_mode = \"660\"\n"));
    let reread = run(&["-c", path.to_str().unwrap()], &env).unwrap();
    assert_eq!(
        reread.config_file,
        Some(ConfigSource::Toml(path.to_path_buf()))
    );
    assert_eq!(
        Settings {
            config_file: None,
            ..reread
        },
        s
    );
    for (text, mask) in [
        ("umask = 0o077", 0o77),
        ("umask = 18", 18),
        ("umask = \"022\"", 0o22),
    ] {
        let path = TempToml::new("umask", &format!("wsgi_app = \"app\"\n{text}\n"));
        assert_eq!(
            run(&["-c", path.to_str().unwrap()], &env).unwrap().umask,
            mask
        );
    }
    let d = default_settings();
    assert_eq!((d.pidfile, d.user, d.group), (None, None, None));
    assert_eq!(
        (d.umask, d.socket_mode, d.daemon, d.reload),
        (0, None, false, false)
    );
}

#[test]
fn bad_process_settings_name_key_value_and_what_is_allowed() {
    let cases: &[(&[&str], &str, &str, &str)] = &[
        (&["-m", "0o1000"], "umask", "0o1000", "0o777"),
        (&["--umask", "abc"], "umask", "abc", "octal"),
        (&["--socket-mode", "9"], "socket_mode", "9", "octal"),
        (&["-u", " "], "user", "", "user name"),
        (&["-g", ""], "group", "", "group name"),
    ];
    assert_config_errors(cases);
}

#[test]
fn gunicorn_cmd_args_sit_below_ours() {
    let env = Environment {
        gunicorn_cmd_args: Some("--workers 3 --threads 2 --timeout 9".into()),
        cmd_args: Some("--workers 4".into()),
        ..Environment::default()
    };
    let s = run(&["app", "--threads", "5"], &env).unwrap();
    assert_eq!(
        (s.workers, s.threads),
        (4, 5),
        "ours, then the command line, win"
    );
    assert_eq!(s.timeout, Duration::from_secs(9));
    let env = Environment {
        gunicorn_cmd_args: Some("--workers 0".into()),
        ..Environment::default()
    };
    assert_eq!(config_error(run(&["app"], &env)).0, "workers");
}

#[test]
fn config_sources_follow_gunicorn_forms() {
    let cwd = std::env::current_dir().unwrap();
    let parse = |given: &str| ConfigSource::parse(Path::new(given)).unwrap();
    assert_eq!(
        parse("/etc/r.toml"),
        ConfigSource::Toml("/etc/r.toml".into())
    );
    assert_eq!(
        parse("gunicorn.conf.py"),
        ConfigSource::Python(PythonSource::File(cwd.join("gunicorn.conf.py")))
    );
    assert_eq!(
        parse("file:conf/site.cfg"),
        ConfigSource::Python(PythonSource::File(cwd.join("conf/site.cfg")))
    );
    assert_eq!(
        parse("python:site.gunicorn"),
        ConfigSource::Python(PythonSource::Module("site.gunicorn".into()))
    );
}

#[test]
fn the_default_config_is_gunicorns_file_unless_one_is_given() {
    let env = Environment {
        default_config: Some("/srv/gunicorn.conf.py".into()),
        ..Environment::default()
    };
    let err = run(&["app"], &env).unwrap_err();
    assert!(err.to_string().contains("/srv/gunicorn.conf.py"), "{err}");
    let path = TempToml::new("over-default", "workers = 2\n");
    let s = run(&["app", "-c", path.to_str().unwrap()], &env).unwrap();
    assert_eq!(s.workers, 2);
}

#[test]
fn gunicorn_flags_we_lack_are_recognised() {
    let env = Environment {
        gunicorn_cmd_args: Some("--worker-tmp-dir /dev/shm --no-control-socket".into()),
        ..Environment::default()
    };
    let s = run(&["app", "-R", "--no-sendfile", "--workers", "2"], &env).unwrap();
    assert_eq!(s.workers, 2);
    let (key, value, allowed) = config_error(run(&["app", "--certfile", "/c.pem"], &env));
    assert_eq!((key.as_str(), value.as_str()), ("certfile", "\"/c.pem\""));
    assert!(allowed.contains("TLS is not supported"), "{allowed}");
    let (key, value, _) = config_error(run(&["app", "--capture-output"], &env));
    assert_eq!(
        (key.as_str(), value.as_str()),
        ("capture_output", "--capture-output")
    );
    assert!(run(&["app", "--proxy-allow-from", "127.0.0.1,::1"], &env).is_ok());
}

#[test]
fn proxy_allow_ips_and_permit_missing_host_from_each_layer() {
    let path = TempToml::new(
        "front-door",
        "proxy_allow_ips = \"10.0.0.0/8, 192.0.2.1\"\npermit_missing_host = true\n",
    );
    let file_arg = format!("-c={}", path.display());
    let s = run(&["app", &file_arg], &Environment::default()).unwrap();
    assert_eq!(s.proxy_allow_ips, ["10.0.0.0/8", "192.0.2.1"]);
    assert!(s.permit_missing_host);
    let flags = [
        "app",
        "--proxy-allow-from",
        "*",
        "--permit-missing-host=false",
    ];
    let s = run(&flags, &Environment::default()).unwrap();
    assert_eq!(
        (s.proxy_allow_ips.as_slice(), s.permit_missing_host),
        (&["*".to_owned()][..], false)
    );
    let s = run(
        &["app", "--proxy-allow-ips", "::1/128"],
        &Environment::default(),
    )
    .unwrap();
    assert_eq!(s.proxy_allow_ips, ["::1/128"]);
    // FORWARDED_ALLOW_IPS is forwarded_allow_ips' fallback only, as in gunicorn.
    let env = Environment {
        forwarded_allow_ips: Some("*".into()),
        ..Environment::default()
    };
    assert_eq!(
        run(&["app"], &env).unwrap().proxy_allow_ips,
        ["127.0.0.1", "::1"]
    );
}
