//! The typed messages between the master and a zygote: a fork request names its id and slot, and
//! every reply names the request it answers, so a late answer can never be taken for another.
//! Encoding only; the pipes are `process::frame_pipe` and the policy is the master's.
use std::time::Duration;

use crate::process::FRAME;

/// How long the master waits for the zygote to answer a fork request (it forks in milliseconds).
/// A worker the master has not recorded by then was given up on, and exits without serving.
pub const FORK_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Ask the zygote for a worker in `slot`; `id` is unique within the master's life and is also
/// the worker's claim on its heartbeat slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkRequest {
    pub id: u64,
    pub slot: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The app is imported; requests are taken from now on.
    Ready,
    Forked {
        id: u64,
        pid: i32,
    },
    Failed {
        id: u64,
        errno: i32,
    },
}

const READY: u32 = 1;
const FORKED: u32 = 2;
const FAILED: u32 = 3;

fn frame(kind: u32, value: u32, id: u64) -> [u8; FRAME] {
    let mut frame = [0u8; FRAME];
    frame[0..4].copy_from_slice(&kind.to_le_bytes());
    frame[4..8].copy_from_slice(&value.to_le_bytes());
    frame[8..16].copy_from_slice(&id.to_le_bytes());
    frame
}

fn fields(frame: &[u8; FRAME]) -> (u32, u32, u64) {
    let word = |range: std::ops::Range<usize>| {
        u32::from_le_bytes(frame[range].try_into().expect("4 bytes"))
    };
    let id = u64::from_le_bytes(frame[8..16].try_into().expect("8 bytes"));
    (word(0..4), word(4..8), id)
}

impl ForkRequest {
    pub fn encode(self) -> [u8; FRAME] {
        frame(FORKED, self.slot, self.id)
    }

    pub fn decode(frame: &[u8; FRAME]) -> Option<Self> {
        match fields(frame) {
            (FORKED, slot, id) => Some(ForkRequest { id, slot }),
            _ => None,
        }
    }
}

impl Reply {
    pub fn encode(self) -> [u8; FRAME] {
        match self {
            Reply::Ready => frame(READY, 0, 0),
            Reply::Forked { id, pid } => frame(FORKED, pid as u32, id),
            Reply::Failed { id, errno } => frame(FAILED, errno as u32, id),
        }
    }

    pub fn decode(frame: &[u8; FRAME]) -> Option<Self> {
        match fields(frame) {
            (READY, 0, 0) => Some(Reply::Ready),
            (FORKED, pid, id) if pid as i32 > 0 => Some(Reply::Forked {
                id,
                pid: pid as i32,
            }),
            (FAILED, errno, id) => Some(Reply::Failed {
                id,
                errno: errno as i32,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        for reply in [
            Reply::Ready,
            Reply::Forked { id: 7, pid: 4242 },
            Reply::Failed { id: 8, errno: 11 },
        ] {
            assert_eq!(Reply::decode(&reply.encode()), Some(reply));
        }
        let request = ForkRequest {
            id: u64::MAX,
            slot: 3,
        };
        assert_eq!(ForkRequest::decode(&request.encode()), Some(request));
        assert_eq!(Reply::decode(&[0u8; FRAME]), None);
        assert_eq!(
            Reply::decode(&frame(FORKED, 0, 1)),
            None,
            "pid 0 is no worker"
        );
        assert_eq!(ForkRequest::decode(&Reply::Ready.encode()), None);
    }
}
