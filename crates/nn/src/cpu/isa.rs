//! Element-wise loops compiled for the widest vector instructions the CPU has. The loops are
//! written as plain Rust over slices; the baseline x86-64 target only has SSE2, so each is run
//! through [`widest`], which calls it from a function compiled for AVX-512 or AVX2 and lets LLVM
//! vectorise it at that width. Without fused multiply-add or reassociation the operations stay
//! the same, in the same order, so the bits do not depend on the CPU.

/// `f()`, inlined into a function compiled for AVX-512F where the CPU has it, else AVX2, else
/// the baseline. `f` must be an `#[inline(always)]` closure over `#[inline(always)]` code: LLVM
/// vectorises only what it inlines into the function compiled for the wider instructions.
#[inline(always)]
pub(crate) fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has just been asked for AVX-512F.
            return unsafe { avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has just been asked for AVX2.
            return unsafe { avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
