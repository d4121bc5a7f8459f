//! The one place where the compute device is chosen.
//!
//! burn 0.22 chooses its backend at run time through a `Device`. diffuse computes on burn-flex
//! (pure Rust, CPU) unless it is built with the `cuda` or `wgpu` feature, in which case runs use
//! the first GPU unless told otherwise (`--device`). The exact denoisers compute in f64 on the
//! CPU whatever the device and hand back tensors on it.

use burn::tensor::Device;

use crate::error::{Result, invalid};

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

/// How `--device` spells [`default_device`]: what `auto` means in this build.
pub fn default_name() -> &'static str {
    if cfg!(feature = "cuda") {
        "cuda:0"
    } else if cfg!(feature = "wgpu") {
        "wgpu"
    } else {
        "cpu"
    }
}

/// The devices this build can run on, as `--device` spells them.
pub fn built_in() -> &'static str {
    match (cfg!(feature = "cuda"), cfg!(feature = "wgpu")) {
        (true, true) => "cpu, wgpu, wgpu:N, cuda, cuda:N",
        (true, false) => "cpu, cuda, cuda:N",
        (false, true) => "cpu, wgpu, wgpu:N",
        (false, false) => "cpu",
    }
}

/// The device `--device` names: `auto` (the best built in, [`default_device`]), `cpu`, `wgpu`
/// (wgpu's default adapter), `wgpu:N` (the N-th discrete GPU), `cuda` or `cuda:N`. A backend this
/// build lacks is refused with the feature that adds it.
pub fn parse(spec: &str) -> Result<Device> {
    let (kind, index) = match spec.split_once(':') {
        Some((k, i)) => match i.parse::<usize>() {
            Ok(i) => (k, Some(i)),
            Err(_) => {
                return invalid(format!(
                    "--device {spec}: the index after ':' must be a number (one of: {})",
                    built_in()
                ));
            }
        },
        None => (spec, None),
    };
    let missing = |feature: &str| {
        invalid(format!(
            "--device {spec}: this diffuse was built without the {feature} backend (build with \
             `cargo build --release -p diffuse-cli --features {feature}`; this build runs on: {})",
            built_in()
        ))
    };
    match (kind, index) {
        ("auto", None) => Ok(default_device()),
        ("cpu", None) => Ok(cpu()),
        ("wgpu", _) if !cfg!(feature = "wgpu") => missing("wgpu"),
        ("cuda", _) if !cfg!(feature = "cuda") => missing("cuda"),
        #[cfg(feature = "wgpu")]
        ("wgpu", None) => Ok(Device::wgpu(burn::tensor::DeviceKind::default())),
        #[cfg(feature = "wgpu")]
        ("wgpu", Some(i)) => Ok(Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i))),
        #[cfg(feature = "cuda")]
        ("cuda", i) => Ok(Device::cuda(i.unwrap_or(0))),
        _ => invalid(format!(
            "--device {spec}: not a device (one of: auto, {})",
            built_in()
        )),
    }
}

/// `n` devices of the kind `spec` names, for data parallelism: the CPU, or wgpu's default
/// adapter, `n` times (their shares of a batch are then computed side by side on the one
/// device, which checks the arithmetic without a second one); `kind:i` gives `kind:i` to
/// `kind:i+n-1`; `cuda` counts from `cuda:0`.
pub fn several(spec: &str, n: usize) -> Result<Vec<Device>> {
    if n == 0 {
        return invalid("--devices must be at least 1");
    }
    let spec = if spec == "auto" { default_name() } else { spec };
    match spec.split_once(':') {
        Some((kind, i)) => {
            let first: usize = match i.parse() {
                Ok(i) => i,
                Err(_) => return parse(spec).map(|d| vec![d]),
            };
            (first..first + n)
                .map(|k| parse(&format!("{kind}:{k}")))
                .collect()
        }
        None if spec == "cuda" => several("cuda:0", n),
        None => {
            let d = parse(spec)?;
            Ok(vec![d; n])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_and_auto_always_parse() {
        assert_eq!(parse("cpu").unwrap(), cpu());
        assert_eq!(parse("auto").unwrap(), default_device());
        assert_eq!(parse(default_name()).unwrap(), default_device());
    }

    #[test]
    fn several_devices_count_from_the_index_named() {
        assert_eq!(several("cpu", 3).unwrap(), vec![cpu(); 3]);
        assert_eq!(several("auto", 2).unwrap(), vec![default_device(); 2]);
        assert!(several("cpu:1", 2).is_err());
        if cfg!(feature = "cuda") {
            assert_eq!(
                several("cuda:1", 2).unwrap(),
                vec![parse("cuda:1").unwrap(), parse("cuda:2").unwrap()]
            );
        }
    }

    #[test]
    fn what_is_not_a_device_or_not_built_in_is_refused_by_name() {
        for bad in ["gpu", "cpu:1", "cuda:x", ""] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("--device {bad}")), "{e}");
        }
        assert!(several("cpu", 0).is_err());
        if !cfg!(feature = "wgpu") {
            let e = parse("wgpu").unwrap_err().to_string();
            assert!(e.contains("--features wgpu"), "{e}");
        }
        if !cfg!(feature = "cuda") {
            let e = parse("cuda:1").unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
    }
}
