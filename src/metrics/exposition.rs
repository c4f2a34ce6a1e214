//! The Prometheus text exposition (0.0.4) and OpenMetrics 1.0 of the shared counters and the
//! master's gauges. Pure text from a snapshot; never reads shared memory or the clock itself.
use std::fmt::{Display, Write};

use super::labels::{ReloadOutcome, RestartReason, BUCKETS_NS, METHODS, STATUS_CLASSES};
use super::Totals;

const PROMETHEUS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the master knows now, besides the counters.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub in_flight: u64,
    pub open_connections: u64,
    /// Workers by state label (booting, serving, retiring, killed).
    pub workers: Vec<(&'static str, u64)>,
    /// Per listener (as `describe` names it): its accept queue depth and limit, when known.
    pub listen_queues: Vec<(String, Option<(u32, u32)>)>,
    /// Per live worker id: its unshared memory in bytes (0 until it measured).
    pub memory: Vec<(u32, u64)>,
}

/// The exposition format a scraper asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Prometheus,
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the Accept header offers it (Prometheus asks so by default).
    pub fn from_accept(accept: &str) -> Format {
        match accept.contains("application/openmetrics-text") {
            true => Format::OpenMetrics,
            false => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => PROMETHEUS_TYPE,
            Format::OpenMetrics => OPENMETRICS_TYPE,
        }
    }
}

/// The whole exposition.
pub fn render(totals: &Totals, gauges: &Gauges, format: Format) -> String {
    let mut w = Writer {
        out: String::with_capacity(8192),
        format,
    };
    requests(&mut w, totals);
    w.counter(
        "rgunicorn_http_request_body_bytes",
        "Request body bytes read.",
        &[(&[], totals.request_bytes)],
    );
    w.counter(
        "rgunicorn_http_response_body_bytes",
        "Response body bytes sent.",
        &[(&[], totals.response_bytes)],
    );
    w.gauge(
        "rgunicorn_http_requests_in_flight",
        "Requests being handled now.",
        &[(&[], gauges.in_flight)],
    );
    w.counter(
        "rgunicorn_connections_accepted",
        "Connections accepted by the workers.",
        &[(&[], totals.accepted)],
    );
    w.gauge(
        "rgunicorn_connections_open",
        "Connections the workers hold open now.",
        &[(&[], gauges.open_connections)],
    );
    workers(&mut w, totals, gauges);
    listen_queues(&mut w, gauges);
    w.counter(
        "rgunicorn_statsd_send_errors",
        "statsd datagrams that could not be sent.",
        &[(&[], totals.statsd_errors)],
    );
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    w.gauge(
        "rgunicorn_build_info",
        "The running rgunicorn's version.",
        &[(&version, 1u8)],
    );
    if format == Format::OpenMetrics {
        w.out.push_str("# EOF\n");
    }
    w.out
}

fn requests(w: &mut Writer, totals: &Totals) {
    let mut samples = Vec::with_capacity(METHODS.len() * STATUS_CLASSES.len());
    let labels: Vec<[(&str, &str); 2]> = METHODS
        .iter()
        .flat_map(|m| {
            STATUS_CLASSES
                .iter()
                .map(move |c| [("method", *m), ("status_class", *c)])
        })
        .collect();
    for (i, label) in labels.iter().enumerate() {
        let row = &totals.requests[i / STATUS_CLASSES.len()];
        samples.push((&label[..], row[i % STATUS_CLASSES.len()]));
    }
    w.counter(
        "rgunicorn_http_requests",
        "Requests answered, by method and status class.",
        &samples,
    );
    let name = "rgunicorn_http_request_duration_seconds";
    w.header(
        name,
        "histogram",
        "Time from the request head to the end of the response.",
    );
    let mut cumulative = 0;
    for (i, count) in totals.duration.iter().enumerate() {
        cumulative += count;
        let le = BUCKETS_NS
            .get(i)
            .map_or("+Inf".to_owned(), |ns| seconds(*ns));
        w.sample(&format!("{name}_bucket"), &[("le", &le)], cumulative);
    }
    w.sample(&format!("{name}_sum"), &[], seconds(totals.duration_sum_ns));
    w.sample(&format!("{name}_count"), &[], cumulative);
}

