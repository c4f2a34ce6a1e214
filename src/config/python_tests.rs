//! Tests of reading a Python config's names into settings, with a stand-in for the interpreter.
use std::cell::RefCell;

use super::*;

#[derive(Default)]
struct Fake {
    entries: Vec<Entry>,
    warnings: RefCell<Vec<String>>,
}

impl PythonReader for Fake {
    fn read(&self, _: &PythonSource, _: Option<&Path>) -> Result<Vec<Entry>> {
        Ok(self.entries.clone())
    }

    fn warn(&self, message: String) {
        self.warnings.borrow_mut().push(message);
    }
}

fn entry(name: &str, value: Value, repr: &str) -> Entry {
    Entry {
        name: name.to_owned(),
        value,
        repr: repr.to_owned(),
    }
}

fn read(entries: Vec<Entry>) -> (Result<Read>, Vec<String>) {
    let fake = Fake {
        entries,
        ..Fake::default()
    };
    let source = PythonSource::File("gunicorn.conf.py".into());
    let entries = fake.read(&source, None).unwrap();
    let read = settings(&source, &entries, &fake);
    (read, fake.warnings.take())
}

fn str(s: &str) -> Value {
    Value::Str(s.to_owned())
}

#[test]
fn values_take_gunicorn_forms() {
    let (read, warnings) = read(vec![
        entry("workers", str("4"), "'4'"),
        entry("bind", str("0.0.0.0:8000"), "'0.0.0.0:8000'"),
        entry("timeout", Value::Int(60), "60"),
        entry("keepalive", str("2.5"), "'2.5'"),
        entry("preload_app", str("True"), "'True'"),
        entry("pythonpath", str("a,b"), "'a,b'"),
        entry("raw_env", Value::List(vec![str("A=1")]), "['A=1']"),
        entry("umask", Value::Int(0o22), "18"),
        entry("user", Value::Int(1000), "1000"),
        entry("accesslog", Value::None, "None"),
        entry(
            "secure_scheme_headers",
            Value::Dict(vec![("X-SCHEME".into(), str("https"))]),
            "{...}",
        ),
    ]);
    let p = read.unwrap().partial;
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(p.workers, Some(4));
    assert_eq!(p.bind, Some(vec!["0.0.0.0:8000".to_owned()]));
    assert_eq!((p.timeout, p.keepalive), (Some(60.0), Some(2.5)));
    assert_eq!(p.preload_app, Some(true));
    assert_eq!(p.pythonpath, Some(vec!["a".to_owned(), "b".to_owned()]));
    assert_eq!(p.raw_env, Some(vec!["A=1".to_owned()]));
    assert_eq!(
        (p.umask.as_deref(), p.user.as_deref()),
        (Some("18"), Some("1000"))
    );
    assert_eq!(p.accesslog, None, "None leaves the default");
    assert_eq!(p.secure_scheme_headers.unwrap()["X-SCHEME"], "https");
}

#[test]
fn a_bad_value_names_key_value_and_what_is_allowed() {
    for (name, value, repr) in [
        ("workers", str("four"), "'four'"),
        ("workers", Value::Float(2.5), "2.5"),
        ("preload_app", str("maybe"), "'maybe'"),
        ("bind", Value::Other, "<object>"),
    ] {
        match read(vec![entry(name, value, repr)]).0 {
            Err(Error::Config {
                key,
                value,
                allowed,
            }) => {
                assert_eq!((key.as_str(), value.as_str()), (name, repr));
                assert!(!allowed.is_empty());
            }
            other => panic!("{name}: {:?}", other.map(|r| r.partial)),
        }
    }
}

#[test]
fn hooks_need_gunicorn_arity() {
    let hook = |arity| Value::Callable { arity, local: true };
    let (read, _) = read(vec![
        entry("post_fork", hook(2), "<function post_fork>"),
        entry("when_ready", hook(1), "<function when_ready>"),
        entry("on_exit", Value::None, "None"),
    ]);
    assert_eq!(read.unwrap().hooks, ["post_fork", "when_ready"]);
    match read_one("child_exit", hook(1)) {
        Err(Error::Config { key, allowed, .. }) => {
            assert_eq!(key, "child_exit");
            assert!(allowed.contains("(server, worker)"), "{allowed}");
        }
        other => panic!("{:?}", other.map(|r| r.hooks)),
    }
    assert!(read_one("post_request", Value::Int(1)).is_err());
}

fn read_one(name: &str, value: Value) -> Result<Read> {
    read(vec![entry(name, value, "x")]).0
}

#[test]
fn gunicorn_settings_we_lack_are_errors_or_warnings() {
    let (read, warnings) = read(vec![
        entry("worker_tmp_dir", str("/dev/shm"), "'/dev/shm'"),
        entry("certfile", Value::None, "None"),
        entry("capture_output", Value::Bool(false), "False"),
        entry("protocol", str("http"), "'http'"),
        entry("proxy_allow_ips", str("127.0.0.1,::1"), "'127.0.0.1,::1'"),
        entry("print_config", Value::Bool(true), "True"),
    ]);
    assert!(read.is_ok());
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("worker_tmp_dir") && warnings[0].contains("shared memory"));
    assert!(warnings[1].contains("command line"));
    for (name, value) in [
        ("certfile", str("/etc/cert.pem")),
        ("capture_output", Value::Bool(true)),
        ("syslog", Value::Bool(true)),
        ("protocol", str("uwsgi")),
    ] {
        match read_one(name, value) {
            Err(Error::Config { key, allowed, .. }) => {
                assert_eq!(key, name);
                assert!(allowed.contains("not supported"), "{allowed}");
            }
            other => panic!("{name}: {:?}", other.map(|r| r.hooks)),
        }
    }
}

#[test]
fn gunicorns_statsd_and_control_socket_settings_are_ours() {
    for (name, value) in [
        ("statsd_host", str("localhost:8125")),
        ("statsd_prefix", str("web")),
        ("dogstatsd_tags", str("env:prod")),
        ("control_socket", str("/run/app.ctl")),
    ] {
        assert!(read_one(name, value).is_ok(), "{name}");
    }
}

#[test]
fn unknown_names_warn_but_modules_private_names_and_imports_do_not() {
    let (read, warnings) = read(vec![
        entry("wrokers", Value::Int(4), "4"),
        entry("os", Value::Module, "<module 'os'>"),
        entry("_private", Value::Int(1), "1"),
        entry("__name__", str("__config__"), "'__config__'"),
        entry(
            "cpu_count",
            Value::Callable {
                arity: 0,
                local: false,
            },
            "<built-in>",
        ),
        entry(
            "post_frok",
            Value::Callable {
                arity: 2,
                local: true,
            },
            "<function>",
        ),
    ]);
    assert!(read.is_ok());
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("wrokers is not a gunicorn setting"));
    assert!(warnings[1].contains("post_frok"));
}
