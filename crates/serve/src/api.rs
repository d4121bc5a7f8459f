//! The HTTP routes: the page's files (compiled in), the generation API with its progress stream,
//! and the experiments. Every error is one JSON line, `{"error": "..."}`, with a 4xx status.

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::App;
use crate::experiments;
use crate::jobs::{Job, Phase, State as JobState};
use crate::request::Generate;

/// The page's files.
const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/style.css");

/// Points of a point model returned with its state, at most (the rest are in samples.csv).
const POINTS: usize = 5000;

/// An error for the client.
pub struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(e: impl std::fmt::Display) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, e.to_string())
}

fn missing(what: String) -> Refusal {
    Refusal(StatusCode::NOT_FOUND, what)
}

type Answer = Result<Response, Refusal>;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { page(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { page(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { page(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/api/models", get(list_models))
        .route("/api/generate", post(generate))
        .route("/api/jobs", get(list_jobs))
        .route("/api/jobs/{id}", get(job_state))
        .route("/api/jobs/{id}/events", get(events))
        .route("/api/jobs/{id}/cancel", post(cancel))
        .route("/api/jobs/{id}/images/{file}", get(image))
        .route("/api/jobs/{id}/preview.png", get(preview))
        .route("/api/jobs/{id}/summary.json", get(summary))
        .route("/api/jobs/{id}/samples.csv", get(samples))
        .route("/api/jobs/{id}/download", get(download))
        .route("/api/seed/{experiment}", get(experiment))
        .fallback(|| async { missing("no such page or API route".into()) })
        // A generation request is a few hundred bytes; nothing needs more than this.
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(app)
}

fn page(body: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

fn file(bytes: Vec<u8>, kind: &'static str, name: Option<String>) -> Response {
    let mut r = ([(header::CONTENT_TYPE, kind)], bytes).into_response();
    if let Some(n) = name
        && let Ok(v) = format!("attachment; filename=\"{n}\"").parse()
    {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

async fn list_models(State(app): State<Arc<App>>) -> Answer {
    let infos: Vec<_> = app
        .order
        .iter()
        .map(|n| app.models[n].served.info.clone())
        .collect();
    Ok(axum::Json(json!({ "models": infos, "limits": limits(&app) })).into_response())
}

fn limits(app: &App) -> Value {
    let l = &app.limits;
    json!({
        "images": l.images, "points": l.points, "sd_images": l.sd_images, "steps": l.steps,
        "size": l.size, "queue": l.queue, "chains": l.chains, "work": l.work,
    })
}

fn job_of(app: &App, id: &str) -> Result<Arc<Job>, Refusal> {
    id.parse::<u64>()
        .ok()
        .and_then(|id| app.jobs.get(id))
        .ok_or_else(|| {
            missing(format!(
                "no job {id} (finished jobs beyond the newest {} are forgotten)",
                app.limits.kept
            ))
        })
}

async fn generate(
    State(app): State<Arc<App>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Answer {
    let body =
        body.map_err(|e| Refusal(e.status(), format!("the request's body: {}", e.body_text())))?;
    let request = Generate::parse(&body).map_err(bad)?;
    let Some(entry) = app.models.get(&request.model) else {
        return Err(missing(format!(
            "model: no model named '{}' (this server has {})",
            request.model,
            app.order.join(", ")
        )));
    };
    // The check reads the model (a tokenizer, a text encoder for the prompt's length): off the
    // event loop.
    let (served, limits, asked) = (entry.served.clone(), app.limits.clone(), request.clone());
    let work = tokio::task::spawn_blocking(move || asked.check(&served, &limits))
        .await
        .map_err(|_| Refusal(StatusCode::INTERNAL_SERVER_ERROR, "the check failed".into()))?
        .map_err(|e| bad(format!("{e:#}")))?;
    let job = app.jobs.add(request);
    if let Err(waiting) = entry.queue.push(job.clone(), work, app.limits.queue) {
        app.jobs.forget(job.id);
        return Err(Refusal(
            StatusCode::TOO_MANY_REQUESTS,
            format!("{waiting} requests already wait for this model: try again when one is done"),
        ));
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(describe(&job, &job.state(), false)),
    )
        .into_response())
}

/// A job as JSON: its request, where it is, and the addresses of what it made.
fn describe(job: &Job, state: &JobState, points: bool) -> Value {
    let id = job.id;
    let mut v = json!({
        "id": id,
        "request": job.request,
        "progress": state.progress,
        "step": state.step.map(|s| s.0),
        "steps": state.step.map(|s| s.1),
        "warnings": state.warnings,
        "events": format!("/api/jobs/{id}/events"),
    });
    let phase = serde_json::to_value(&state.phase).unwrap_or(Value::Null);
    if let (Some(o), Value::Object(p)) = (v.as_object_mut(), phase) {
        o.extend(p);
    }
    if let Some((number, _)) = &state.preview {
        v["preview"] = json!(format!("/api/jobs/{id}/preview.png?n={number}"));
    }
    if let Some(made) = &state.made {
        v["images"] = json!(
            (0..made.images.len())
                .map(|k| format!("/api/jobs/{id}/images/{k:04}.png"))
                .collect::<Vec<_>>()
        );
        v["summary"] = json!(format!("/api/jobs/{id}/summary.json"));
        v["download"] = json!(format!("/api/jobs/{id}/download"));
        v["numbers"] = Value::Object(made.summary.clone());
        if let Some((x, d)) = &made.points {
            v["samples"] = json!(format!("/api/jobs/{id}/samples.csv"));
            v["dim"] = json!(d);
            if points {
                let rows: Vec<&[f64]> = x.chunks(*d).take(POINTS).collect();
                v["points"] = json!(rows);
            }
        }
    }
    v
}

async fn list_jobs(State(app): State<Arc<App>>) -> Answer {
    let all: Vec<Value> = app
        .jobs
        .all()
        .iter()
        .map(|j| describe(j, &j.state(), false))
        .collect();
    Ok(axum::Json(json!({ "jobs": all })).into_response())
}

async fn job_state(State(app): State<Arc<App>>, Path(id): Path<String>) -> Answer {
    let job = job_of(&app, &id)?;
    Ok(axum::Json(describe(&job, &job.state(), true)).into_response())
}

async fn cancel(State(app): State<Arc<App>>, Path(id): Path<String>) -> Answer {
    let job = job_of(&app, &id)?;
    let phase = job.state().phase;
    if phase.is_final() {
        return Err(Refusal(
            StatusCode::CONFLICT,
            format!("job {id} is already over ({})", name(&phase)),
        ));
    }
    job.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    // A waiting job leaves its queue at once; a running one stops at its next step.
    if let Some(entry) = app.models.get(&job.request.model)
        && entry.queue.remove(job.id)
    {
        job.update(|s| s.phase = Phase::Cancelled);
    }
    Ok(axum::Json(describe(&job, &job.state(), false)).into_response())
}

fn name(phase: &Phase) -> &'static str {
    match phase {
        Phase::Queued { .. } => "queued",
        Phase::Running => "running",
        Phase::Done => "done",
        Phase::Failed { .. } => "failed",
        Phase::Cancelled => "cancelled",
    }
}

/// What a finished job made, or a refusal saying why there is none.
fn made(job: &Job) -> Result<Arc<crate::jobs::Made>, Refusal> {
    let state = job.state();
    state.made.ok_or_else(|| {
        Refusal(
            StatusCode::CONFLICT,
            format!("job {} has no results ({})", job.id, name(&state.phase)),
        )
    })
}

async fn image(State(app): State<Arc<App>>, Path((id, file)): Path<(String, String)>) -> Answer {
    let job = job_of(&app, &id)?;
    let made = made(&job)?;
    let k = file
        .strip_suffix(".png")
        .and_then(|k| k.parse::<usize>().ok())
        .filter(|k| *k < made.images.len())
        .ok_or_else(|| missing(format!("job {id} has no image {file}")))?;
    Ok(file_response(made.images[k].clone(), "image/png"))
}

fn file_response(bytes: Vec<u8>, kind: &'static str) -> Response {
    file(bytes, kind, None)
}

async fn preview(State(app): State<Arc<App>>, Path(id): Path<String>) -> Answer {
    let job = job_of(&app, &id)?;
    match job.state().preview {
        Some((_, png)) => Ok(file_response(png.to_vec(), "image/png")),
        None => Err(missing(format!("job {id} has no preview yet"))),
    }
}

async fn summary(State(app): State<Arc<App>>, Path(id): Path<String>) -> Answer {
    let job = job_of(&app, &id)?;
    let made = made(&job)?;
    let text = serde_json::to_string_pretty(&made.summary).unwrap_or_default();
    Ok(file(
        text.into_bytes(),
        "application/json",
        Some("summary.json".into()),
    ))
}

fn csv(x: &[f64], d: usize) -> String {
    let mut s: String = (0..d)
        .map(|i| format!("x{i}"))
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    for row in x.chunks(d.max(1)) {
        let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        s.push_str(&cells.join(","));
        s.push('\n');
    }
    s
}

async fn samples(State(app): State<Arc<App>>, Path(id): Path<String>) -> Answer {
    let job = job_of(&app, &id)?;
    let made = made(&job)?;
    let Some((x, d)) = &made.points else {
        return Err(missing(format!("job {id} made images, not points")));
    };
    Ok(file(
        csv(x, *d).into_bytes(),
        "text/csv",
        Some("samples.csv".into()),
    ))
}

async fn download(State(app): State<Arc<App>>, Path(id): Path<String>) -> Answer {
    let job = job_of(&app, &id)?;
    let made = made(&job)?;
    let zipped = tokio::task::spawn_blocking(move || zip(&made))
        .await
        .map_err(|_| {
            Refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot pack the files".into(),
            )
        })?
        .map_err(|e| {
            Refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot pack the files: {e}"),
            )
        })?;
    Ok(file(
        zipped,
        "application/zip",
        Some(format!("diffuse-{id}.zip")),
    ))
}

/// The images (`images/NNNN.png`, as `diffuse sample` names them), samples.csv and
/// summary.json, stored in a zip.
fn zip(made: &crate::jobs::Made) -> zip::result::ZipResult<Vec<u8>> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(vec![]));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (k, png) in made.images.iter().enumerate() {
        w.start_file(format!("images/{k:04}.png"), options)?;
        w.write_all(png)?;
    }
    if let Some((x, d)) = &made.points {
        w.start_file("samples.csv", options)?;
        w.write_all(csv(x, *d).as_bytes())?;
    }
    w.start_file("summary.json", options)?;
    w.write_all(
        serde_json::to_string_pretty(&made.summary)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(w.finish()?.into_inner())
}

/// What the progress stream has told its client so far.
#[derive(Default)]
struct Told {
    phase: Option<Phase>,
    progress: f64,
    step: Option<(usize, usize)>,
    preview: u64,
    warnings: usize,
}

impl Told {
    /// The events that bring the client from what it was told to `state`.
    fn news(&mut self, job: &Job, state: &JobState) -> Vec<Event> {
        let id = job.id;
        let mut out = vec![];
        let event = |name: &str, data: Value| Event::default().event(name).data(data.to_string());
        for w in &state.warnings[self.warnings.min(state.warnings.len())..] {
            out.push(event("warning", json!({ "message": w })));
        }
        self.warnings = state.warnings.len();
        if let Some((number, _)) = &state.preview
            && *number != self.preview
        {
            self.preview = *number;
            out.push(event(
                "preview",
                json!({ "url": format!("/api/jobs/{id}/preview.png?n={number}"), "step": state.step.map(|s| s.0) }),
            ));
        }
        if (state.progress - self.progress).abs() > 1e-9 || state.step != self.step {
            (self.progress, self.step) = (state.progress, state.step);
            if !state.phase.is_final() {
                out.push(event(
                    "progress",
                    json!({ "progress": state.progress, "step": state.step.map(|s| s.0), "steps": state.step.map(|s| s.1) }),
                ));
            }
        }
        if self.phase.as_ref() != Some(&state.phase) {
            self.phase = Some(state.phase.clone());
            out.push(match &state.phase {
                Phase::Queued { position } => event("queued", json!({ "position": position })),
                Phase::Running => event("running", json!({})),
                Phase::Done => event("done", describe(job, state, true)),
                Phase::Failed { error } => event("failed", json!({ "error": error })),
                Phase::Cancelled => event("cancelled", json!({})),
            });
        }
        out
    }
}

async fn events(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Refusal> {
    let job = job_of(&app, &id)?;
    let follow = job.follow();
    let start = Some((job, follow, Told::default()));
    let news = stream::unfold(start, |st| async move {
        let (job, mut follow, mut told) = st?;
        loop {
            follow.borrow_and_update();
            let state = job.state();
            let news = told.news(&job, &state);
            if state.phase.is_final() {
                return Some((news, None));
            }
            if !news.is_empty() {
                return Some((news, Some((job, follow, told))));
            }
            if follow.changed().await.is_err() {
                return None;
            }
        }
    });
    let flat = news.flat_map(|events| stream::iter(events.into_iter().map(Ok)));
    Ok(Sse::new(flat).keep_alive(KeepAlive::default()))
}

/// Parses a query string, naming the field that does not parse.
fn query<T: DeserializeOwned>(raw: Option<String>) -> Result<T, Refusal> {
    let raw = raw.unwrap_or_default();
    let pairs = form_urlencoded::parse(raw.as_bytes());
    let de = serde_urlencoded::Deserializer::new(pairs);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let given = pairs.into_iter().find(|(k, _)| *k == path).map(|(_, v)| v);
        let inner = e.into_inner().to_string();
        bad(match given {
            // "invalid digit found in string" says nothing of what was given or wanted.
            Some(v) if inner.contains("digit") || inner.contains("too large") => {
                format!("{path}: '{v}' is not a whole number (0, 1, 2, ...)")
            }
            Some(v) if inner.contains("float") => format!("{path}: '{v}' is not a number"),
            _ if path == "." => inner,
            _ => format!("{path}: {inner}"),
        })
    })
}

async fn experiment(
    State(app): State<Arc<App>>,
    Path(which): Path<String>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let limits = app.limits.clone();
    let run: Box<dyn FnOnce() -> anyhow::Result<Value> + Send> = match which.as_str() {
        "chains" => {
            let q: experiments::Chains = query(raw)?;
            Box::new(move || experiments::chains(&q, &limits))
        }
        "forward" | "undiffuse" | "guess" => {
            let q: experiments::Diffusion = query(raw)?;
            Box::new(move || match which.as_str() {
                "forward" => experiments::forward(&q, &limits),
                "undiffuse" => experiments::undiffusion(&q, &limits),
                _ => experiments::guess(&q, &limits),
            })
        }
        other => {
            return Err(missing(format!(
                "no experiment '{other}' (chains, forward, undiffuse, guess)"
            )));
        }
    };
    let _permit = app.experiments.acquire().await.map_err(|_| {
        Refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is stopping".into(),
        )
    })?;
    let answer = tokio::task::spawn_blocking(run)
        .await
        .map_err(|_| {
            Refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error (please report): the experiment panicked".into(),
            )
        })?
        .map_err(|e| bad(format!("{e:#}")))?;
    Ok(axum::Json(answer).into_response())
}