fn workers(w: &mut Writer, totals: &Totals, gauges: &Gauges) {
    let states: Vec<([(&str, &str); 1], u64)> = gauges
        .workers
        .iter()
        .map(|(state, n)| ([("state", *state)], *n))
        .collect();
    let samples: Vec<_> = states.iter().map(|(l, n)| (&l[..], *n)).collect();
    w.gauge("rgunicorn_workers", "Worker processes by state.", &samples);
    let reasons: Vec<_> = RestartReason::ALL.map(|r| [("reason", r.label())]).to_vec();
    let samples: Vec<_> = reasons
        .iter()
        .zip(totals.restarts)
        .map(|(l, n)| (&l[..], n))
        .collect();
    w.counter(
        "rgunicorn_worker_restarts",
        "Workers that went and were replaced, by reason.",
        &samples,
    );
    w.counter(
        "rgunicorn_worker_timeouts",
        "Workers killed for running past timeout.",
        &[(&[], totals.timeouts)],
    );
    w.counter(
        "rgunicorn_worker_boot_failures",
        "Workers or zygotes that exited before serving.",
        &[(&[], totals.boot_failures)],
    );
    let outcomes: Vec<_> = ReloadOutcome::ALL
        .map(|o| [("outcome", o.label())])
        .to_vec();
    let samples: Vec<_> = outcomes
        .iter()
        .zip(totals.reloads)
        .map(|(l, n)| (&l[..], n))
        .collect();
    w.counter("rgunicorn_reloads", "Reloads (HUP) by outcome.", &samples);
    let ids: Vec<String> = gauges.memory.iter().map(|(id, _)| id.to_string()).collect();
    let labels: Vec<_> = ids.iter().map(|id| [("worker", id.as_str())]).collect();
    let samples: Vec<_> = labels
        .iter()
        .zip(&gauges.memory)
        .map(|(l, (_, b))| (&l[..], *b))
        .collect();
    w.gauge(
        "rgunicorn_worker_memory_bytes",
        "Unshared memory of each worker, by worker id.",
        &samples,
    );
}

fn listen_queues(w: &mut Writer, gauges: &Gauges) {
    let known: Vec<_> = gauges
        .listen_queues
        .iter()
        .filter_map(|(name, q)| Some((name, (*q)?)))
        .collect();
    let labels: Vec<_> = known
        .iter()
        .map(|(name, _)| [("listener", name.as_str())])
        .collect();
    let depth: Vec<_> = labels
        .iter()
        .zip(&known)
        .map(|(l, (_, q))| (&l[..], q.0))
        .collect();
    w.gauge(
        "rgunicorn_listen_queue_depth",
        "Connections waiting to be accepted, per listener.",
        &depth,
    );
    let limit: Vec<_> = labels
        .iter()
        .zip(&known)
        .map(|(l, (_, q))| (&l[..], q.1))
        .collect();
    w.gauge(
        "rgunicorn_listen_queue_limit",
        "The most connections each listen queue holds.",
        &limit,
    );
}

/// Nanoseconds as seconds, exactly.
fn seconds(ns: u64) -> String {
    let (whole, fraction) = (ns / 1_000_000_000, ns % 1_000_000_000);
    match fraction {
        0 => format!("{whole}.0"),
        _ => format!("{whole}.{}", format!("{fraction:09}").trim_end_matches('0')),
    }
}

type Labels<'a> = [(&'a str, &'a str)];

struct Writer {
    out: String,
    format: Format,
}

impl Writer {
    fn header(&mut self, family: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {family} {help}\n# TYPE {family} {kind}");
    }

