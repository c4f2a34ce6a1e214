//! What the simulated world checks of the model: the invariants and the history's properties
//! after every step, and convergence once the events stop. Test code only.
use super::*;

impl super::World {
    pub(super) fn check(&mut self) {
        let mut seen = std::mem::take(&mut self.seen);
        let context = || self.history();
        assert_eq!(
            self.model.check(self.now),
            Ok(()),
            "model invariant\n{}",
            context()
        );
        for worker in self.model.workers() {
            assert!(
                !self.reaped.contains(&worker.pid),
                "tracks reaped pid {}\n{}",
                worker.pid,
                context()
            );
            let before = seen.insert(worker.pid, worker.state);
            if let Some(before) = before {
                let rank = |s: WorkerState| match s {
                    WorkerState::Booting => 0,
                    WorkerState::Serving => 1,
                    WorkerState::Retiring { .. } => 2,
                    WorkerState::Killed => 3,
                };
                assert!(
                    rank(worker.state) >= rank(before),
                    "worker {} went back from {before:?} to {:?}\n{}",
                    worker.pid,
                    worker.state,
                    context()
                );
            }
        }
        if let Some(stop_by) = self.stop_by {
            assert!(
                self.exited || self.now <= stop_by + 100,
                "still running {} ms after the stop deadline\n{}",
                self.now - stop_by,
                context()
            );
        }
        self.seen = seen;
    }

    /// With no more outside events, the model must settle on the current generation alone.
    pub(in crate::master) fn assert_converged(&mut self, seed: u64) {
        self.advance(60_000);
        if self.stop_by.is_some() {
            return assert!(self.exited, "seed {seed}: a stopped server did not exit");
        }
        let boot_error = matches!(self.exit_code, Some(3 | 4)) && !self.booted_any;
        assert!(
            !self.exited || boot_error,
            "seed {seed}: exited without a stop; {}",
            self.history()
        );
        if self.exited {
            return;
        }
        let current = self.model.current();
        let target = current.target;
        assert!(
            !self.broken.contains(&current.spec.id),
            "seed {seed}: a broken generation is current\n{}",
            self.history()
        );
        assert!(
            current.complete,
            "seed {seed}: the reload never completed\n{}",
            self.history()
        );
        assert!(
            !self.ready_owed,
            "seed {seed}: RELOADING=1 never followed by READY=1\n{}",
            self.history()
        );
        let id = current.spec.id;
        let workers: Vec<_> = self.model.workers().collect();
        let serving = workers
            .iter()
            .filter(|w| w.generation == id && w.state == WorkerState::Serving)
            .count();
        assert_eq!(
            serving, target,
            "seed {seed}: serving workers of generation {id}\n{:?}",
            workers
        );
        assert_eq!(
            workers.len(),
            target,
            "seed {seed}: workers left of older generations\n{:?}",
            workers
        );
        // An older generation may stay only as the fallback of a current one that never booted
        // (after WINCH it has nothing to boot), and then with no process.
        let (older, _) = self
            .model
            .generations
            .split_at(self.model.generations.len() - 1);
        let idle = older.iter().all(|g| g.zygote.pid().is_none());
        let kept = older.is_empty() || (older.len() == 1 && !current.booted && target == 0);
        assert!(
            kept && idle,
            "seed {seed}: older generations left: {older:?}"
        );
        // A zygote killed while nothing was missing is only replaced when a worker is needed.
        assert!(
            self.model.dying_zygotes.is_empty(),
            "seed {seed}: unreaped zygotes"
        );
    }
}
