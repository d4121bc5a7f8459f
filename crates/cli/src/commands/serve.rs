//! `diffuse serve`: the local web page (the `diffuse-serve` crate), started on the address asked
//! for; the address to open is printed on stdout once the socket listens.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Result;
use diffuse_serve::{Limits, Options, Server};

use crate::args::ServeArgs;

/// `diffuse serve`.
pub fn run(a: &ServeArgs) -> Result<()> {
    if [a.max_images, a.max_steps, a.max_size, a.max_queue].contains(&0) {
        anyhow::bail!("--max-images, --max-steps, --max-size and --max-queue must be at least 1");
    }
    let options = Options {
        address: SocketAddr::new(a.host, a.port),
        models: a.models.clone(),
        limits: Limits {
            images: a.max_images,
            steps: a.max_steps,
            size: a.max_size,
            queue: a.max_queue,
            ..Limits::default()
        },
        device: a.compute.device()?,
        device_name: a.compute.name().to_string(),
    };
    let server = Server::new(options, &mut |name| eprintln!("loading model {name}"))?;
    let address = server.address()?;
    if !a.host.is_loopback() {
        eprintln!(
            "warning: listening on {} lets other machines use this server",
            a.host
        );
    }
    let names: Vec<String> = server.models().into_iter().map(|m| m.name).collect();
    eprintln!("models: {} (on {})", names.join(", "), a.compute.name());
    let shown = if a.host.is_unspecified() {
        SocketAddr::new([127, 0, 0, 1].into(), address.port())
    } else {
        address
    };
    println!("diffuse serve: open http://{shown}/ in a browser (Ctrl-C stops the server)");
    std::io::stdout().flush()?;
    server.run()
}
