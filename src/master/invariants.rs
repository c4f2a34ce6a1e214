//! The master model's invariants as code: checked after every step in debug builds and by the
//! model tests after every event. Pure; reads the model, never changes it.
use std::collections::HashSet;

use super::events::Action;
use super::model::{Model, Phase};

impl Model {
    /// The model's invariants; Err names the first one broken.
    pub fn check(&self, now: u64) -> Result<(), String> {
        self.check_deadlines(now)?;
        self.check_forks()?;
        let mut pids = HashSet::new();
        let zygotes = self.generations.iter().filter_map(|g| g.zygote.pid());
        let all = self
            .workers
            .iter()
            .map(|w| w.pid)
            .chain(zygotes)
            .chain(self.dying_zygotes.iter().copied());
        for pid in all.chain(self.reexec) {
            if !pids.insert(pid) {
                return Err(format!("pid {pid} is tracked twice"));
            }
        }
        let ids: Vec<u64> = self.generations.iter().map(|g| g.spec.id).collect();
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!("generations out of order: {ids:?}"));
        }
        let (older, _) = self.generations.split_at(self.generations.len() - 1);
        if let Some(g) = older.iter().find(|g| !g.booted) {
            return Err(format!(
                "generation {} never booted and is not current",
                g.spec.id
            ));
        }
        for w in self.workers.iter().filter(|w| w.is_active()) {
            if !ids.contains(&w.generation) {
                return Err(format!(
                    "active worker {} of dropped generation {}",
                    w.pid, w.generation
                ));
            }
        }
        let mut slots = HashSet::new();
        let held = self.workers.iter().map(|w| (w.generation, w.slot));
        for slot in held.chain(self.pending.iter().copied()) {
            if !slots.insert(slot) {
                return Err(format!("slot {slot:?} held twice"));
            }
        }
        Ok(())
    }

    /// A stop ends by graceful_timeout plus the margin, whatever the workers do.
    fn check_deadlines(&self, now: u64) -> Result<(), String> {
        match self.phase {
            Phase::Stopping { exit_by_ms, .. } if now >= exit_by_ms => Err(format!(
                "still stopping at {now}, past the exit deadline {exit_by_ms}"
            )),
            _ => Ok(()),
        }
    }

    /// Only the current generation is topped up, and only while running.
    fn check_forks(&self) -> Result<(), String> {
        let current = self.current().spec.id;
        for action in &self.out {
            if let Action::Fork { generation, .. } = action {
                if *generation != current || self.phase != Phase::Running {
                    return Err(format!(
                        "fork for generation {generation} (current {current}) in {:?}",
                        self.phase
                    ));
                }
            }
        }
        Ok(())
    }
}
