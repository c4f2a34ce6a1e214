//! The control socket (`rgunicorn ctl`): one JSON object per line in, one per line out, on a unix
//! socket only the master's user can open. Each command goes through the model as its signal
//! does, and answers with what a signal cannot tell: a reload answers once the new generation
//! serves, or with why it could not. Served from the poll loop like /metrics; never blocks.
use nix::sys::signal::Signal;
use serde_json::{json, Value};

use super::events::{Event, ReloadOutcome, RestartReason, Tally};
use super::model::Phase;
use super::workers::WorkerState;
use super::Arbiter;
use crate::process::{monotonic_ms, ExitStatus};

/// `workers add|remove` answers anyway after this long, saying the workers did not settle.
const SETTLE_MS: u64 = 60_000;
/// A client with nothing to say and nothing awaited is closed after this long.
pub(super) const IDLE_MS: u64 = 600_000;

/// A command whose answer waits for the server to get there.
enum Wait {
    /// The reload that made `generation`; `errors` is the count of boot errors seen before it.
    Reload { generation: u64, errors: u64 },
    /// The current generation has as many workers serving as it should, and no more.
    Settled { deadline_ms: u64 },
    /// The worker exits.
    Exit { pid: i32 },
    /// The master exits.
    Stop,
}

/// What the master saw that pending commands wait for; kept only while someone waits.
#[derive(Default)]
pub(super) struct Control {
    waits: Vec<(u64, Wait)>,
    /// What the last ReadConfig gave (a new generation, or why not).
    pub read_config: Option<Result<u64, String>>,
    /// What the last reopen of the logs gave.
    pub reopened: Option<Result<(), String>>,
    reloads: Vec<(u64, ReloadOutcome)>,
    exits: Vec<(i32, ExitStatus)>,
}

impl Control {
    pub fn saw_tally(&mut self, tally: Tally) {
        if let Tally::Reload {
            generation: Some(generation),
            outcome,
        } = tally
        {
            if !self.waits.is_empty() {
                self.reloads.push((generation, outcome));
            }
        }
    }

    pub fn saw_exit(&mut self, pid: i32, status: ExitStatus) {
        if self
            .waits
            .iter()
            .any(|(_, w)| matches!(w, Wait::Exit { pid: p } if *p == pid))
        {
            self.exits.push((pid, status));
        }
    }

    fn waiting(&self, client: u64) -> bool {
        self.waits.iter().any(|(c, _)| *c == client)
    }
}

fn ok(mut value: Value) -> Value {
    value["ok"] = Value::Bool(true);
    value
}

fn fail(error: impl std::fmt::Display) -> Value {
    json!({"ok": false, "error": error.to_string()})
}

impl Arbiter {
    /// Runs the commands that arrived (one at a time per client), then answers what is due.
    pub(super) fn serve_control(&mut self) {
        let Some(endpoint) = &mut self.endpoints.control else {
            return;
        };
        let fresh = std::mem::take(&mut endpoint.fresh);
        for client in fresh {
            while let Some(line) = self.next_command(client) {
                if let Some(answer) = self.command(client, &line) {
                    self.answer(client, &answer);
                }
            }
        }
        self.settle_waits();
        if let Some(endpoint) = &mut self.endpoints.control {
            endpoint.sweep(monotonic_ms());
        }
    }

    /// The client's next complete line, unless it awaits an answer.
    fn next_command(&mut self, id: u64) -> Option<String> {
        if self.control.waiting(id) {
            return None;
        }
        let client = self.endpoints.control.as_mut()?.client(id)?;
        let Some(end) = client.input.iter().position(|b| *b == b'\n') else {
            if client.overflowing() {
                client.input.clear();
                let line = serde_json::to_string(&fail("command too long")).unwrap_or_default();
                client.send(format!("{line}\n").as_bytes(), true);
            }
            return None;
        };
        let line: Vec<u8> = client.input.drain(..=end).collect();
        Some(String::from_utf8_lossy(&line).trim().to_owned())
    }

