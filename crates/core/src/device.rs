//! The one place where the compute device is chosen.
//!
//! burn 0.22 chooses its backend at run time through a `Device`. diffuse computes on burn-flex
//! (pure Rust, CPU) unless it is built with the `cuda` or `wgpu` feature, in which case runs use
//! the first GPU. The exact denoisers compute in f64 on the CPU whatever the device and hand back
//! tensors on it.

use burn::tensor::Device;

/// The CPU device (burn-flex, pure Rust).
pub fn cpu() -> Device {
    Device::flex()
}

/// The device runs compute on: the GPU when built with `cuda` or `wgpu`, else the CPU.
pub fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    {
        Device::cuda(0usize)
    }
    #[cfg(all(feature = "wgpu", not(feature = "cuda")))]
    {
        Device::wgpu(burn::tensor::DeviceKind::default())
    }
    #[cfg(not(any(feature = "cuda", feature = "wgpu")))]
    {
        cpu()
    }
}
