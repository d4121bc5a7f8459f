//! The all-reduce between training processes (data parallelism across machines): rank 0, the
//! coordinator, listens; every other rank connects to it. Each step every rank sends its summed
//! gradient and loss, rank 0 adds them in rank order and sends the total back, so every rank
//! applies the same bits and the ranks' models stay identical.
//!
//! burn 0.22 has no inter-process collective of its own (burn-collective stopped at 0.21, and the
//! in-process `all_reduce` of 0.22 exists only for its GPU backends), hence this small one on
//! std's TCP. Plain TCP, no authentication: for a trusted network (the loopback, a cluster's
//! private network).

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::{NnError, Result};

/// This process's place in a group of training processes that share every batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peers {
    /// This process's rank, 0..nodes; rank 0 is the coordinator.
    pub rank: usize,
    /// Processes in the group.
    pub nodes: usize,
    /// host:port where rank 0 listens and the others connect.
    pub coordinator: String,
    /// How long to wait for the others to join.
    pub wait: Duration,
}

impl Peers {
    /// Checks the rank against the group's size.
    pub fn validate(&self) -> Result<()> {
        if self.nodes == 0 || self.rank >= self.nodes {
            return Err(NnError::Invalid(format!(
                "--rank {} of --nodes {}: the rank must be 0 to {}",
                self.rank,
                self.nodes,
                self.nodes.saturating_sub(1)
            )));
        }
        Ok(())
    }
}

const HELLO: &[u8; 8] = b"diffuse1";

/// A connected group.
pub(crate) struct Group {
    rank: usize,
    /// Rank 0: the link to rank r at r - 1; other ranks: the link to rank 0.
    links: Vec<Link>,
}

struct Link {
    rank: usize,
    read: BufReader<TcpStream>,
    write: BufWriter<TcpStream>,
}

fn fail(message: String) -> NnError {
    NnError::Group(message)
}

impl Link {
    fn new(stream: TcpStream, rank: usize) -> Result<Self> {
        let _ = stream.set_nodelay(true);
        let copy = stream
            .try_clone()
            .map_err(|e| fail(format!("cannot use the connection to rank {rank}: {e}")))?;
        Ok(Self {
            rank,
            read: BufReader::with_capacity(1 << 20, stream),
            write: BufWriter::with_capacity(1 << 20, copy),
        })
    }

    fn lost(&self, step: usize, e: std::io::Error) -> NnError {
        fail(format!(
            "lost rank {} at step {step} ({e}): every rank must run to the end",
            self.rank
        ))
    }

    fn send(&mut self, step: usize, values: &[f32], loss: f64) -> Result<()> {
        let mut put = || -> std::io::Result<()> {
            self.write.write_all(&(step as u64).to_le_bytes())?;
            self.write.write_all(&(values.len() as u64).to_le_bytes())?;
            for v in values {
                self.write.write_all(&v.to_le_bytes())?;
            }
            self.write.write_all(&loss.to_le_bytes())?;
            self.write.flush()
        };
        put().map_err(|e| self.lost(step, e))
    }

    /// Reads one message of step `step` with `n` values into `into` (added when `add`).
    fn receive(&mut self, step: usize, into: &mut [f32], add: bool) -> Result<f64> {
        let mut word = [0u8; 8];
        let mut header = || -> std::io::Result<(u64, u64)> {
            self.read.read_exact(&mut word)?;
            let s = u64::from_le_bytes(word);
            self.read.read_exact(&mut word)?;
            Ok((s, u64::from_le_bytes(word)))
        };
        let (s, n) = header().map_err(|e| self.lost(step, e))?;
        if s != step as u64 || n != into.len() as u64 {
            return Err(fail(format!(
                "rank {} sent step {s} with {n} values where step {step} with {} was due",
                self.rank,
                into.len()
            )));
        }
        let mut four = [0u8; 4];
        for v in into.iter_mut() {
            self.read
                .read_exact(&mut four)
                .map_err(|e| self.lost(step, e))?;
            let x = f32::from_le_bytes(four);
            *v = if add { *v + x } else { x };
        }
        self.read
            .read_exact(&mut word)
            .map_err(|e| self.lost(step, e))?;
        Ok(f64::from_le_bytes(word))
    }
}

