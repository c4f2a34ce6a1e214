//! A statsd sink for the observed rgunicorn: a UDP socket on loopback whose datagrams a thread
//! reads and drops, as a statsd server would; it never parses or keeps what it reads.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A UDP socket on loopback whose datagrams a thread reads and drops, until it is dropped.
pub struct StatsdSink {
    socket: Arc<UdpSocket>,
    stop: Arc<AtomicBool>,
}

impl StatsdSink {
    pub fn start() -> Result<StatsdSink, String> {
        let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("statsd sink: {e}"))?;
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        let sink = StatsdSink {
            socket: Arc::new(socket),
            stop: Arc::default(),
        };
        let (socket, stop) = (sink.socket.clone(), sink.stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                let _ = socket.recv(&mut buf);
            }
        });
        Ok(sink)
    }

    pub fn address(&self) -> String {
        self.socket
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    }
}

impl Drop for StatsdSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
