//! The one place where the compute device is chosen.

use burn::tensor::Device;

/// The CPU device (burn-flex, pure Rust).
pub fn cpu() -> Device {
    Device::flex()
}