impl Group {
    /// Joins the group of `peers`; `run` fingerprints the settings every rank must share (a rank
    /// started with other flags is refused by name).
    pub(crate) fn join(peers: &Peers, run: u64) -> Result<Self> {
        peers.validate()?;
        let deadline = Instant::now() + peers.wait;
        let address = peers
            .coordinator
            .to_socket_addrs()
            .map_err(|e| fail(format!("--coordinator {}: {e}", peers.coordinator)))?
            .next()
            .ok_or_else(|| fail(format!("--coordinator {}: no address", peers.coordinator)))?;
        let hello = |rank: usize| {
            let mut m = HELLO.to_vec();
            for w in [rank as u64, peers.nodes as u64, run] {
                m.extend(w.to_le_bytes());
            }
            m
        };
        if peers.rank == 0 {
            let listener = TcpListener::bind(address).map_err(|e| {
                fail(format!(
                    "--coordinator {}: cannot listen there ({e})",
                    peers.coordinator
                ))
            })?;
            listener
                .set_nonblocking(true)
                .map_err(|e| fail(format!("--coordinator {}: {e}", peers.coordinator)))?;
            let mut links: Vec<Option<Link>> = (1..peers.nodes).map(|_| None).collect();
            while links.iter().any(Option::is_none) {
                let stream = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() > deadline {
                            let missing: Vec<String> = links
                                .iter()
                                .enumerate()
                                .filter(|(_, l)| l.is_none())
                                .map(|(i, _)| (i + 1).to_string())
                                .collect();
                            return Err(fail(format!(
                                "rank(s) {} did not join at {} within {} s",
                                missing.join(", "),
                                peers.coordinator,
                                peers.wait.as_secs()
                            )));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    Err(e) => return Err(fail(format!("--coordinator: {e}"))),
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(peers.wait));
                let mut theirs = [0u8; 32];
                let mut s = &stream;
                if s.read_exact(&mut theirs).is_err() || &theirs[..8] != HELLO {
                    continue; // not one of ours
                }
                let word = |i: usize| {
                    u64::from_le_bytes(theirs[8 * i..8 * i + 8].try_into().unwrap_or([0; 8]))
                };
                let (rank, nodes, their_run) = (word(1) as usize, word(2) as usize, word(3));
                let answer = if nodes != peers.nodes {
                    Err(format!(
                        "rank {rank} was started with --nodes {nodes}, rank 0 with {}",
                        peers.nodes
                    ))
                } else if rank == 0 || rank >= peers.nodes || links[rank - 1].is_some() {
                    Err(format!("a second process joined as rank {rank}"))
                } else if their_run != run {
                    Err(format!(
                        "rank {rank} was started with other settings than rank 0 (model, data, \
                         batch, steps, seed, learning rate or --devices): every rank needs the \
                         same flags"
                    ))
                } else {
                    Ok(())
                };
                s.write_all(&[u8::from(answer.is_ok())])
                    .map_err(|e| fail(format!("rank {rank} left while joining: {e}")))?;
                answer.map_err(fail)?;
                let _ = stream.set_read_timeout(None);
                links[rank - 1] = Some(Link::new(stream, rank)?);
            }
            Ok(Self {
                rank: 0,
                links: links.into_iter().flatten().collect(),
            })
        } else {
            let stream = loop {
                match TcpStream::connect(address) {
                    Ok(s) => break s,
                    Err(e) if Instant::now() > deadline => {
                        return Err(fail(format!(
                            "rank {} could not reach rank 0 at {} within {} s ({e})",
                            peers.rank,
                            peers.coordinator,
                            peers.wait.as_secs()
                        )));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            };
            let mut s = &stream;
            let mut answer = [0u8; 1];
            s.write_all(&hello(peers.rank))
                .and_then(|_| s.read_exact(&mut answer))
                .map_err(|e| fail(format!("rank 0 at {}: {e}", peers.coordinator)))?;
            if answer[0] != 1 {
                return Err(fail(format!(
                    "rank 0 refused rank {}: its --nodes, --rank or settings differ (rank 0 says why)",
                    peers.rank
                )));
            }
            Ok(Self {
                rank: peers.rank,
                links: vec![Link::new(stream, 0)?],
            })
        }
    }

    /// Replaces `values` and `loss` by their sums over the ranks, added in rank order (the same
    /// bits on every rank).
    pub(crate) fn all_reduce(&mut self, step: usize, values: &mut [f32], loss: f64) -> Result<f64> {
        if self.rank == 0 {
            let mut total = loss;
            for link in &mut self.links {
                total += link.receive(step, values, true)?;
            }
            for link in &mut self.links {
                link.send(step, values, total)?;
            }
            Ok(total)
        } else {
            let link = &mut self.links[0];
            link.send(step, values, loss)?;
            link.receive(step, values, false)
        }
    }
}
