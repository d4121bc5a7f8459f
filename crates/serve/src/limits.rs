//! What one request may ask of the server, so that no request can exhaust its memory or hold
//! its queue for hours. The defaults suit a laptop; `diffuse serve` takes others.

/// The server's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Images of our image models per request (all classes together).
    pub images: usize,
    /// Points of our point models per request.
    pub points: usize,
    /// Stable Diffusion images per request.
    pub sd_images: usize,
    /// Denoiser evaluations (or Stable Diffusion steps) per request, and steps of an experiment.
    pub steps: usize,
    /// Stable Diffusion image side, pixels.
    pub size: usize,
    /// Requests waiting in one model's queue.
    pub queue: usize,
    /// Characters of a prompt or label.
    pub prompt_chars: usize,
    /// Chains (or samples) of an experiment page.
    pub chains: usize,
    /// Chains times steps of an experiment (its work).
    pub work: usize,
    /// Finished requests kept for the gallery (the oldest go first).
    pub kept: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            images: 64,
            points: 20_000,
            sd_images: 4,
            steps: 1000,
            size: 1024,
            queue: 16,
            prompt_chars: 2000,
            chains: 20_000,
            work: 20_000_000,
            kept: 100,
        }
    }
}