    fn answer(&mut self, id: u64, answer: &Value) {
        let Some(client) = self.endpoints.control.as_mut().and_then(|e| e.client(id)) else {
            return;
        };
        let mut line = serde_json::to_string(answer).unwrap_or_default();
        line.push('\n');
        client.deadline_ms = monotonic_ms() + IDLE_MS;
        client.send(line.as_bytes(), false);
        // What it sent while it waited is read now.
        if !client.input.is_empty() {
            if let Some(endpoint) = &mut self.endpoints.control {
                endpoint.fresh.push(id);
            }
        }
    }

    /// One command: its answer, or None when the answer waits (see `settle_waits`).
    fn command(&mut self, client: u64, line: &str) -> Option<Value> {
        let request: Value = match serde_json::from_str(line) {
            Ok(request) => request,
            Err(error) => return Some(fail(format!("not a JSON object: {error}"))),
        };
        let Some(command) = request.get("command").and_then(Value::as_str) else {
            return Some(fail("no \"command\" string"));
        };
        let words: Vec<&str> = command.split_whitespace().collect();
        let running = self.model.phase == Phase::Running;
        match words[..] {
            ["show", "workers"] => Some(ok(json!({"workers": self.show_workers()}))),
            ["show", "stats"] => Some(ok(json!({"stats": self.show_stats()}))),
            ["show", "config"] => Some(ok(json!({"config": self.show_config()}))),
            ["reopen"] => Some(self.reopen()),
            ["shutdown"] | ["shutdown", "--graceful"] => {
                let graceful = words.len() == 2;
                let signal = if graceful {
                    Signal::SIGTERM
                } else {
                    Signal::SIGQUIT
                };
                self.apply(Event::Signal(signal));
                self.control.waits.push((client, Wait::Stop));
                None
            }
            _ if !running => Some(fail("the server is stopping")),
            ["reload"] => self.reload(client),
            ["workers", change, n] => self.scale(client, change, n),
            ["worker", "kill", pid] => self.retire_worker(client, pid),
            _ => Some(fail(format!(
                "unknown command {command:?}; commands: show workers, show stats, show config, \
                 reload, reopen, workers add N, workers remove N, worker kill PID, \
                 shutdown [--graceful]"
            ))),
        }
    }

    fn reopen(&mut self) -> Value {
        self.control.reopened = None;
        self.apply(Event::Signal(Signal::SIGUSR1));
        match self.control.reopened.take() {
            Some(Err(error)) => fail(format!("cannot reopen the logs: {error}")),
            _ => ok(json!({"reopened": true})),
        }
    }

    fn reload(&mut self, client: u64) -> Option<Value> {
        let errors = self.telemetry.shared().boot_error().0;
        self.control.read_config = None;
        self.apply(Event::Signal(Signal::SIGHUP));
        match self.control.read_config.take() {
            None => Some(fail("the reload did not start")),
            Some(Err(error)) => Some(fail(format!("reload failed: {error}"))),
            Some(Ok(generation)) => {
                let wait = Wait::Reload { generation, errors };
                self.control.waits.push((client, wait));
                None
            }
        }
    }

    fn scale(&mut self, client: u64, change: &str, n: &str) -> Option<Value> {
        let signal = match change {
            "add" => Signal::SIGTTIN,
            "remove" => Signal::SIGTTOU,
            _ => return Some(fail(format!("workers {change}: say add or remove"))),
        };
        let Some(n) = n.parse::<usize>().ok().filter(|n| (1..=1000).contains(n)) else {
            return Some(fail(format!(
                "workers {change} {n}: a count from 1 to 1000"
            )));
        };
        for _ in 0..n {
            self.apply(Event::Signal(signal));
        }
        let deadline_ms = monotonic_ms() + SETTLE_MS;
        self.control
            .waits
            .push((client, Wait::Settled { deadline_ms }));
        None
    }

