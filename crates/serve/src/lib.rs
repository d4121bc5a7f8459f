//! # diffuse-serve
//!
//! `diffuse serve`: a local web page on the pipeline layer. A prompt box with the sampler, its
//! evaluations, guidance and a seed; the picture forming step by step (server-sent events with a
//! preview of the predicted clean images); a gallery of results with their settings, a way to
//! run one again and a download of its images and `summary.json`; and a page per seed
//! experiment whose sliders re-run it. The server calls the pipeline and rewrites nothing: the
//! same settings and seed give the same images as `diffuse sample`.
//!
//! One request at a time per model, the others wait in its queue and know their place; a cancel
//! stops the sampler between steps; every request is checked against [`Limits`] before it may
//! wait. The page's files are compiled in: nothing is fetched from anywhere but this server.
//!
//! The JSON API (every error is `{"error": "..."}` with a 4xx status):
//! - `GET /api/models`: the models and their defaults.
//! - `POST /api/generate` with a [`Generate`]: `202 {"id", "phase", "position"}`.
//! - `GET /api/jobs`, `GET /api/jobs/{id}`: the gallery, one job's state.
//! - `GET /api/jobs/{id}/events`: its progress as server-sent events (`queued`, `running`,
//!   `progress`, `preview`, `warning`, then `done`, `failed` or `cancelled`).
//! - `POST /api/jobs/{id}/cancel`.
//! - `GET /api/jobs/{id}/images/{k}.png`, `preview.png`, `summary.json`, `samples.csv`,
//!   `download` (a zip of the images and summary.json).
//! - `GET /api/seed/{chains,forward,undiffuse,guess}?...`: the seeds' experiments.

mod api;
mod experiments;
mod jobs;
mod limits;
mod models;
mod request;
mod run;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};

pub use limits::Limits;
pub use models::{Info, Kind};
pub use request::Generate;

use jobs::{Phase, Queue, Table};
use models::Served;

/// What `diffuse serve` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to listen (port 0: any free port).
    pub address: SocketAddr,
    /// Models to offer besides the shipped ones: folders of ours or Stable Diffusion folders.
    pub models: Vec<PathBuf>,
    pub limits: Limits,
    /// Where the models sample (the seeds' experiments run on the build's default device).
    pub device: burn::tensor::Device,
    /// Its name as `--device` spells it (what `auto` chose), for each job's summary.json.
    pub device_name: String,
}

/// A model, its queue.
struct Entry {
    served: Arc<Served>,
    queue: Arc<Queue>,
}

/// What every request handler shares.
struct App {
    models: BTreeMap<String, Entry>,
    /// The models in the order they were given (shipped first).
    order: Vec<String>,
    jobs: Table,
    limits: Limits,
    /// Experiments running at once (each is CPU-bound).
    experiments: tokio::sync::Semaphore,
}

/// A server, its models loaded and its socket bound, not yet serving.
pub struct Server {
    app: Arc<App>,
    listener: std::net::TcpListener,
    runtime: tokio::runtime::Runtime,
}

impl Server {
    /// Loads the models (each folder's errors name it) and binds the socket. `loading` hears
    /// each model before it loads.
    pub fn new(options: Options, loading: &mut dyn FnMut(&str)) -> Result<Self> {
        // The socket first: a port in use is said before minutes of loading.
        let listener = std::net::TcpListener::bind(options.address)
            .with_context(|| format!("cannot listen on {}", options.address))?;
        listener
            .set_nonblocking(true)
            .context("cannot set up the socket")?;
        let shipped = diffuse_pipeline::shipped::MODELS.iter().map(|m| m.name);
        let pipelines = diffuse_pipeline::shipped::PIPELINES.iter().map(|p| p.name);
        let mut args: Vec<PathBuf> = shipped.chain(pipelines).map(PathBuf::from).collect();
        args.extend(options.models.iter().cloned());
        let (mut models, mut order) = (BTreeMap::new(), vec![]);
        for arg in &args {
            let name = models::name_for(arg, &order);
            loading(&name);
            let served =
                models::open(arg, &name, &options.device, &options.device_name).map_err(|e| {
                    // A folder here is an argument of serve, not a --model option.
                    let said = format!("{e:#}");
                    anyhow::anyhow!("{}", said.replace("--model: ", "").replace("--model ", ""))
                })?;
            let entry = Entry {
                served: Arc::new(served),
                queue: Arc::new(Queue::default()),
            };
            spawn_worker(&entry)?;
            models.insert(name.clone(), entry);
            order.push(name);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_io()
            .enable_time()
            .build()
            .context("cannot start the server's runtime")?;
        let app = Arc::new(App {
            models,
            order,
            jobs: Table::new(options.limits.kept),
            experiments: tokio::sync::Semaphore::new(2),
            limits: options.limits,
        });
        Ok(Self {
            app,
            listener,
            runtime,
        })
    }

    /// The address it listens on (the port chosen when 0 was asked for).
    pub fn address(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The models it offers.
    pub fn models(&self) -> Vec<Info> {
        self.app
            .order
            .iter()
            .map(|n| self.app.models[n].served.info.clone())
            .collect()
    }

    /// Serves until the process ends.
    pub fn run(self) -> Result<()> {
        let Server {
            app,
            listener,
            runtime,
        } = self;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)
                .context("cannot listen on the socket")?;
            axum::serve(listener, api::router(app))
                .await
                .context("the server stopped")
        })
    }
}

/// The thread that runs a model's jobs one after another.
fn spawn_worker(entry: &Entry) -> Result<()> {
    let (served, queue) = (entry.served.clone(), entry.queue.clone());
    std::thread::Builder::new()
        .name(format!("model {}", served.info.name))
        .spawn(move || {
            loop {
                let (job, work) = queue.pop();
                if jobs::stopped(&job) {
                    job.update(|s| s.phase = Phase::Cancelled);
                    continue;
                }
                job.update(|s| s.phase = Phase::Running);
                // A panic in a model is that request's failure, not the server's.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run::execute(&served, &job, &work)
                }));
                job.update(|s| match result {
                    Ok(Ok(made)) => {
                        s.progress = 1.0;
                        s.made = Some(Arc::new(made));
                        s.phase = Phase::Done;
                    }
                    _ if jobs::stopped(&job) => s.phase = Phase::Cancelled,
                    Ok(Err(e)) => {
                        s.phase = Phase::Failed {
                            error: format!("{e:#}"),
                        }
                    }
                    Err(_) => {
                        s.phase = Phase::Failed {
                            error: "internal error (please report): the model panicked".into(),
                        }
                    }
                });
            }
        })
        .context("cannot start a worker thread")?;
    Ok(())
}
