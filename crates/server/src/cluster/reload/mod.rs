//! `--reload`: the supervisor restarts its workers when the app's files change. `watch` turns
//! file events into one "changed" per burst of saves; [`Generations`] decides, from those and
//! from what the workers report, which workers start, which hand over, and which are given up.
//!
//! The new code is never trusted before it serves: a whole new generation of workers starts
//! beside the serving one, and only once every one of them has reported ready is the old
//! generation asked to hand over (its WebSockets get Close 1012, its streams end). A new worker
//! that exits first (a syntax error, an import that fails) leaves the old generation serving,
//! and its traceback, printed by the worker itself, names the file and line.

pub mod glob;
pub mod watch;

use std::collections::BTreeSet;

/// A generation of workers: all started for one version of the code.
pub type Generation = u32;

/// What the supervisor does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Start every worker of this generation.
    Start(Generation),
    /// This generation serves now; the one before (None at the very first start) hands over.
    Serve { generation: Generation, retired: Option<Generation> },
    /// This generation failed to start: stop what is left of it; `serving` goes on (None:
    /// nothing serves until the next change).
    Abandon { generation: Generation, serving: Option<Generation> },
}

/// Whether a generation is on its way in.
#[derive(Debug, PartialEq, Eq)]
enum Swap {
    /// Nothing is starting.
    Steady,
    /// `next` is starting beside the serving generation; `ready` are its workers (by number)
    /// that serve already; `again` when files changed since it started, so that it may hold
    /// code from before the last save.
    Starting { next: Generation, ready: BTreeSet<u32>, again: bool },
}

/// The generations of workers and the swap between them; pure state, moved only by
/// [`Generations::changed`], [`Generations::ready`] and [`Generations::exited_early`].
#[derive(Debug)]
pub struct Generations {
    processes: u32,
    serving: Option<Generation>,
    swap: Swap,
    /// The last generation started.
    latest: Generation,
}

impl Generations {
    /// Generation 0 is starting, with `processes` workers.
    pub fn new(processes: u32) -> Self {
        Self {
            processes,
            serving: None,
            swap: Swap::Starting { next: 0, ready: BTreeSet::new(), again: false },
            latest: 0,
        }
    }

    /// The generation whose workers serve the clients now.
    pub fn serving(&self) -> Option<Generation> {
        self.serving
    }

    /// Whether workers of `generation` are wanted: it serves, or is on its way in. A worker of
    /// any other (replaced, or given up) is not started again when it dies.
    pub fn wants(&self, generation: Generation) -> bool {
        self.serving == Some(generation) || matches!(&self.swap, Swap::Starting { next, .. } if *next == generation)
    }

    /// The app's files changed.
    pub fn changed(&mut self) -> Vec<Step> {
        match &mut self.swap {
            Swap::Steady => vec![self.start()],
            // The one starting may have read the files before this save: another follows it.
            Swap::Starting { again, .. } => {
                *again = true;
                Vec::new()
            }
        }
    }

    /// Worker `number` of `generation` reported that it serves.
    pub fn ready(&mut self, generation: Generation, number: u32) -> Vec<Step> {
        let Swap::Starting { next, ready, again } = &mut self.swap else { return Vec::new() };
        if *next != generation {
            return Vec::new();
        }
        ready.insert(number);
        if ready.len() < self.processes as usize {
            return Vec::new();
        }
        let again = *again;
        let retired = self.serving.replace(generation);
        self.swap = Swap::Steady;
        let mut steps = vec![Step::Serve { generation, retired }];
        if again {
            steps.push(self.start());
        }
        steps
    }

    /// A worker of `generation` exited before it served.
    pub fn exited_early(&mut self, generation: Generation) -> Vec<Step> {
        let Swap::Starting { next, again, .. } = &self.swap else { return Vec::new() };
        if *next != generation {
            return Vec::new();
        }
        let again = *again;
        self.swap = Swap::Steady;
        let mut steps = vec![Step::Abandon { generation, serving: self.serving }];
        if again {
            steps.push(self.start());
        }
        steps
    }

