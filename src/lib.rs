//! rgunicorn: a pre-fork HTTP/1.1 server for Python WSGI apps; this file is the module map only.
//!
//! ```text
//! main.rs   CLI -> config::load -> logging::init -> master::run; Error -> message + exit code
//! config    clap + TOML + RGUNICORN_CMD_ARGS merged into one validated Settings (pure)
//! logging   gunicorn-style error log (tracing) and access log formatting
//! master    single-threaded arbiter: a pure model decides (model.rs, converge.rs), the loop
//!           observes (observe.rs) and acts (effects.rs, zygote.rs, spawn.rs); no tokio, no Python
//! worker    child entry after fork: Python, app, tokio reactor, thread pool, heartbeat
//! http      request-head parser, body framing, response framing, the per-worker reactor
//! wsgi      the Python bridge (the only user of pyo3): interpreter, app, environ, streams
//! sockets   OS: bind/inherit listeners, accept without the reactor, blocking I/O with deadlines
//! process   OS: fork, signals to children, waitpid, shared memory, process title
//! pidfile   OS: the master's pid file, written atomically, `.oldbin` on USR2, removed on exit
//! privileges OS: user/group lookup, workers' privilege drop, umask, socket file owner and mode
//! systemd   OS: sd_notify (READY, RELOADING, STOPPING, STATUS, WATCHDOG, MAINPID), LISTEN_FDS
//! error     the one Error enum and the exit codes
//! ```
//!
//! Where is:
//!
//! | behaviour | file |
//! |---|---|
//! | HUP: new generation, fallback to the newest that booted | master/model.rs (`new_generation`, `boot_failed`), master/converge.rs (`finish_reload`) |
//! | TERM/INT: bounded stop | master/model.rs (`begin_stop`), master/converge.rs (`converge_stop`) |
//! | max_requests | http/server.rs (`is_last_request`), worker/mod.rs (`beat` reports it), master/model.rs (`self_retiring`) |
//! | timeouts with the request named | master/workers.rs (`find_timeout`), master/model.rs (`timed_out`), heartbeat.rs |
//! | the zygote link | worker/link.rs (messages), master/zygote.rs, worker/zygote.rs |
//! | drains (idle and half-sent connections) | http/head_read.rs |
//! | the access log line | logging/access.rs, worker/observe.rs |
//! | exit codes | error.rs |
//! | Host required and valid (permit_missing_host) | http/framing.rs (`check_host`), http/target.rs (`valid_host_port`) |
//! | Transfer-Encoding: exactly one chunked, else 501/400 | http/framing.rs (`transfer_coding`) |
//! | PROXY preambles only from proxy_allow_ips (403 otherwise) | http/server.rs (`proxy_policy`), http/proxy.rs (`refuse_preamble`), http/peers.rs |
//! | request limits resolved once | config/validate.rs, then http/request.rs (`HeadRules::of`) |
//! | small bodies read ahead and decoded once | http/prefetch.rs, http/body.rs (`decode_ahead`) |
//! | held responses leave before any other write | http/outbox.rs |
//! | a body found malformed while the app reads it: 400 | wsgi/streams.rs (`malformed`), wsgi/handler.rs (`body_failed`) |
//!
//! Layering: http never uses wsgi, worker or master; wsgi uses http types and the body/response
//! machinery only; pyo3 appears only under `wsgi`; libc/nix/unsafe only in the OS modules.

pub mod clock;
pub mod config;
pub mod error;
pub mod heartbeat;
pub mod http;
pub mod logging;
pub mod master;
pub mod pidfile;
pub mod privileges;
pub mod process;
pub mod sockets;
pub mod systemd;
pub mod worker;
pub mod wsgi;

pub use error::{Error, Result};
