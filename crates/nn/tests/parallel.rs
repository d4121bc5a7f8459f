//! Data-parallel training: a batch shared by several devices, or by several processes over
//! loopback TCP, trains the model one device trains on the whole batch.

use std::net::TcpListener;
use std::time::Duration;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use diffuse_core::{Mixture, NoiseSource, Schedule, Target};
use diffuse_nn::{
    Activation, MlpConfig, Model, ModelConfig, NnError, Parallel, Peers, TimeEncoding, TrainConfig,
    train,
};

const STEPS: usize = 40;

/// A labelled two-class problem, so the condition rows are sharded too.
fn setup() -> (Mixture, Schedule, ModelConfig) {
    let m = Mixture::new(
        vec![0.5, 0.5],
        vec![vec![-1.0, 0.5], vec![1.0, -0.5]],
        vec![0.2, 0.3],
    )
    .unwrap();
    let s = Schedule::linear(1e-4, 0.02, 100).unwrap();
    let cfg = MlpConfig {
        dim: 2,
        hidden: 48,
        depth: 2,
        activation: Activation::Silu,
        classes: 2,
        time: TimeEncoding::Appended,
    };
    (m, s, cfg.into())
}

fn config(parallel: Parallel) -> TrainConfig {
    TrainConfig {
        steps: STEPS,
        // Odd, so the shards are unequal (25 and 26 rows).
        batch: 51,
        lr: 2e-3,
        weight_decay: Some(1e-2),
        clip: Some(1.0),
        seed: 11,
        label_dropout: 0.2,
        prompt_noise: 0.0,
        prompts: vec![],
        target: Target::Eps,
        device: diffuse_core::device::cpu(),
        parallel,
    }
}

/// Trains with `parallel`: the model's weights and every step's loss.
fn run(parallel: Parallel) -> Result<(Vec<f32>, Vec<f64>), NnError> {
    let (m, s, cfg) = setup();
    let noise = NoiseSource::new(4);
    let draw = |rows: std::ops::Range<u64>| {
        let x = m.sample(&noise, rows.clone());
        let labels = x.chunks(2).map(|r| usize::from(r[0] > 0.0)).collect();
        (x, Some(labels))
    };
    let mut losses = vec![];
    let model = train(
        &cfg,
        None,
        &s,
        &draw,
        &config(parallel),
        0,
        None,
        &mut |_, l| {
            losses.push(l);
            Ok(())
        },
        None,
    )?;
    Ok((weights(&model), losses))
}

fn weights(model: &Model) -> Vec<f32> {
    struct All(Vec<f32>);
    impl ModuleVisitor for All {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.extend(
                p.val()
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap(),
            );
        }
    }
    let mut all = All(vec![]);
    model.visit(&mut all);
    all.0
}

fn two_devices() -> Parallel {
    Parallel {
        extra_devices: vec![diffuse_core::device::cpu()],
        peers: None,
    }
}

fn free_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("127.0.0.1:{}", l.local_addr().unwrap().port())
}

fn rank(rank: usize, nodes: usize, coordinator: &str, wait: u64) -> Parallel {
    Parallel {
        extra_devices: vec![],
        peers: Some(Peers {
            rank,
            nodes,
            coordinator: coordinator.into(),
            wait: Duration::from_secs(wait),
        }),
    }
}

/// Largest |a - b| / (1 + |b|).
fn gap(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()) / (1.0 + f64::from(y.abs())))
        .fold(0.0, f64::max)
}

/// Two devices sum the two halves' gradients where one device sums the whole batch's in one
/// pass: the same model up to float32 summation order. Over 40 Adam steps that order moves a
/// weight by a few 1e-7 of its size (measured 3.0e-7; the bound is 100 float32 epsilons).
#[test]
fn two_devices_train_the_model_one_device_trains() {
    let (one, l1) = run(Parallel::default()).unwrap();
    let (two, l2) = run(two_devices()).unwrap();
    let weights_gap = gap(&two, &one);
    let loss_gap = l1
        .iter()
        .zip(&l2)
        .map(|(a, b)| (a - b).abs() / a)
        .fold(0.0, f64::max);
    println!(
        "weights {weights_gap:.2e}, losses {loss_gap:.2e}: {:?} {:?}",
        &l1[..3],
        &l2[..3]
    );
    assert!(
        weights_gap < 100.0 * f64::from(f32::EPSILON),
        "{weights_gap}"
    );
    assert!(loss_gap < 100.0 * f64::from(f32::EPSILON), "{loss_gap}");
    assert!(
        one != two || l1 == l2,
        "the sharded run cannot be the same run"
    );
}

/// Two processes (here two threads talking TCP over the loopback) add the same two shard
/// gradients in the same order as two devices of one process: the same bits.
#[test]
fn two_ranks_over_loopback_train_the_two_device_model_exactly() {
    let (two, l2) = run(two_devices()).unwrap();
    let at = free_port();
    let (r0, r1) = std::thread::scope(|s| {
        let a = s.spawn(|| run(rank(0, 2, &at, 30)));
        let b = s.spawn(|| run(rank(1, 2, &at, 30)));
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    let (g0, g1, again) = (
        gap(&r0.0, &two),
        gap(&r1.0, &two),
        gap(&run(two_devices()).unwrap().0, &two),
    );
    println!(
        "rank 0 {g0:.2e}, rank 1 {g1:.2e}, two devices again {again:.2e}; losses {:?} {:?}",
        &r0.1[..3],
        &l2[..3]
    );
    assert!(
        r0.0 == two && r1.0 == two,
        "weights differ: rank 0 by {g0:.2e}, rank 1 by {g1:.2e}"
    );
    assert_eq!(r0.1, l2);
    assert_eq!(r1.1, l2);
}

/// A rank started with other settings is refused by name, and a rank that never comes is
/// waited for only as long as asked.
#[test]
fn a_group_refuses_what_it_cannot_train_together() {
    let at = free_port();
    let (e0, e1) = std::thread::scope(|s| {
        let a = s.spawn(|| run(rank(0, 2, &at, 30)).err().map(|e| e.to_string()));
        let b = s.spawn(|| {
            run(Parallel {
                extra_devices: vec![diffuse_core::device::cpu()],
                ..rank(1, 2, &at, 30)
            })
            .err()
            .map(|e| e.to_string())
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    let e0 = e0.expect("rank 0 refuses");
    assert!(
        e0.contains("rank 1 was started with other settings"),
        "{e0}"
    );
    let e1 = e1.expect("rank 1 is refused");
    assert!(e1.contains("rank 0 refused rank 1"), "{e1}");

    let e = run(rank(0, 3, &free_port(), 1)).unwrap_err().to_string();
    assert!(
        e.contains("rank(s) 1, 2 did not join") && e.contains("within 1 s"),
        "{e}"
    );
    let e = run(rank(2, 2, &free_port(), 1)).unwrap_err().to_string();
    assert!(e.contains("--rank 2 of --nodes 2"), "{e}");
    let e = run(Parallel {
        extra_devices: vec![diffuse_core::device::cpu(); 60],
        peers: None,
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("a batch of 51 cannot be shared by 61 devices"),
        "{e}"
    );
}