    fn start(&mut self) -> Step {
        self.latest += 1;
        self.swap = Swap::Starting { next: self.latest, ready: BTreeSet::new(), again: false };
        Step::Start(self.latest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_generation_serves_once_every_worker_is_ready() {
        let mut generations = Generations::new(2);
        assert_eq!(generations.ready(0, 1), []);
        assert_eq!(generations.ready(0, 1), [], "one worker twice is still one");
        assert_eq!(generations.ready(0, 0), [Step::Serve { generation: 0, retired: None }]);
        assert_eq!(generations.serving(), Some(0));
        assert_eq!(generations.ready(0, 0), [], "a worker restarted after a crash changes nothing");
    }

    #[test]
    fn a_change_starts_a_generation_that_replaces_the_serving_one_when_ready() {
        let mut generations = Generations::new(1);
        generations.ready(0, 0);
        assert_eq!(generations.changed(), [Step::Start(1)]);
        assert_eq!(generations.serving(), Some(0), "the old code serves until the new one does");
        assert_eq!(generations.ready(1, 0), [Step::Serve { generation: 1, retired: Some(0) }]);
        assert_eq!(generations.serving(), Some(1));
    }

    #[test]
    fn new_code_that_does_not_start_leaves_the_old_serving_and_the_next_save_tries_again() {
        let mut generations = Generations::new(1);
        generations.ready(0, 0);
        generations.changed();
        assert_eq!(generations.exited_early(1), [Step::Abandon { generation: 1, serving: Some(0) }]);
        assert_eq!(generations.serving(), Some(0));
        assert_eq!(generations.changed(), [Step::Start(2)]);
        assert_eq!(generations.ready(2, 0), [Step::Serve { generation: 2, retired: Some(0) }]);
    }

    #[test]
    fn a_save_while_a_generation_starts_starts_another_after_it() {
        let mut generations = Generations::new(1);
        generations.ready(0, 0);
        generations.changed();
        assert_eq!(generations.changed(), [], "one start at a time");
        assert_eq!(
            generations.ready(1, 0),
            [Step::Serve { generation: 1, retired: Some(0) }, Step::Start(2)],
            "generation 1 may have read the files before the second save"
        );
        generations.changed();
        assert_eq!(
            generations.exited_early(2),
            [Step::Abandon { generation: 2, serving: Some(1) }, Step::Start(3)],
            "a failed start with a save since is tried again at once"
        );
        assert_eq!(generations.exited_early(3), [Step::Abandon { generation: 3, serving: Some(1) }]);
        assert_eq!(generations.serving(), Some(1));
    }

    #[test]
    fn a_first_start_that_fails_waits_for_a_change() {
        let mut generations = Generations::new(1);
        assert_eq!(generations.exited_early(0), [Step::Abandon { generation: 0, serving: None }]);
        assert_eq!(generations.serving(), None);
        assert_eq!(generations.changed(), [Step::Start(1)]);
        assert_eq!(generations.ready(1, 0), [Step::Serve { generation: 1, retired: None }]);
    }

    #[test]
    fn only_the_serving_and_the_starting_generation_are_wanted() {
        let mut generations = Generations::new(2);
        assert!(generations.wants(0));
        generations.ready(0, 0);
        generations.ready(0, 1);
        generations.changed();
        assert!(generations.wants(0) && generations.wants(1));
        generations.exited_early(1);
        assert!(!generations.wants(1), "given up: its other worker is not restarted");
        generations.changed();
        generations.ready(2, 0);
        generations.ready(2, 1);
        assert!(!generations.wants(0), "replaced");
        assert!(generations.wants(2));
    }

    #[test]
    fn news_of_other_generations_is_ignored() {
        let mut generations = Generations::new(1);
        generations.ready(0, 0);
        generations.changed();
        assert_eq!(generations.ready(0, 0), [], "an old worker restarted after a crash");
        assert_eq!(generations.exited_early(0), []);
        assert_eq!(generations.serving(), Some(0));
    }
}
