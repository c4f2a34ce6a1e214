//! The one table the bench prints: a row per server per scenario, the ratio rgunicorn / peer on
//! each peer's row (a variant of rgunicorn, the wheel, to the target peer on its own row), the
//! target and whether it was met, and the "TARGETS MET: x/y" line. It never starts or measures a
//! server: it only renders and judges what was measured.

use std::time::Duration;

use crate::scenarios::{Goal, Method, Outcome, Scenario, RSS_GROWTH_LIMIT_MIB};
use crate::servers::StartError;

/// A server's result in one scenario, or why there is none.
pub type Measured = Result<Outcome, StartError>;

/// One server's rounds as one result: a failed round is the result; otherwise the round with the
/// median value, with the errors of all rounds and the largest RSS growth of any.
pub fn median_round(mut rounds: Vec<Measured>) -> Measured {
    if let Some(failed) = rounds.iter().position(Result::is_err) {
        return rounds.swap_remove(failed);
    }
    let mut outcomes: Vec<Outcome> = rounds.into_iter().filter_map(Result::ok).collect();
    let errors = outcomes.iter().map(|o| o.errors).sum();
    let growth = outcomes
        .iter()
        .filter_map(|o| o.rss_growth_mib)
        .reduce(f64::max);
    outcomes.sort_by(|a, b| a.value.total_cmp(&b.value));
    let mut median = outcomes.swap_remove(outcomes.len() / 2);
    median.errors = errors;
    median.rss_growth_mib = growth;
    Ok(median)
}

/// The median over rounds of rgunicorn's value divided by the peer's in the same round: a slow
/// spell of the machine falls on both sides of a round's ratio, so the pairing cancels most of it.
pub fn median_ratio(ours: &[Measured], peer: &[Measured]) -> Option<f64> {
    let mut ratios: Vec<f64> = ours
        .iter()
        .zip(peer)
        .filter_map(|pair| match pair {
            (Ok(o), Ok(p)) if p.value > 0.0 => Some(o.value / p.value),
            _ => None,
        })
        .collect();
    if ratios.len() < ours.len().min(peer.len()) || ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let mid = ratios.len() / 2;
    Some(if ratios.len() % 2 == 1 {
        ratios[mid]
    } else {
        (ratios[mid - 1] + ratios[mid]) / 2.0
    })
}

/// A server compared with another: (label, goal, result, median ratio of the rounds).
pub type Compared = (String, Option<Goal>, Measured, Option<f64>);

/// Everything measured in one scenario.
pub struct ScenarioResult<'a> {
    pub scenario: &'a Scenario,
    pub ours_label: String,
    pub ours: Measured,
    /// Each variant of rgunicorn (the wheel), compared with the first peer.
    pub variants: Vec<Compared>,
    /// Each peer, with rgunicorn compared with it.
    pub peers: Vec<Compared>,
}

/// Counts of targets met, and of all targets.
#[derive(Debug, Default)]
pub struct Tally {
    pub met: usize,
    pub total: usize,
    pub unmeasured: usize,
}

const HEADER: [&str; 11] = [
    "scenario",
    "server",
    "req/s",
    "CPU/req",
    "p50",
    "p99",
    "errors",
    "measured",
    "ratio rg/peer",
    "target",
    "met?",
];

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2}ms", d.as_secs_f64() * 1e3))
}

fn why(e: &StartError) -> String {
    match e {
        StartError::NotInstalled => "skipped: not installed".into(),
        StartError::Failed(_) => "FAILED (see below)".into(),
    }
}

/// The first eight cells of a server's row.
fn cells(scenario: &str, label: &str, m: &Measured) -> Vec<String> {
    let mut row = vec![scenario.to_string(), label.to_string()];
    match m {
        Ok(o) => row.extend([
            o.req_per_sec.map_or("-".into(), |r| format!("{r:.0}")),
            o.cpu_us_per_req
                .map_or("-".into(), |us| format!("{us:.2}us")),
            ms(o.p50),
            ms(o.p99),
            o.errors.to_string(),
            o.shown.clone(),
        ]),
        Err(e) => row.extend(
            ["-", "-", "-", "-", "-"]
                .map(String::from)
                .into_iter()
                .chain([why(e)]),
        ),
    }
    row
}

