//! `diffuse serve`, driven as a user's browser and a hostile client would: the server is started
//! on a free local port, its JSON API is exercised (generation with its progress events,
//! cancel, the queue, bad requests and limits, concurrent clients), its images are compared
//! byte for byte with `diffuse sample`'s, and a real headless Chromium (Debian's, installed by
//! scripts/system-packages.sh) loads the page, types a prompt and sees the pictures appear.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{ok, tmp};

/// A running `diffuse serve`, stopped when dropped.
struct Server {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

impl Server {
    /// Starts `diffuse serve --port 0 ARGS` and reads the address it prints.
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_diffuse"))
            .args(["serve", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("diffuse serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.is_empty() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("diffuse serve printed no address: {err}");
        }
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("an address")
            .trim_end_matches('/')
            .to_string();
        Self {
            child,
            base,
            agent: agent(),
        }
    }

    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let mut r = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_vec().unwrap())
    }

    fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.get(path);
        (status, serde_json::from_slice(&body).unwrap())
    }

    fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let mut r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(body)
            .unwrap();
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (status, value)
    }

    /// Posts a generation request that must be accepted; its id.
    fn submit(&self, request: Value) -> u64 {
        let (status, v) = self.post("/api/generate", &request.to_string());
        assert_eq!(status, 202, "{v}");
        v["id"].as_u64().unwrap()
    }

    /// A job's events, `(name, data)`, as they come, until the last.
    fn events(&self, id: u64) -> Events {
        let r = self
            .agent
            .get(format!("{}/api/jobs/{id}/events", self.base))
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        Events {
            lines: BufReader::new(Box::new(r.into_body().into_reader())),
            over: false,
        }
    }

    /// Follows a job to its end; all its events.
    fn follow(&self, id: u64) -> Vec<(String, Value)> {
        self.events(id).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Server-sent events, parsed.
struct Events {
    lines: BufReader<Box<dyn Read + Send>>,
    over: bool,
}

impl Iterator for Events {
    type Item = (String, Value);

    fn next(&mut self) -> Option<Self::Item> {
        if self.over {
            return None;
        }
        let (mut name, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            if self.lines.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if let Some(n) = line.strip_prefix("event:") {
                name = n.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d.trim_start());
            } else if line.is_empty() && !name.is_empty() {
                self.over = matches!(name.as_str(), "done" | "failed" | "cancelled");
                let value = serde_json::from_str(&data).unwrap_or(Value::Null);
                return Some((name, value));
            }
        }
    }
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

/// A request that runs long enough to be cancelled or waited for: DDPM's every step.
fn long_request() -> Value {
    json!({"model": "fashion-mnist", "label": "bag", "sampler": "ddpm", "n": 64})
}

#[test]
fn a_prompt_gives_the_pictures_diffuse_sample_gives_with_progress_on_the_way() {
    let server = Server::start(&[]);
    let (status, models) = server.get_json("/api/models");
    assert_eq!(status, 200);
    assert_eq!(models["models"][0]["name"], "fashion-mnist");
    assert_eq!(models["models"][0]["reads_prompts"], true);
    // The latent text-to-image model trained here is served too, with its own defaults.
    let colour = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "colour-fashion")
        .expect("colour-fashion is served");
    assert_eq!(colour["guidance"], 3.0);
    assert_eq!(colour["nfe"], 20);

    let request = json!({"model": "fashion-mnist", "prompt": "a bag with a handle", "n": 3,
        "nfe": 12, "seed": 7, "sampler": "dpmpp-2m", "guidance": 2.5});
    let id = server.submit(request);
    let events = server.follow(id);
    let seen = names(&events);
    assert!(seen.contains(&"progress"), "{seen:?}");
    assert!(seen.contains(&"preview"), "{seen:?}");
    assert_eq!(seen.last(), Some(&"done"), "{events:?}");
    let done = &events.last().unwrap().1;
    let images = done["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    assert_eq!(done["numbers"]["nfe"], 12);
    // The preview is a picture.
    let (status, png) = server.get(
        events.iter().find(|e| e.0 == "preview").unwrap().1["url"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(status, 200);
    assert!(png.starts_with(b"\x89PNG"));

    // The command line with the same settings writes the same files.
    let out = tmp("serve-same");
    ok(&[
        "sample",
        "--model",
        "fashion-mnist",
        "--prompt",
        "a bag with a handle",
        "--n",
        "3",
        "--nfe",
        "12",
        "--seed",
        "7",
        "--sampler",
        "dpmpp-2m",
        "--guidance",
        "2.5",
        "--out",
        out.to_str().unwrap(),
        "--force",
    ]);
    for (k, url) in images.iter().enumerate() {
        let (status, served) = server.get(url.as_str().unwrap());
        assert_eq!(status, 200);
        let written = std::fs::read(out.join(format!("images/{k:04}.png"))).unwrap();
        assert!(served == written, "image {k} differs from diffuse sample's");
    }
    // The summary and the download.
    let (status, summary) = server.get_json(&format!("/api/jobs/{id}/summary.json"));
    assert_eq!(status, 200);
    assert_eq!(summary["seed"], 7);
    assert_eq!(summary["prompt"], "a bag with a handle");
    // Where it ran, as --device names it (this test's server is the build's default).
    assert_eq!(summary["device"], diffuse_core::device::default_name());
    let (status, zip) = server.get(&format!("/api/jobs/{id}/download"));
    assert_eq!(status, 200);
    assert!(zip.starts_with(b"PK"));
    let text = String::from_utf8_lossy(&zip);
    assert!(text.contains("images/0002.png") && text.contains("summary.json"));
    // The gallery lists it with its request, for a re-run.
    let (_, jobs) = server.get_json("/api/jobs");
    assert_eq!(jobs["jobs"][0]["id"], id);
    assert_eq!(jobs["jobs"][0]["request"]["prompt"], "a bag with a handle");
}

#[test]
fn cancel_stops_a_run_between_steps_and_a_second_request_waits_its_turn() {
    let server = Server::start(&[]);
    let first = server.submit(long_request());
    let mut events = server.events(first);
    // Wait until the first runs.
    assert!(events.any(|(n, _)| n == "progress"));
    let second = server.submit(json!({"model": "fashion-mnist", "label": "bag", "n": 2, "nfe": 6}));
    let (_, state) = server.get_json(&format!("/api/jobs/{second}"));
    assert_eq!(state["phase"], "queued", "{state}");
    assert_eq!(state["position"], 1);
    let third = server.submit(json!({"model": "fashion-mnist", "n": 1, "nfe": 4}));
    let (_, state) = server.get_json(&format!("/api/jobs/{third}"));
    assert_eq!(state["position"], 2);
    // A queued job leaves the queue at once, and the one behind it moves up.
    let (status, _) = server.post(&format!("/api/jobs/{second}/cancel"), "");
    assert_eq!(status, 200);
    let (_, state) = server.get_json(&format!("/api/jobs/{second}"));
    assert_eq!(state["phase"], "cancelled");
    let (_, state) = server.get_json(&format!("/api/jobs/{third}"));
    assert_eq!(state["position"], 1);
    // The running one stops between steps, long before its 64 x 1000 steps are done.
    let clock = Instant::now();
    let (status, _) = server.post(&format!("/api/jobs/{first}/cancel"), "");
    assert_eq!(status, 200);
    let rest: Vec<_> = events.collect();
    assert_eq!(names(&rest).last(), Some(&"cancelled"), "{rest:?}");
    assert!(clock.elapsed() < Duration::from_secs(30));
    let (_, state) = server.get_json(&format!("/api/jobs/{first}"));
    assert!(state["progress"].as_f64().unwrap() < 0.5, "{state}");
    // Cancelling what is over is refused; the next request runs.
    let (status, v) = server.post(&format!("/api/jobs/{first}/cancel"), "");
    assert_eq!(status, 409, "{v}");
    let events = server.follow(third);
    assert_eq!(names(&events).last(), Some(&"done"), "{events:?}");
    // No results for a cancelled job.
    let (status, _) = server.get(&format!("/api/jobs/{first}/images/0000.png"));
    assert_eq!(status, 409);
}

#[test]
fn bad_requests_get_one_clear_error_and_the_server_keeps_serving() {
    let server = Server::start(&["--max-queue", "2"]);
    let cases: &[(&str, u16, &str)] = &[
        (r#"{"model": "fashion-mnist", "n": 100000000}"#, 400, "n:"),
        (r#"{"model": "fashion-mnist", "nfe": -5}"#, 400, "nfe:"),
        (r#"{"model": "fashion-mnist", "nfe": 0}"#, 400, "nfe:"),
        (r#"{"model": "fashion-mnist", "nfe": 1000000}"#, 400, "nfe:"),
        (r#"{"model": "fashion-mnist", "n": 0}"#, 400, "n"),
        (r#"{"model": "fashion-mnist", "seed": -1}"#, 400, "seed:"),
        (
            r#"{"model": "no-such-model"}"#,
            404,
            "no model named 'no-such-model'",
        ),
        (
            r#"{"model": "fashion-mnist", "steps": 10}"#,
            400,
            "unknown field `steps`",
        ),
        (
            r#"{"model": "fashion-mnist", "sampler": "magic"}"#,
            400,
            "sampler:",
        ),
        (
            r#"{"model": "fashion-mnist", "label": "dog"}"#,
            400,
            "label 'dog'",
        ),
        (
            r#"{"model": "fashion-mnist", "label": "bag", "prompt": "a bag"}"#,
            400,
            "not both",
        ),
        (
            r#"{"model": "fashion-mnist", "negative_prompt": "red"}"#,
            400,
            "negative_prompt",
        ),
        (r#"{"model": "fashion-mnist", "size": 512}"#, 400, "size:"),
        (
            r#"{"model": "fashion-mnist", "guidance": 1e300}"#,
            400,
            "guidance:",
        ),
        (r#"{"model": "fashion-mnist", "prompt": 5}"#, 400, "prompt:"),
        (r#"{"model": "#, 400, "not valid JSON"),
        (r#"[1, 2, 3]"#, 400, "not a generation request"),
        ("", 400, "not valid JSON"),
        (r#"{"prompt": "a bag"}"#, 400, "missing field `model`"),
    ];
    for (body, status, says) in cases {
        let (got, v) = server.post("/api/generate", body);
        let error = v["error"].as_str().unwrap_or_default();
        assert_eq!(got, *status, "{body}: {v}");
        assert!(error.contains(says), "{body}: {error}");
        assert_eq!(error.lines().count(), 1, "{error}");
    }
    let long_prompt = "a bag ".repeat(1000);
    let (status, v) = server.post(
        "/api/generate",
        &json!({"model": "fashion-mnist", "prompt": long_prompt}).to_string(),
    );
    assert_eq!(status, 400, "{v}");
    // A body beyond what any request needs: 413 with a JSON error, or (when the server answers
    // before the client has sent it all) a closed connection.
    let huge = format!("\"{}\"", "x".repeat(200_000));
    // (A client of its own: the connection the server closes is not one to reuse.)
    match agent()
        .post(format!("{}/api/generate", server.base))
        .send(huge.as_str())
    {
        Ok(mut r) => {
            assert_eq!(r.status().as_u16(), 413);
            let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
            assert!(v["error"].as_str().unwrap().contains("body"), "{v}");
        }
        Err(ureq::Error::Io(_)) => {}
        Err(e) => panic!("{e}"),
    }
    assert_eq!(server.get_json("/api/models").0, 200);
    // Unknown jobs and routes.
    for path in [
        "/api/jobs/999",
        "/api/jobs/abc/events",
        "/api/nothing",
        "/api/seed/nothing",
    ] {
        let (status, v) = server.get_json(path);
        assert_eq!(status, 404, "{path}: {v}");
        assert!(v["error"].is_string());
    }
    // Experiments refuse what is out of bounds, naming the field.
    for (query, says) in [
        ("chains?chains=100000000", "chains:"),
        ("chains?steps=-3", "steps: '-3' is not a whole number"),
        ("chains?delta=abc", "delta: 'abc' is not a number"),
        ("chains?chains=20000&steps=3000", "steps:"),
        ("chains?delta=-1", "delta"),
        ("chains?energy=triple-well", "energy"),
        ("chains?start=nan", "start:"),
        ("forward?steps=100000", "steps:"),
        ("forward?t=500", "t:"),
        ("forward?data=spiral", "delta:V"),
        (
            "forward?data=csv:/etc/passwd",
            "files are for the command line",
        ),
        (
            "guess?data=gmm:/etc/hostname",
            "files are for the command line",
        ),
        ("undiffuse?sampler=magic", "sampler"),
        ("undiffuse?grid=nonsense&sampler=euler", "grid"),
        ("guess?data=nothing", "data"),
        ("guess?colour=red", "unknown field"),
    ] {
        let (status, v) = server.get_json(&format!("/api/seed/{query}"));
        assert_eq!(status, 400, "{query}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{query}: {v}");
    }
    // A full queue refuses, and says so; the server still answers.
    let running = server.submit(long_request());
    let mut events = server.events(running);
    assert!(events.any(|(n, _)| n == "progress"));
    let waiting = [server.submit(long_request()), server.submit(long_request())];
    let (status, v) = server.post("/api/generate", &long_request().to_string());
    assert_eq!(status, 429, "{v}");
    for id in waiting.into_iter().chain([running]) {
        server.post(&format!("/api/jobs/{id}/cancel"), "");
    }
    let id = server.submit(json!({"model": "fashion-mnist", "n": 1, "nfe": 3}));
    assert_eq!(names(&server.follow(id)).last(), Some(&"done"));
}

#[test]
fn concurrent_clients_are_all_answered_and_each_gets_its_own_pictures() {
    let server = Server::start(&[]);
    let base = server.base.clone();
    let clients: Vec<_> = (0..6u64)
        .map(|k| {
            let base = base.clone();
            std::thread::spawn(move || {
                let a = agent();
                let body = json!({"model": "fashion-mnist", "n": 1, "nfe": 4, "seed": k % 3});
                let mut r = a
                    .post(format!("{base}/api/generate"))
                    .header("content-type", "application/json")
                    .send(body.to_string())
                    .unwrap();
                assert_eq!(r.status().as_u16(), 202);
                let v: Value =
                    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                (k, v["id"].as_u64().unwrap())
            })
        })
        .collect();
    // Hostile clients at the same time: garbage and experiments.
    let noise: Vec<_> = (0..4)
        .map(|k| {
            let base = base.clone();
            std::thread::spawn(move || {
                let a = agent();
                let r = a
                    .post(format!("{base}/api/generate"))
                    .send(format!("{{\"model\": {k}"))
                    .unwrap();
                assert_eq!(r.status().as_u16(), 400);
                let r = a
                    .get(format!("{base}/api/seed/chains?chains=500&steps=100"))
                    .call()
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200);
            })
        })
        .collect();
    for n in noise {
        n.join().unwrap();
    }
    let ids: Vec<(u64, u64)> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let mut pictures: Vec<(u64, Vec<u8>)> = vec![];
    for (k, id) in &ids {
        let events = server.follow(*id);
        let done = &events.last().unwrap().1;
        let (_, png) = server.get(done["images"][0].as_str().unwrap());
        pictures.push((k % 3, png));
    }
    // The same seed gives the same picture whoever asked and in whatever order.
    for (s, png) in &pictures {
        for (t, other) in &pictures {
            assert_eq!(s == t, png == other, "seeds {s} and {t}");
        }
    }
}

#[test]
fn point_models_and_stable_diffusion_folders_are_served_like_the_command_line() {
    let dir = tmp("serve-points");
    let model = dir.join("moons");
    ok(&[
        "train",
        "--data",
        "moons",
        "--steps",
        "30",
        "--hidden",
        "16",
        "--out",
        model.to_str().unwrap(),
    ]);
    let sd = Path::new(env!("CARGO_MANIFEST_DIR")).join("../nn/tests/fixtures/sd/tiny-sd1");
    let server = Server::start(&[model.to_str().unwrap(), sd.to_str().unwrap()]);
    let (_, models) = server.get_json("/api/models");
    let kinds: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    // The two shipped image models, the shipped colour-fashion (a diffusers folder), then the
    // folders given.
    assert_eq!(
        kinds,
        [
            "image",
            "image",
            "stable-diffusion",
            "points",
            "stable-diffusion"
        ]
    );

    let id = server
        .submit(json!({"model": "moons", "n": 200, "nfe": 10, "sampler": "euler", "seed": 3}));
    let events = server.follow(id);
    let done = &events.last().unwrap().1;
    assert_eq!(done["points"].as_array().unwrap().len(), 200, "{done}");
    let (_, csv) = server.get(&format!("/api/jobs/{id}/samples.csv"));
    let out = dir.join("cli");
    ok(&[
        "sample",
        "--model",
        model.to_str().unwrap(),
        "--n",
        "200",
        "--nfe",
        "10",
        "--sampler",
        "euler",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    let ours = common::samples(&out);
    let served: Vec<f64> = String::from_utf8(csv)
        .unwrap()
        .lines()
        .skip(1)
        .flat_map(|l| {
            l.split(',')
                .map(|v| v.parse::<f64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(served.len(), ours.len());
    for (a, b) in served.iter().zip(&ours) {
        assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
    }

    // Stable Diffusion: a prompt, a negative prompt, a size; the same image as the CLI's.
    let id = server.submit(
        json!({"model": "tiny-sd1", "prompt": "a red octopus", "negative_prompt": "blue",
        "nfe": 4, "seed": 5, "size": 64, "guidance": 5.0}),
    );
    let events = server.follow(id);
    assert_eq!(names(&events).last(), Some(&"done"), "{events:?}");
    assert!(names(&events).contains(&"preview"));
    let (_, png) = server.get(events.last().unwrap().1["images"][0].as_str().unwrap());
    let out = dir.join("sd");
    ok(&[
        "sample",
        "--model",
        sd.to_str().unwrap(),
        "--prompt",
        "a red octopus",
        "--negative-prompt",
        "blue",
        "--nfe",
        "4",
        "--seed",
        "5",
        "--height",
        "64",
        "--width",
        "64",
        "--guidance",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        png == std::fs::read(out.join("images/0000.png")).unwrap(),
        "the SD image differs from the CLI's"
    );
    for (body, says) in [
        (json!({"model": "tiny-sd1"}), "prompt"),
        (
            json!({"model": "tiny-sd1", "prompt": "x", "size": 60}),
            "size",
        ),
        (
            json!({"model": "tiny-sd1", "prompt": "x", "size": 100000}),
            "size",
        ),
        (json!({"model": "tiny-sd1", "prompt": "x", "n": 1000}), "n:"),
        (
            json!({"model": "tiny-sd1", "prompt": "word ".repeat(100)}),
            "tokens",
        ),
        (json!({"model": "moons", "prompt": "x"}), "without classes"),
    ] {
        let (status, v) = server.post("/api/generate", &body.to_string());
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{body}: {v}");
    }
}

#[test]
fn the_seed_experiments_answer_their_controls() {
    let server = Server::start(&[]);
    // Langevin with a small step follows exp(-E)/Z; a huge step does not.
    let (status, fine) = server.get_json(
        "/api/seed/chains?method=langevin&energy=quadratic&delta=0.01&steps=2000&chains=4000",
    );
    assert_eq!(status, 200, "{fine}");
    assert!(
        fine["stats"]["ks_p_value"].as_f64().unwrap() > 1e-3,
        "{}",
        fine["stats"]
    );
    let (_, coarse) = server.get_json(
        "/api/seed/chains?method=langevin&energy=quadratic&delta=1.5&steps=2000&chains=4000",
    );
    assert!(
        coarse["stats"]["ks_p_value"].as_f64().unwrap() < 1e-6,
        "{}",
        coarse["stats"]
    );
    let (_, m) = server
        .get_json("/api/seed/chains?method=metropolis&proposal=gaussian:1.5&steps=500&chains=2000");
    let rate = m["extra"]["acceptance"].as_f64().unwrap();
    assert!(rate > 0.1 && rate < 1.0, "{rate}");
    assert_eq!(m["paths"].as_array().unwrap().len(), 8);
    // The forward marginal at t integrates to 1 and the histogram with it.
    let (status, f) = server.get_json("/api/seed/forward?data=delta:-2,2&t=50&steps=200&n=4000");
    assert_eq!(status, 200, "{f}");
    let h = &f["histogram"];
    let (lo, hi) = (h["lo"].as_f64().unwrap(), h["hi"].as_f64().unwrap());
    let d: Vec<f64> = h["density"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let mass: f64 = d.iter().sum::<f64>() * (hi - lo) / d.len() as f64;
    assert!((mass - 1.0).abs() < 0.02, "{mass}");
    let theory = f["theory"].as_array().unwrap();
    let area: f64 = theory
        .windows(2)
        .map(|w| {
            let (a, b) = (w[0].as_array().unwrap(), w[1].as_array().unwrap());
            (b[0].as_f64().unwrap() - a[0].as_f64().unwrap())
                * (a[1].as_f64().unwrap() + b[1].as_f64().unwrap())
                / 2.0
        })
        .sum();
    assert!((area - 1.0).abs() < 0.02, "{area}");
    // Undiffusion with a sampler and a budget; the guess at two times.
    let (status, u) = server.get_json("/api/seed/undiffuse?sampler=dpmpp-2m&nfe=12&n=2000");
    assert_eq!(status, 200, "{u}");
    assert_eq!(u["nfe"], 12);
    // The guess for data at -2 and 2 has a closed form: with x_t = sqrt(ab) x_0 + sqrt(1 - ab) z,
    // E[x_0 | x_t] = 2 tanh(2 sqrt(ab) x_t / (1 - ab)) and E[z | x_t] = (x_t - sqrt(ab)
    // E[x_0 | x_t]) / sqrt(1 - ab): a steep line between the points near t = 0, almost x_t at T.
    for t in [2, 50, 200] {
        let (status, g) = server.get_json(&format!("/api/seed/guess?data=delta:-2,2&t={t}"));
        assert_eq!(status, 200, "{g}");
        let ab = g["alpha_bar"].as_f64().unwrap();
        for p in g["guess"].as_array().unwrap() {
            let (x, guess) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
            let x0 = 2.0 * (2.0 * ab.sqrt() * x / (1.0 - ab)).tanh();
            let exact = (x - ab.sqrt() * x0) / (1.0 - ab).sqrt();
            // The denoiser computes in float32: x_t - sqrt(ab) x_0 carries round-off of a few
            // ulps of its terms, divided by sqrt(1 - ab) (0.017 at t = 2).
            let tolerance = 8.0 * f64::from(f32::EPSILON) * (x.abs() + 2.0) / (1.0 - ab).sqrt();
            assert!(
                (guess - exact).abs() < tolerance,
                "t {t}, x {x}: {guess} vs {exact}"
            );
        }
    }
}

/// Runs a WebDriver command; its `value`.
fn webdriver(a: &ureq::Agent, method: &str, url: &str, body: Option<Value>) -> Value {
    let mut r = match (method, body) {
        ("GET", _) => a.get(url).call(),
        ("DELETE", _) => a.delete(url).call(),
        (_, b) => a
            .post(url)
            .header("content-type", "application/json")
            .send(b.unwrap_or(json!({})).to_string()),
    }
    .unwrap();
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert!(r.status().is_success(), "{method} {url}: {v}");
    v["value"].clone()
}

fn program(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

#[test]
fn a_browser_loads_the_page_types_a_prompt_and_sees_the_pictures() {
    let driver = program("CHROMEDRIVER", "/usr/bin/chromedriver");
    let chromium = program("CHROMIUM", "/usr/bin/chromium");
    assert!(
        driver.exists() && chromium.exists(),
        "Chromium and ChromeDriver are needed: scripts/system-packages.sh installs them \
         (Debian's chromium and chromium-driver)"
    );
    let server = Server::start(&[]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut chromedriver = Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let wd = format!("http://127.0.0.1:{port}");
    let a = agent();
    let clock = Instant::now();
    while a.get(format!("{wd}/status")).call().is_err() {
        assert!(
            clock.elapsed() < Duration::from_secs(30),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let profile = tmp("chromium-profile");
    let session = webdriver(
        &a,
        "POST",
        &format!("{wd}/session"),
        Some(json!({"capabilities": {"alwaysMatch": {
        "goog:chromeOptions": {"binary": chromium, "args": ["--headless", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--window-size=1200,1000",
            format!("--user-data-dir={}", profile.display())]}}}})),
    );
    let s = format!("{wd}/session/{}", session["sessionId"].as_str().unwrap());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let run = |script: &str| {
            webdriver(
                &a,
                "POST",
                &format!("{s}/execute/sync"),
                Some(json!({"script": script, "args": []})),
            )
        };
        let wait = |script: &str, what: &str| {
            let clock = Instant::now();
            loop {
                if run(script) == json!(true) {
                    return;
                }
                assert!(
                    clock.elapsed() < Duration::from_secs(120),
                    "the page never showed {what}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        };
        webdriver(
            &a,
            "POST",
            &format!("{s}/url"),
            Some(json!({"url": format!("{}/", server.base)})),
        );
        wait(
            "return document.querySelectorAll('#model option').length > 0",
            "its models",
        );
        let element = |css: &str| {
            let e = webdriver(
                &a,
                "POST",
                &format!("{s}/element"),
                Some(json!({"using": "css selector", "value": css})),
            );
            e.as_object()
                .unwrap()
                .values()
                .next()
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        };
        for (css, text) in [
            ("#prompt", "a bag with a handle"),
            ("#n", "4"),
            ("#nfe", "10"),
        ] {
            let e = element(css);
            webdriver(&a, "POST", &format!("{s}/element/{e}/clear"), None);
            webdriver(
                &a,
                "POST",
                &format!("{s}/element/{e}/value"),
                Some(json!({"text": text})),
            );
        }
        let go = element("#go");
        webdriver(&a, "POST", &format!("{s}/element/{go}/click"), None);
        wait(
            "return Array.from(document.querySelectorAll('#result img.sample')).filter(i => i.complete && i.naturalWidth === 28).length === 4",
            "four pictures",
        );
        wait(
            "return document.querySelectorAll('#gallery .card').length === 1",
            "the gallery",
        );
        assert!(
            run("return document.getElementById('status').textContent")
                .as_str()
                .unwrap()
                .starts_with("done")
        );
        if let Some(path) = std::env::var_os("DIFFUSE_SCREENSHOT") {
            save_screenshot(
                &a,
                &s,
                Path::new(&path).join("serve-generate.png").as_path(),
            );
        }
        // A value beyond the limits is refused on the page, in words.
        let n = element("#n");
        webdriver(&a, "POST", &format!("{s}/element/{n}/clear"), None);
        webdriver(
            &a,
            "POST",
            &format!("{s}/element/{n}/value"),
            Some(json!({"text": "100000"})),
        );
        webdriver(&a, "POST", &format!("{s}/element/{go}/click"), None);
        wait(
            "const e = document.getElementById('error'); return !e.hidden && e.textContent.startsWith('n: 100000 samples')",
            "the error for too many images",
        );
        // A seed page draws, and redraws when a control moves.
        webdriver(
            &a,
            "POST",
            &format!("{s}/url"),
            Some(json!({"url": format!("{}/#chains", server.base)})),
        );
        wait(
            "return document.querySelector('#page-chains .numbers').textContent.includes('KS p')",
            "the chains' numbers",
        );
        let before = run("return document.querySelector('#page-chains .numbers').textContent");
        run(
            "const f = document.querySelector('#page-chains form'); f.elements.delta.value = '-1'; f.dispatchEvent(new Event('input')); return true",
        );
        let clock = Instant::now();
        while run("return document.querySelector('#page-chains .numbers').textContent") == before {
            assert!(
                clock.elapsed() < Duration::from_secs(60),
                "the page did not answer its slider"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        if let Some(path) = std::env::var_os("DIFFUSE_SCREENSHOT") {
            save_screenshot(&a, &s, Path::new(&path).join("serve-chains.png").as_path());
        }
        // Every other seed page draws its experiment with no error.
        for page in ["forward", "undiffuse", "guess"] {
            webdriver(
                &a,
                "POST",
                &format!("{s}/url"),
                Some(json!({"url": format!("{}/#{page}", server.base)})),
            );
            wait(
                &format!(
                    "return document.querySelector('#page-{page} .numbers').textContent.length > 0 && document.querySelector('#page-{page} .error').hidden"
                ),
                &format!("the {page} page's numbers"),
            );
            if let Some(path) = std::env::var_os("DIFFUSE_SCREENSHOT") {
                save_screenshot(
                    &a,
                    &s,
                    Path::new(&path).join(format!("serve-{page}.png")).as_path(),
                );
            }
        }
    }));
    webdriver(&a, "DELETE", &s, None);
    let _ = chromedriver.kill();
    let _ = chromedriver.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// Writes the browser's screenshot (for the README: `DIFFUSE_SCREENSHOT=docs cargo test ...`).
fn save_screenshot(a: &ureq::Agent, session: &str, path: &Path) {
    use base64::Engine;
    let shot = webdriver(a, "GET", &format!("{session}/screenshot"), None);
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot.as_str().unwrap())
        .unwrap();
    std::fs::write(path, png).unwrap();
}