    fn counter<V: Display + Copy>(&mut self, name: &str, help: &str, samples: &[(&Labels<'_>, V)]) {
        // OpenMetrics names the family without `_total`, the text format names it with.
        let family = match self.format {
            Format::OpenMetrics => name.to_owned(),
            Format::Prometheus => format!("{name}_total"),
        };
        self.header(&family, "counter", help);
        let sample = format!("{name}_total");
        for (labels, value) in samples {
            self.sample(&sample, labels, *value);
        }
    }

    fn gauge<V: Display + Copy>(&mut self, name: &str, help: &str, samples: &[(&Labels<'_>, V)]) {
        self.header(name, "gauge", help);
        for (labels, value) in samples {
            self.sample(name, labels, *value);
        }
    }

    fn sample(&mut self, name: &str, labels: &Labels<'_>, value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"");
                escape_label(&mut self.out, value);
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_totals() -> Totals {
        let mut totals = Totals::default();
        totals.requests[0][1] = 7;
        totals.duration[0] = 5;
        totals.duration[14] = 2;
        totals.duration_sum_ns = 20_500_000_000;
        totals.restarts[RestartReason::Memory as usize] = 1;
        totals
    }

    fn gauges() -> Gauges {
        Gauges {
            in_flight: 2,
            open_connections: 3,
            workers: vec![
                ("booting", 0),
                ("serving", 4),
                ("retiring", 1),
                ("killed", 0),
            ],
            listen_queues: vec![
                ("unix:/run/a \"b\".sock".into(), Some((1, 128))),
                ("http://[::1]:80".into(), None),
            ],
            memory: vec![(0, 1_048_576), (3, 2_000_000)],
        }
    }

    #[test]
    fn text_format_names_counters_with_total() {
        let text = render(&sample_totals(), &gauges(), Format::Prometheus);
        assert!(
            text.contains("# TYPE rgunicorn_http_requests_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("rgunicorn_http_requests_total{method=\"GET\",status_class=\"2xx\"} 7\n")
        );
        assert!(text.contains("rgunicorn_http_request_duration_seconds_bucket{le=\"0.005\"} 5\n"));
        assert!(text.contains("rgunicorn_http_request_duration_seconds_bucket{le=\"10.0\"} 5\n"));
        assert!(text.contains("rgunicorn_http_request_duration_seconds_bucket{le=\"+Inf\"} 7\n"));
        assert!(text.contains("rgunicorn_http_request_duration_seconds_sum 20.5\n"));
        assert!(text.contains("rgunicorn_http_request_duration_seconds_count 7\n"));
        assert!(text.contains("rgunicorn_worker_restarts_total{reason=\"memory\"} 1\n"));
        assert!(text.contains("rgunicorn_workers{state=\"serving\"} 4\n"));
        assert!(text
            .contains("rgunicorn_listen_queue_depth{listener=\"unix:/run/a \\\"b\\\".sock\"} 1\n"));
        assert!(!text.contains("::1"), "an unknown queue is left out");
        assert!(text.contains("rgunicorn_worker_memory_bytes{worker=\"3\"} 2000000\n"));
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn openmetrics_names_families_without_total_and_ends_with_eof() {
        let text = render(&sample_totals(), &gauges(), Format::OpenMetrics);
        assert!(
            text.contains("# TYPE rgunicorn_http_requests counter\n"),
            "{text}"
        );
        assert!(
            text.contains("rgunicorn_http_requests_total{method=\"GET\",status_class=\"2xx\"} 7\n")
        );
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(
            Format::from_accept("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_accept("*/*"), Format::Prometheus);
    }

    #[test]
    fn seconds_are_exact() {
        assert_eq!(seconds(5_000_000), "0.005");
        assert_eq!(seconds(10_000_000_000), "10.0");
        assert_eq!(seconds(1_234_567_891), "1.234567891");
        assert_eq!(seconds(0), "0.0");
    }
}
