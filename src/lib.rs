//! rgunicorn: a pre-fork HTTP/1.1 server for Python WSGI apps; this file is the module map only.
//!
//! ```text
//! main.rs   the cargo binary: argv -> cli::run
//! cli       argv -> config::load_with -> logging::init -> master::run; Error -> message + exit code;
//!           shared by main.rs and the wheel's `main(argv)` (wsgi/module.rs); `ctl` goes to ctl.rs
//! ctl       `rgunicorn ctl`: one command to a running master's control socket, its JSON answer
//! config    clap + config file (TOML, or gunicorn.conf.py through wsgi's reader) + GUNICORN_CMD_ARGS
//!           + RGUNICORN_CMD_ARGS merged into one validated Settings (pure)
//! logging   gunicorn-style error log (tracing) and access log formatting, text or JSON lines
//! master    single-threaded arbiter: a pure model decides (model.rs, exits.rs, converge.rs;
//!           invariants.rs checks it), the loop observes (observe.rs) and acts (effects.rs,
//!           zygote.rs, spawn.rs); no tokio, no Python
//! worker    child entry after fork: Python, app, tokio reactor, thread pool, heartbeat
//! metrics   counters in shared memory (worker lanes, the master's tallies), worker ids, exposition
//! http      request-head parser, body framing, response framing, the per-worker reactor
//! wsgi      the Python bridge (the only user of pyo3): interpreter, app, environ, streams, the
//!           Python config reader, the server hooks' objects and calls, the wheel's #[pymodule]
//! statsd    gunicorn's statsd metrics over UDP or a unix datagram socket, batched, never blocking
//! sockets   OS: bind/inherit listeners, accept without the reactor, blocking I/O with deadlines
//! process   OS: fork, signals to children, waitpid, shared memory, process title, the zygote
//!           link's message pipes (frames.rs)
//! pidfile   OS: the master's pid file, written atomically, `.oldbin` on USR2, removed on exit
//! privileges OS: user/group lookup, workers' privilege drop, umask, socket file owner and mode
//! systemd   OS: sd_notify (READY, RELOADING, STOPPING, STATUS, WATCHDOG, MAINPID), LISTEN_FDS
//! error     the one Error enum and the exit codes
//! clock, digits  pure text helpers: civil dates from Unix seconds; decimals without `fmt`
//! ```
//!
//! Where is:
//!
//! | behaviour | file |
//! |---|---|
//! | HUP: new generation, fallback to the newest that booted | master/model.rs (`new_generation`), master/exits.rs (`boot_failed`), master/converge.rs (`finish_reload`) |
//! | TERM/INT: bounded stop | master/model.rs (`begin_stop`), master/converge.rs (`converge_stop`) |
//! | max_requests | http/server.rs (`is_last_request`), worker/observe.rs (`report_last_request`), master/model.rs (`self_retiring`) |
//! | timeouts with the request named | master/workers.rs (`find_timeout`), master/model.rs (`timed_out`), heartbeat.rs |
//! | the zygote link | worker/link.rs (messages), master/zygote.rs, worker/zygote.rs |
//! | a worker serves only once the master recorded its pid (a lost fork answer: exit unseen) | master/effects.rs (`fork`), worker/mod.rs (`known_to_master`), heartbeat.rs (`standing`) |
//! | drains (idle and half-sent connections closed, a first request on its way answered; a second TERM) | http/head_read.rs (`read_head`), process.rs (`exit_on_second_term`) |
//! | a worker's signals (TERM drains, USR2 retires, USR1 reopens logs), code reload | worker/reactor.rs (`watch_signals`, `watch_code`) |
//! | the master's model tests (random sequences, named regressions) | master/model_world.rs, master/model_tests.rs |
//! | the access log line (written in batches) | logging/access.rs, logging/json_access.rs (JSON), worker/observe.rs (`flush_often`) |
//! | a request's duration and its log line's time (two clock reads, the wall clock's offset kept) | worker/observe.rs (`Observed::handle`), worker/wall_clock.rs |
//! | exit codes | error.rs |
//! | gunicorn.conf.py: which names are settings, hooks, errors, warnings | config/python.rs, config/gunicorn.rs |
//! | running a Python config (the interpreter of a cargo binary's master starts there) | wsgi/config_file.rs |
//! | server hooks: objects and calls | wsgi/hooks.rs (+ hooks.py) |
//! | master hooks at the model's events and actions | master/hooks.rs |
//! | worker hooks (post_fork ... worker_abort on the hook thread) | worker/hooks.rs |
//! | pre_request / post_request around the app | wsgi/handler.rs (`call_app_with_hooks`) |
//! | the wheel: `main(argv)`, USR2 with sys.executable | wsgi/module.rs, python/rgunicorn/, cli.rs |
//! | CPython's fork hooks around every fork of a process with Python | wsgi/interpreter.rs (`fork_with_python`) |
//! | JSON logs, the WORKER TIMEOUT record with its traceback | logging/json.rs, logging/json_access.rs, master/telemetry.rs (`report_timeout`) |
//! | worker ids (`RGUNICORN_WORKER_ID`), prometheus_client multiprocess | metrics/shared.rs (`claim`), wsgi/identity.rs, master/telemetry.rs |
//! | restarts by reason, boot failures, reloads by outcome | master/events.rs (`Tally`), master/exits.rs, master/converge.rs |
//! | /metrics (served by the master, non-blocking) | master/endpoint.rs, master/scrape.rs, metrics/exposition.rs |
//! | per-request counters, connections, worker memory | worker/observe.rs, metrics/shared.rs (`Lane`), worker/reactor.rs (`beat`) |
//! | listen queue depth | sockets/queue.rs |
//! | max_worker_memory | worker/reactor.rs (`beat` measures), master/observe.rs (`over_memory`), master/model.rs (`retire_for`) |
//! | the control socket and `rgunicorn ctl` | master/control.rs, master/control_show.rs, ctl.rs |
//! | statsd (gunicorn's names, batched per worker, log counts) | statsd.rs, worker/observe.rs (`Reporting`), master/telemetry.rs (`tick`) |
//! | the Grafana dashboard, the Loki pipeline | config/grafana/rgunicorn.json, config/loki/rgunicorn.alloy |
//! | Host required and valid (permit_missing_host) | http/framing.rs (`check_host`), http/target.rs (`valid_host_port`) |
//! | Transfer-Encoding: exactly one chunked, else 501/400 | http/framing.rs (`transfer_coding`) |
//! | PROXY preambles only from proxy_allow_ips (403 otherwise) | http/server.rs (`proxy_policy`), http/proxy.rs (`refuse_preamble`), http/peers.rs |
//! | request limits resolved once | config/validate.rs, then http/request.rs (`HeadRules::of`) |
//! | small bodies read ahead and decoded once | http/prefetch.rs, http/body.rs (`decode_ahead`) |
//! | held responses leave before any other write | http/outbox.rs |
//! | a body found malformed while the app reads it: 400 | wsgi/streams.rs (`malformed`), wsgi/handler.rs (`body_failed`) |
//!
//! Layering: http never uses wsgi, worker or master; wsgi uses http types and the body/response
//! machinery only, config's types (Settings for the hooks' `cfg`, the PythonReader trait it
//! implements) and `cli::run` from the wheel's entry point; pyo3 appears only under `wsgi`;
//! libc/nix/unsafe only in the OS modules.

pub mod cli;
pub mod clock;
pub mod config;
pub mod ctl;
pub mod digits;
pub mod error;
pub mod heartbeat;
pub mod http;
pub mod logging;
pub mod master;
pub mod metrics;
pub mod pidfile;
pub mod privileges;
pub mod process;
pub mod sockets;
pub mod statsd;
pub mod systemd;
pub mod worker;
pub mod wsgi;

pub use error::{Error, Result};