fn goal_text(goal: Option<Goal>) -> String {
    match goal {
        Some(Goal::AtLeast(x)) => format!(">= {x}"),
        Some(Goal::AtMost(x)) => format!("<= {x}"),
        None => "-".into(),
    }
}

/// Ratio cell, target cell and met cell of a peer's row; counts the target in `tally`.
fn judge(ratio: Option<f64>, goal: Option<Goal>, tally: &mut Tally) -> [String; 3] {
    let met = match (goal, ratio) {
        (None, _) => "-".to_string(),
        (Some(_), None) => "not measured".to_string(),
        (Some(Goal::AtLeast(x)), Some(r)) => yes_no(r >= x),
        (Some(Goal::AtMost(x)), Some(r)) => yes_no(r <= x),
    };
    if goal.is_some() {
        tally.total += 1;
        tally.met += usize::from(met == "yes");
        tally.unmeasured += usize::from(ratio.is_none());
    }
    [
        ratio.map_or("-".into(), |r| format!("{r:.3}")),
        goal_text(goal),
        met,
    ]
}

fn yes_no(ok: bool) -> String {
    if ok { "yes" } else { "NO" }.to_string()
}

/// The extra row of the transfer scenario: rgunicorn's worker RSS growth against its bound.
fn rss_row(id: &str, label: &str, ours: &Measured, tally: &mut Tally) -> Vec<String> {
    let growth = ours.as_ref().ok().and_then(|o| o.rss_growth_mib);
    tally.total += 1;
    tally.met += usize::from(growth.is_some_and(|g| g < RSS_GROWTH_LIMIT_MIB));
    tally.unmeasured += usize::from(growth.is_none());
    let met = growth.map_or("not measured".into(), |g| yes_no(g < RSS_GROWTH_LIMIT_MIB));
    let shown = growth.map_or("-".into(), |g| format!("worker RSS growth {g:.1} MiB"));
    let mut row = vec![id.to_string(), label.to_string()];
    row.extend(["-", "-", "-", "-", "-"].map(String::from));
    row.extend([
        shown,
        "-".into(),
        format!("< {RSS_GROWTH_LIMIT_MIB} MiB"),
        met,
    ]);
    row
}

/// All rows of one scenario.
fn scenario_rows(r: &ScenarioResult, tally: &mut Tally) -> Vec<Vec<String>> {
    let id = r.scenario.id;
    let mut ours = cells(id, &r.ours_label, &r.ours);
    ours.extend(["-", "-", "-"].map(String::from));
    let mut rows = vec![ours];
    if r.scenario.method == Method::Transfer {
        rows.push(rss_row(id, &r.ours_label, &r.ours, tally));
    }
    for (label, goal, measured, ratio) in r.variants.iter().chain(&r.peers) {
        let mut row = cells(id, label, measured);
        row.extend(judge(*ratio, *goal, tally));
        if let Ok(o) = measured {
            if let Some(g) = o.rss_growth_mib {
                row[7] = format!("{}; RSS +{g:.1} MiB", row[7]);
            }
        }
        rows.push(row);
    }
    rows
}

fn render(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let line = |row: &Vec<String>| {
        let padded: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    let mut out = vec![line(&rows[0])];
    out.push(format!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    ));
    out.extend(rows[1..].iter().map(line));
    out.join("\n")
}

/// The table, the failures in detail, and the tally.
pub fn table(results: &[ScenarioResult]) -> (String, Tally) {
    let mut tally = Tally::default();
    let mut rows = vec![HEADER.map(String::from).to_vec()];
    for r in results {
        rows.extend(scenario_rows(r, &mut tally));
    }
    let mut text = render(&rows);
    text.push_str("\n\nscenarios:");
    for r in results {
        text.push_str(&format!("\n  {:<20} {}", r.scenario.id, r.scenario.title));
        if let Some((peer, ..)) = r.peers.first() {
            for (label, ..) in &r.variants {
                text.push_str(&format!("\n  {:<20} {label}: ratio to {peer}", ""));
            }
        }
    }
    for r in results {
        let all = std::iter::once((&r.ours_label, &r.ours))
            .chain(r.variants.iter().chain(&r.peers).map(|(l, _, m, _)| (l, m)));
        for (label, m) in all {
            if let Err(StartError::Failed(why)) = m {
                text.push_str(&format!("\n\n{} / {label} FAILED: {why}", r.scenario.id));
            }
        }
    }
    (text, tally)
}
