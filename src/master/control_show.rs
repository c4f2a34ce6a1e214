//! What `rgunicorn ctl show workers|stats|config` answers: the model's workers with their ids,
//! requests in flight and memory, the shared counters and gauges /metrics reports, and the
//! current configuration. Reads only.
use serde_json::{json, Map, Value};

use super::workers::Worker;
use super::Arbiter;
use crate::metrics::labels::{ReloadOutcome, RestartReason, METHODS, STATUS_CLASSES};
use crate::process::monotonic_ms;

impl Arbiter {
    pub(super) fn show_workers(&self) -> Value {
        let mut workers: Vec<&Worker> = self.model.workers().collect();
        workers.sort_by_key(|w| (w.generation, w.slot));
        let shared = self.telemetry.shared();
        let now = monotonic_ms();
        let rows = workers.iter().map(|w| {
            let id = shared.worker_id(w.pid);
            let in_flight = self.in_flight(w);
            json!({
                "pid": w.pid,
                "id": id,
                "generation": w.generation,
                "state": w.state.name(),
                "age_s": now.saturating_sub(w.spawned_ms) as f64 / 1000.0,
                "in_flight": in_flight,
                "memory_bytes": id.map(|id| shared.lane(Some(id)).memory()),
            })
        });
        Value::Array(rows.collect())
    }

    pub(super) fn show_stats(&self) -> Value {
        let totals = self.telemetry.shared().totals();
        let gauges = self.gauges();
        let mut by_class = Map::new();
        let mut by_method = Map::new();
        for (m, row) in totals.requests.iter().enumerate() {
            by_method.insert(METHODS[m].to_owned(), json!(row.iter().sum::<u64>()));
            for (c, n) in row.iter().enumerate() {
                let class = by_class.entry(STATUS_CLASSES[c]).or_insert(json!(0));
                *class = json!(class.as_u64().unwrap_or(0) + n);
            }
        }
        let labelled = |labels: &[&str], values: &[u64]| -> Map<String, Value> {
            labels
                .iter()
                .zip(values)
                .map(|(l, n)| (l.to_string(), json!(n)))
                .collect()
        };
        let reasons: Vec<&str> = RestartReason::ALL.iter().map(|r| r.label()).collect();
        let outcomes: Vec<&str> = ReloadOutcome::ALL.iter().map(|o| o.label()).collect();
        let queues: Vec<Value> = (gauges.listen_queues.iter())
            .map(|(name, q)| json!({"listener": name, "depth": q.map(|q| q.0), "limit": q.map(|q| q.1)}))
            .collect();
        let workers: Map<String, Value> = (gauges.workers.iter())
            .map(|(state, n)| (state.to_string(), json!(n)))
            .collect();
        json!({
            "requests": totals.duration.iter().sum::<u64>(),
            "requests_by_status_class": by_class,
            "requests_by_method": by_method,
            "requests_in_flight": gauges.in_flight,
            "request_seconds_total": totals.duration_sum_ns as f64 / 1e9,
            "request_body_bytes": totals.request_bytes,
            "response_body_bytes": totals.response_bytes,
            "connections_accepted": totals.accepted,
            "connections_open": gauges.open_connections,
            "workers": workers,
            "worker_restarts": labelled(&reasons, &totals.restarts),
            "worker_timeouts": totals.timeouts,
            "worker_boot_failures": totals.boot_failures,
            "reloads": labelled(&outcomes, &totals.reloads),
            "listen_queues": queues,
            "statsd_send_errors": totals.statsd_errors,
        })
    }

    /// The current generation's settings, as `--print-config` writes them.
    pub(super) fn show_config(&self) -> Value {
        let Some(table) = self.tables.last() else {
            return Value::Null;
        };
        let text = table.settings.to_toml();
        match toml::from_str::<toml::Table>(&text) {
            Ok(table) => serde_json::to_value(table).unwrap_or(Value::Null),
            Err(_) => Value::String(text),
        }
    }
}
