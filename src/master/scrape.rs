//! /metrics: answers what the master's metrics endpoint received, from the counters in shared
//! memory and what the master knows now (workers by state, requests in flight, listen queues,
//! memory). One request per connection, answered at once; never blocks, never changes the model.
use super::workers::{Worker, WorkerState};
use super::Arbiter;
use crate::metrics::exposition::{self, Format, Gauges};
use crate::process::monotonic_ms;

/// What a scraper asked, once its request head is complete.
#[derive(Debug, PartialEq, Eq)]
enum Scrape {
    Incomplete,
    Metrics { format: Format, head_only: bool },
    Refused(u16, &'static str),
}

impl Arbiter {
    /// Answers every scrape whose request arrived.
    pub(super) fn serve_scrapes(&mut self) {
        let Some(endpoint) = &mut self.endpoints.metrics else {
            return;
        };
        let fresh = std::mem::take(&mut endpoint.fresh);
        for id in fresh {
            let Some(client) = self.endpoints.metrics.as_mut().and_then(|e| e.client(id)) else {
                continue;
            };
            let scrape = match parse(&client.input) {
                Scrape::Incomplete if client.overflowing() || client.ended => {
                    Scrape::Refused(400, "Bad Request")
                }
                scrape => scrape,
            };
            let response = match scrape {
                Scrape::Incomplete => continue,
                Scrape::Refused(status, reason) => {
                    response(status, reason, "text/plain", b"", false)
                }
                Scrape::Metrics { format, head_only } => {
                    let body = self.metrics_text(format);
                    response(200, "OK", format.content_type(), body.as_bytes(), head_only)
                }
            };
            if let Some(client) = self.endpoints.metrics.as_mut().and_then(|e| e.client(id)) {
                client.input.clear();
                client.send(&response, true);
            }
        }
        if let Some(endpoint) = &mut self.endpoints.metrics {
            endpoint.sweep(monotonic_ms());
        }
    }

    pub(super) fn metrics_text(&self, format: Format) -> String {
        exposition::render(&self.telemetry.shared().totals(), &self.gauges(), format)
    }

    /// A worker's requests in flight, from its threads' heartbeat records.
    pub(super) fn in_flight(&self, worker: &Worker) -> usize {
        self.table(worker.generation).map_or(0, |table| {
            let views = table.heartbeats.view_worker(worker.slot);
            views.iter().filter(|v| v.busy_since.is_some()).count()
        })
    }

    /// The gauges only the master can see: its workers, their heartbeats and lanes, the queues.
    pub(super) fn gauges(&self) -> Gauges {
        let shared = self.telemetry.shared();
        let mut gauges = Gauges::default();
        let mut states = WorkerState::NAMES.map(|name| (name, 0));
        for worker in self.model.workers() {
            states[worker.state.index()].1 += 1;
            gauges.in_flight += self.in_flight(worker) as u64;
            if let Some(id) = shared.worker_id(worker.pid) {
                let lane = shared.lane(Some(id));
                gauges.open_connections += lane.open_connections();
                gauges.memory.push((id, lane.memory()));
            }
        }
        gauges.memory.sort_unstable();
        gauges.workers = states.to_vec();
        gauges.listen_queues = (self.listeners.iter())
            .map(|l| (l.describe(), l.listen_queue().map(|q| (q.depth, q.limit))))
            .collect();
        gauges
    }
}

/// Reads a request head: `GET /metrics` (or HEAD), with its Accept header.
fn parse(input: &[u8]) -> Scrape {
    let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Scrape::Incomplete;
    };
    let Ok(head) = std::str::from_utf8(&input[..end]) else {
        return Scrape::Refused(400, "Bad Request");
    };
    let mut lines = head.split("\r\n");
    let mut words = lines.next().unwrap_or("").split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Scrape::Refused(405, "Method Not Allowed"),
    };
    if path != "/metrics" {
        return Scrape::Refused(404, "Not Found");
    }
    let accept = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("accept"))
        .map_or("", |(_, value)| value);
    Scrape::Metrics {
        format: Format::from_accept(accept),
        head_only,
    }
}

fn response(
    status: u16,
    reason: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_once_complete() {
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"),
            Scrape::Incomplete
        );
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n"),
            Scrape::Metrics { format: Format::OpenMetrics, head_only: false }
        );
        assert_eq!(
            parse(b"HEAD /metrics?x HTTP/1.0\r\n\r\n"),
            Scrape::Metrics {
                format: Format::Prometheus,
                head_only: true
            }
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\n\r\n"),
            Scrape::Refused(404, "Not Found")
        );
        assert_eq!(
            parse(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Scrape::Refused(405, "Method Not Allowed")
        );
        assert_eq!(
            parse(b"GET /\xff HTTP/1.1\r\n\r\n"),
            Scrape::Refused(400, "Bad Request")
        );
    }
}
