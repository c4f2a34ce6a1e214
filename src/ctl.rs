//! `rgunicorn ctl [--socket PATH] COMMAND...`: sends one command to a running master's control
//! socket and prints its JSON answer. Exit status 0 when the master says ok, 1 when it says not
//! (or cannot be reached), 2 for a usage error. Never starts or signals anything itself.
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde_json::{json, Value};

use crate::error::{EXIT_FAILURE, EXIT_OK, USAGE_ERROR};

/// Talk to a running rgunicorn master through its control socket.
#[derive(Debug, Parser)]
#[command(
    name = "rgunicorn ctl",
    after_help = "Commands: show workers, show stats, show config, reload, reopen, \
                  workers add N, workers remove N, worker kill PID, shutdown [--graceful]"
)]
struct Ctl {
    /// The master's control_socket [default: $RGUNICORN_CONTROL_SOCKET].
    #[arg(long, value_name = "PATH", env = "RGUNICORN_CONTROL_SOCKET")]
    socket: Option<PathBuf>,
    /// Seconds to wait for the answer (a reload answers once the new workers serve).
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    timeout: f64,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Runs `rgunicorn ctl` with `args` (what follows `ctl`); returns the exit status.
pub fn main(args: &[std::ffi::OsString]) -> i32 {
    let words = std::iter::once("rgunicorn ctl".into()).chain(args.iter().cloned());
    let ctl = match Ctl::try_parse_from(words) {
        Ok(ctl) => ctl,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                USAGE_ERROR
            } else {
                EXIT_OK
            };
        }
    };
    let Some(socket) = &ctl.socket else {
        eprintln!("rgunicorn ctl: give --socket PATH (the server's control_socket)");
        return USAGE_ERROR;
    };
    match ask(socket, &ctl.command.join(" "), ctl.timeout) {
        Ok(answer) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&answer).unwrap_or_default()
            );
            match answer.get("ok").and_then(Value::as_bool) {
                Some(true) => EXIT_OK,
                _ => EXIT_FAILURE,
            }
        }
        Err(error) => {
            eprintln!("rgunicorn ctl: {}: {error}", socket.display());
            EXIT_FAILURE
        }
    }
}

fn ask(socket: &std::path::Path, command: &str, timeout: f64) -> std::io::Result<Value> {
    let timeout = Duration::try_from_secs_f64(timeout)
        .ok()
        .filter(|t| !t.is_zero());
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)?;
    let mut request = serde_json::to_string(&json!({ "command": command }))?;
    request.push('\n');
    stream.write_all(request.as_bytes())?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the master closed the connection without an answer",
        ));
    }
    serde_json::from_str(&line).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_the_words_after_the_options() {
        let ctl = Ctl::try_parse_from(["ctl", "--socket", "/run/a.ctl", "shutdown", "--graceful"])
            .unwrap();
        assert_eq!(ctl.command, ["shutdown", "--graceful"]);
        assert_eq!(ctl.socket, Some(PathBuf::from("/run/a.ctl")));
        assert!(
            Ctl::try_parse_from(["ctl", "--socket", "/x"]).is_err(),
            "a command is needed"
        );
    }

    #[test]
    fn no_master_is_an_error() {
        let missing = std::path::Path::new("/nonexistent/rgunicorn.ctl");
        assert!(ask(missing, "show stats", 1.0).is_err());
    }
}
