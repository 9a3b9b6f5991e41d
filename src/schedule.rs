//! When the background worker's jobs are due (folding, the parked-event sweep) and when a stopped worker starts again.

use std::time::{Duration, Instant};

/// What the worker runs, each in a transaction of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    /// `fold_counters()`: deferred attachments' pending changes into the campaigns tables.
    Fold,
    /// `purge_parked_events(retention)`: applies the parked events a recipient claims, then drops old ones.
    Sweep,
}

/// Each job runs one interval after its last run ended, not on a fixed grid: a run that takes
/// longer than its interval is followed by one run, not by a burst catching up the missed ones.
#[derive(Debug)]
pub struct Schedule {
    fold_every: Duration,
    sweep_every: Duration,
    /// None until the first run: a worker that starts folds and sweeps at once.
    last_fold: Option<Instant>,
    last_sweep: Option<Instant>,
}

impl Schedule {
    pub fn new(fold_every: Duration, sweep_every: Duration) -> Schedule {
        Schedule {
            fold_every,
            sweep_every,
            last_fold: None,
            last_sweep: None,
        }
    }

    /// New intervals (a configuration reload) count from the last runs, so a shorter one applies at once.
    pub fn set_intervals(&mut self, fold_every: Duration, sweep_every: Duration) {
        self.fold_every = fold_every;
        self.sweep_every = sweep_every;
    }

    fn next(&self, job: Job) -> Option<Instant> {
        match job {
            Job::Fold => self.last_fold.map(|last| last + self.fold_every),
            Job::Sweep => self.last_sweep.map(|last| last + self.sweep_every),
        }
    }

    /// The jobs due at `now`, folding first (it is the frequent, latency-bound one).
    pub fn due(&self, now: Instant) -> Vec<Job> {
        [Job::Fold, Job::Sweep]
            .into_iter()
            .filter(|&job| self.next(job).is_none_or(|next| next <= now))
            .collect()
    }

    /// `job` ended at `now`.
    pub fn ran(&mut self, job: Job, now: Instant) {
        match job {
            Job::Fold => self.last_fold = Some(now),
            Job::Sweep => self.last_sweep = Some(now),
        }
    }

    /// How long to sleep at `now` until the next job is due (zero when one is due already).
    pub fn wait(&self, now: Instant) -> Duration {
        [Job::Fold, Job::Sweep]
            .into_iter()
            .map(|job| {
                self.next(job)
                    .map_or(Duration::ZERO, |next| next.saturating_duration_since(now))
            })
            .min()
            .unwrap_or(Duration::ZERO)
    }
}

/// The first restart of a stopped worker waits this long; so does the first look for a database
/// that does not exist (yet).
pub const RESTART_DELAY: Duration = Duration::from_secs(5);
/// Repeated quick failures double the delay up to this, so a worker that fails at every start
/// (its ERROR logged each time) logs a few lines an hour, not one every few seconds.
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(300);
/// A worker that ran at least this long before it stopped was healthy: its restart waits the
/// first delay again.
pub const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// How long a stopped worker waits before it is started again, given how long its runs lasted.
#[derive(Debug)]
pub struct RestartBackoff {
    delay: Duration,
}

impl Default for RestartBackoff {
    fn default() -> RestartBackoff {
        RestartBackoff {
            delay: RESTART_DELAY,
        }
    }
}

impl RestartBackoff {
    /// A worker stopped after running for `lived`: the delay before its next start.
    pub fn stopped(&mut self, lived: Duration) -> Duration {
        if lived >= HEALTHY_RUN {
            self.delay = RESTART_DELAY;
        }
        let delay = self.delay;
        self.delay = (delay * 2).min(MAX_RESTART_DELAY);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_new_schedule_runs_both_jobs_at_once() {
        let schedule = Schedule::new(200 * MS, 60_000 * MS);
        let now = Instant::now();
        assert_eq!(schedule.due(now), [Job::Fold, Job::Sweep]);
        assert_eq!(schedule.wait(now), Duration::ZERO);
    }

    #[test]
    fn each_job_is_due_one_interval_after_its_last_run() {
        let start = Instant::now();
        let mut schedule = Schedule::new(200 * MS, 1_000 * MS);
        schedule.ran(Job::Fold, start);
        schedule.ran(Job::Sweep, start);
        assert_eq!(schedule.due(start + 199 * MS), []);
        assert_eq!(schedule.wait(start + 150 * MS), 50 * MS);
        assert_eq!(schedule.due(start + 200 * MS), [Job::Fold]);
        // A fold that took 900 ms: the next one is due 200 ms after it ended, once.
        schedule.ran(Job::Fold, start + 1_100 * MS);
        assert_eq!(schedule.due(start + 1_100 * MS), [Job::Sweep]);
        schedule.ran(Job::Sweep, start + 1_100 * MS);
        assert_eq!(schedule.wait(start + 1_100 * MS), 200 * MS);
    }

    #[test]
    fn a_shorter_interval_applies_at_once() {
        let start = Instant::now();
        let mut schedule = Schedule::new(200 * MS, 60_000 * MS);
        schedule.ran(Job::Fold, start);
        schedule.ran(Job::Sweep, start);
        schedule.set_intervals(200 * MS, 1_000 * MS);
        assert_eq!(schedule.due(start + 1_000 * MS), [Job::Fold, Job::Sweep]);
    }

    #[test]
    fn quick_failures_back_off_and_a_healthy_run_resets() {
        let mut backoff = RestartBackoff::default();
        let quick = Duration::from_secs(1);
        let delays: Vec<u64> = (0..9).map(|_| backoff.stopped(quick).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(backoff.stopped(HEALTHY_RUN), RESTART_DELAY);
        assert_eq!(backoff.stopped(quick), 2 * RESTART_DELAY);
    }

    proptest! {
        /// Whatever the intervals and however long runs take, a worker that sleeps `wait()` and
        /// then runs what is `due()` never runs a job sooner than one interval after its last run
        /// ended, and never sleeps past a due job.
        #[test]
        fn jobs_keep_their_intervals(
            fold_ms in 1u32..5_000,
            sweep_ms in 1u32..100_000,
            runs in proptest::collection::vec(0u32..3_000, 1..200),
        ) {
            let (fold_every, sweep_every) = (fold_ms * MS, sweep_ms * MS);
            let mut schedule = Schedule::new(fold_every, sweep_every);
            let mut now = Instant::now();
            let mut last: [Option<Instant>; 2] = [None, None];
            for run_ms in runs {
                now += schedule.wait(now);
                let due = schedule.due(now);
                prop_assert!(!due.is_empty(), "woke with nothing due");
                for job in due {
                    let (slot, every) = match job {
                        Job::Fold => (0, fold_every),
                        Job::Sweep => (1, sweep_every),
                    };
                    if let Some(last) = last[slot] {
                        prop_assert!(now >= last + every);
                    }
                    now += run_ms * MS;
                    schedule.ran(job, now);
                    last[slot] = Some(now);
                }
            }
        }
    }
}