    fn retire_worker(&mut self, client: u64, pid: &str) -> Option<Value> {
        let pid = pid.parse::<i32>().ok();
        let Some(worker) = pid.and_then(|pid| self.model.workers().find(|w| w.pid == pid)) else {
            return Some(fail(format!("no worker with pid {}", pid.unwrap_or(0))));
        };
        if !worker.is_active() {
            return Some(fail(format!("worker {} is already going", worker.pid)));
        }
        let pid = worker.pid;
        self.apply(Event::Retire {
            pid,
            reason: RestartReason::Killed,
        });
        self.control.waits.push((client, Wait::Exit { pid }));
        None
    }

    /// Answers the commands whose wait is over.
    fn settle_waits(&mut self) {
        let now = monotonic_ms();
        let waits = std::mem::take(&mut self.control.waits);
        for (client, wait) in waits {
            match self.outcome(&wait, now) {
                Some(answer) => self.answer(client, &answer),
                None => self.control.waits.push((client, wait)),
            }
        }
        if self.control.waits.is_empty() {
            self.control.reloads.clear();
            self.control.exits.clear();
        }
    }

    fn outcome(&self, wait: &Wait, now: u64) -> Option<Value> {
        match *wait {
            Wait::Reload { generation, errors } => self.reload_outcome(generation, errors),
            Wait::Settled { deadline_ms } => {
                let current = self.model.current();
                let id = current.spec.id;
                let serving = self
                    .model
                    .workers()
                    .filter(|w| w.generation == id && w.state == WorkerState::Serving)
                    .count();
                let active = self
                    .model
                    .workers()
                    .filter(|w| w.generation == id && w.is_active())
                    .count();
                let view = json!({"target": current.target, "serving": serving});
                match (
                    serving == current.target && active == current.target,
                    now >= deadline_ms,
                ) {
                    (true, _) => Some(ok(view)),
                    (false, true) => Some(
                        json!({"ok": false, "error": "the workers did not settle within 60 s", "target": current.target, "serving": serving}),
                    ),
                    (false, false) => None,
                }
            }
            Wait::Exit { pid } => {
                let (_, status) = self.control.exits.iter().find(|(p, _)| *p == pid)?;
                let status = match status {
                    ExitStatus::Code(code) => format!("exited with code {code}"),
                    ExitStatus::Signal(signal) => format!("killed by signal {signal}"),
                };
                Some(ok(json!({"pid": pid, "status": status})))
            }
            Wait::Stop => None,
        }
    }

    fn reload_outcome(&self, generation: u64, errors: u64) -> Option<Value> {
        let (_, outcome) = self
            .control
            .reloads
            .iter()
            .find(|(g, _)| *g == generation)?;
        Some(match outcome {
            ReloadOutcome::Success => {
                let of = |keep: &dyn Fn(u64) -> bool| -> Vec<i32> {
                    let workers = self.model.workers().filter(|w| keep(w.generation));
                    workers.map(|w| w.pid).collect()
                };
                // The old workers finish what they hold; new connections go to the new ones.
                let retiring = of(&|g| g != generation);
                ok(
                    json!({"generation": generation, "workers": of(&|g| g == generation), "retiring": retiring}),
                )
            }
            ReloadOutcome::Superseded => fail(format!(
                "generation {generation} was replaced by a newer reload before it booted"
            )),
            ReloadOutcome::Failed => {
                let (seen, text) = self.telemetry.shared().boot_error();
                let why = match seen > errors {
                    true => text,
                    false => "its workers exited before they could serve".to_owned(),
                };
                fail(format!("generation {generation} failed to boot; the previous workers keep serving: {why}"))
            }
        })
    }

    /// The master is exiting with `code`: a shutdown is answered, anything else still waiting is
    /// told why it will not be.
    pub(super) fn answer_at_exit(&mut self, code: i32) {
        for (client, wait) in std::mem::take(&mut self.control.waits) {
            let answer = match wait {
                Wait::Stop => ok(json!({"exit_code": code})),
                _ => fail("the server stopped"),
            };
            self.answer(client, &answer);
        }
    }
}
