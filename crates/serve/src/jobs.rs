//! Generation jobs: one queue and one worker thread per model (a model runs one request at a
//! time; a second waits and knows its place), each job's state behind a lock with a version
//! that wakes whoever follows it (the progress stream), and a stop flag that the sampler reads
//! between steps.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::Value;

use crate::request::{self, Generate};

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "phase", rename_all = "lowercase")]
pub enum Phase {
    /// Waiting: `position` 1 runs next.
    Queued {
        position: usize,
    },
    Running,
    Done,
    Failed {
        error: String,
    },
    Cancelled,
}

impl Phase {
    /// Whether the job is over.
    pub fn is_final(&self) -> bool {
        matches!(self, Phase::Done | Phase::Failed { .. } | Phase::Cancelled)
    }
}

/// What a finished job made.
#[derive(Debug, Clone, Default)]
pub struct Made {
    /// PNG files, one per image.
    pub images: Vec<Vec<u8>>,
    /// Points of a point model, row-major, and their dimension.
    pub points: Option<(Vec<f64>, usize)>,
    /// The run's numbers and settings (summary.json).
    pub summary: serde_json::Map<String, Value>,
}

/// A job's state.
#[derive(Debug, Clone)]
pub struct State {
    pub phase: Phase,
    /// Fraction of the work done, in [0, 1].
    pub progress: f64,
    /// The sampler step reached, and the steps of the run.
    pub step: Option<(usize, usize)>,
    /// The latest preview (a PNG of the current prediction) and its number.
    pub preview: Option<(u64, Arc<Vec<u8>>)>,
    pub made: Option<Arc<Made>>,
    pub warnings: Vec<String>,
}

/// A request and its state.
pub struct Job {
    pub id: u64,
    /// The request as the client sent it (the gallery's "run again").
    pub request: Generate,
    state: Mutex<State>,
    /// Set by a cancel; the sampler stops at its next step.
    pub stop: Arc<AtomicBool>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Job {
    fn new(id: u64, request: Generate) -> Self {
        Self {
            id,
            request,
            state: Mutex::new(State {
                phase: Phase::Queued { position: 0 },
                progress: 0.0,
                step: None,
                preview: None,
                made: None,
                warnings: vec![],
            }),
            stop: Arc::new(AtomicBool::new(false)),
            changed: tokio::sync::watch::channel(0).0,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.lock().clone()
    }

    /// Changes the state and wakes the job's followers.
    pub fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.lock());
        self.changed.send_modify(|v| *v += 1);
    }

    /// A receiver woken at every change.
    pub fn follow(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker that panicked mid-update leaves a state that is still readable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One model's waiting jobs.
#[derive(Default)]
pub struct Queue {
    waiting: Mutex<VecDeque<(Arc<Job>, request::Job)>>,
    wake: Condvar,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, VecDeque<(Arc<Job>, request::Job)>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a job at the end, unless `limit` jobs already wait.
    pub fn push(&self, job: Arc<Job>, work: request::Job, limit: usize) -> Result<(), usize> {
        let mut waiting = self.lock();
        if waiting.len() >= limit {
            return Err(waiting.len());
        }
        waiting.push_back((job, work));
        renumber(&waiting);
        self.wake.notify_one();
        Ok(())
    }

    /// Takes the next job, waiting for one.
    pub fn pop(&self) -> (Arc<Job>, request::Job) {
        let mut waiting = self.lock();
        loop {
            if let Some(next) = waiting.pop_front() {
                renumber(&waiting);
                return next;
            }
            waiting = self.wake.wait(waiting).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Takes a waiting job out; false when it is not waiting (running or over).
    pub fn remove(&self, id: u64) -> bool {
        let mut waiting = self.lock();
        let before = waiting.len();
        waiting.retain(|(j, _)| j.id != id);
        let removed = waiting.len() != before;
        renumber(&waiting);
        removed
    }
}

/// Tells every waiting job its place.
fn renumber(waiting: &VecDeque<(Arc<Job>, request::Job)>) {
    for (i, (job, _)) in waiting.iter().enumerate() {
        let position = i + 1;
        if job.lock().phase != (Phase::Queued { position }) {
            job.update(|s| s.phase = Phase::Queued { position });
        }
    }
}

/// Every job the server knows, newest last; finished ones beyond `kept` are forgotten.
pub struct Table {
    jobs: Mutex<BTreeMap<u64, Arc<Job>>>,
    next: AtomicU64,
    kept: usize,
}

impl Table {
    pub fn new(kept: usize) -> Self {
        Self {
            jobs: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(1),
            kept: kept.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new job for `request`.
    pub fn add(&self, request: Generate) -> Arc<Job> {
        let mut jobs = self.lock();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let job = Arc::new(Job::new(id, request));
        jobs.insert(id, job.clone());
        let finished: Vec<u64> = jobs
            .values()
            .filter(|j| j.lock().phase.is_final())
            .map(|j| j.id)
            .collect();
        for id in finished
            .iter()
            .take(finished.len().saturating_sub(self.kept))
        {
            jobs.remove(id);
        }
        job
    }

    /// Forgets a job (one refused before it was queued).
    pub fn forget(&self, id: u64) {
        self.lock().remove(&id);
    }

    pub fn get(&self, id: u64) -> Option<Arc<Job>> {
        self.lock().get(&id).cloned()
    }

    /// All jobs, newest first.
    pub fn all(&self) -> Vec<Arc<Job>> {
        self.lock().values().rev().cloned().collect()
    }
}

/// Whether a job was asked to stop.
pub fn stopped(job: &Job) -> bool {
    job.stop.load(Ordering::Relaxed)
}
