//! The master's side of the zygote link: starting a generation's zygote, reading its ready
//! message, and asking it for a worker. Each answer is matched to its request by id; a lost or
//! mismatched answer is reported as a lost zygote, for the model to replace. The zygote itself
//! lives in `worker::zygote`; no decisions are made here.
use std::time::Duration;

use super::events::Event;
use super::{signals, Arbiter};
use crate::process::{self, frame_pipe, Forked, FrameReader, FrameWriter, Receive};
use crate::worker::link::{ForkRequest, Reply, FORK_REPLY_TIMEOUT};
use crate::worker::zygote::{self as child, ZygoteContext, ZygoteLink};
use crate::{wsgi, Result};

/// The master's ends of one zygote's link.
pub(super) struct Link {
    pub generation: u64,
    pub pid: i32,
    pub ready: bool,
    /// Its replies pipe broke before the ready message: no longer polled, its exit is awaited.
    pub broken: bool,
    requests: FrameWriter,
    pub replies: FrameReader,
}

impl Link {
    /// Reads the ready message, once the replies pipe is readable.
    pub fn take_ready(&mut self) -> Option<Event> {
        match self
            .replies
            .receive(Duration::ZERO)
            .map(|f| Reply::decode(&f))
        {
            Ok(Some(Reply::Ready)) if !self.ready => {
                self.ready = true;
                Some(Event::ZygoteReady {
                    generation: self.generation,
                })
            }
            Err(Receive::TimedOut) => None,
            // End of file (it could not import the app) or nonsense: its exit is reaped and
            // reported, and one that stays is killed at the model's start deadline. Killing it
            // here would race its exit and hide its exit code (4: the app failed to load).
            _ => {
                self.broken = true;
                tracing::debug!(
                    "zygote (pid:{}) broke its link before it was ready",
                    self.pid
                );
                None
            }
        }
    }

    /// One fork request and its answer.
    pub fn fork(&self, id: u64, slot: usize) -> std::result::Result<i32, (bool, String)> {
        let request = ForkRequest {
            id,
            slot: slot as u32,
        };
        if let Err(error) = self.requests.send(&request.encode()) {
            return Err((true, error.to_string()));
        }
        match self
            .replies
            .receive(FORK_REPLY_TIMEOUT)
            .map(|f| Reply::decode(&f))
        {
            Ok(Some(Reply::Forked { id: answered, pid })) if answered == id => Ok(pid),
            Ok(Some(Reply::Failed {
                id: answered,
                errno,
            })) if answered == id => {
                Err((false, std::io::Error::from_raw_os_error(errno).to_string()))
            }
            Ok(reply) => Err((true, format!("answer {reply:?} to request {id}"))),
            Err(Receive::TimedOut) => {
                Err((true, format!("no answer within {FORK_REPLY_TIMEOUT:?}")))
            }
            Err(Receive::Closed) => Err((true, "the link closed".into())),
        }
    }
}

impl Arbiter {
    pub(super) fn start_zygote(&mut self, generation: u64) -> Event {
        match self.fork_zygote(generation) {
            Ok(link) => {
                let pid = link.pid;
                tracing::debug!("zygote started (pid {pid})");
                self.zygotes.push(link);
                Event::ZygoteStarted { generation, pid }
            }
            Err(error) => Event::ZygoteStartFailed {
                generation,
                error: error.to_string(),
            },
        }
    }

    fn fork_zygote(&mut self, generation: u64) -> Result<Link> {
        let (requests_read, requests) = frame_pipe()?;
        let (replies, replies_write) = frame_pipe()?;
        let mask = signals::block_all();
        let forked = wsgi::fork_with_python(process::fork, |r| matches!(r, Ok(Forked::Child)));
        if let Ok(Forked::Child) = forked {
            drop((requests, replies));
            self.become_child();
            let table = self
                .table(generation)
                .expect("the model starts zygotes of known generations");
            let code = child::run(
                ZygoteContext {
                    settings: &table.settings,
                    listeners: &self.listeners,
                    heartbeats: table.heartbeats.clone(),
                    identity: self.identity.as_ref(),
                },
                ZygoteLink {
                    requests: requests_read,
                    replies: replies_write,
                },
            );
            std::process::exit(code);
        }
        signals::restore_mask(&mask);
        let Forked::Parent { child } = forked? else {
            unreachable!("the child branch exits")
        };
        Ok(Link {
            generation,
            pid: child,
            ready: false,
            broken: false,
            requests,
            replies,
        })
    }

    /// Forks a worker through the generation's zygote.
    pub(super) fn fork_from_zygote(&mut self, generation: u64, slot: usize, id: u64) -> Event {
        let Some(link) = self
            .zygotes
            .iter()
            .find(|z| z.generation == generation && z.ready)
        else {
            let error = "no ready zygote".to_string();
            return Event::ForkFailed {
                generation,
                slot,
                zygote_lost: true,
                error,
            };
        };
        match link.fork(id, slot) {
            Ok(pid) => Event::Forked {
                generation,
                slot,
                pid,
            },
            Err((zygote_lost, error)) => Event::ForkFailed {
                generation,
                slot,
                zygote_lost,
                error,
            },
        }
    }

    pub(super) fn forget_zygote(&mut self, pid: i32) {
        self.zygotes.retain(|z| z.pid != pid);
    }

    /// Keeps the links of the zygotes the model still has: a zygote whose exit was reaped takes
    /// its link along, so a pipe at end of file is never polled again.
    pub(super) fn forget_exited_zygotes(&mut self) {
        let model = &self.model;
        self.zygotes.retain(|z| model.has_zygote(z.pid));
    }
}
