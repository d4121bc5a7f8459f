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

/// The 8 x 8 transpose of eight AVX vectors: lane `k` of output `p` is lane `p` of input `k`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
#[inline]
pub(crate) fn transpose8(r: [std::arch::x86_64::__m256; 8]) -> [std::arch::x86_64::__m256; 8] {
    use std::arch::x86_64::*;
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    // s[k] (u[k]) holds lanes k and k + 4 of inputs 0..4 (4..8) in its low and high halves.
    let s = [
        _mm256_shuffle_ps::<0x44>(t0, t2),
        _mm256_shuffle_ps::<0xEE>(t0, t2),
        _mm256_shuffle_ps::<0x44>(t1, t3),
        _mm256_shuffle_ps::<0xEE>(t1, t3),
    ];
    let u = [
        _mm256_shuffle_ps::<0x44>(t4, t6),
        _mm256_shuffle_ps::<0xEE>(t4, t6),
        _mm256_shuffle_ps::<0x44>(t5, t7),
        _mm256_shuffle_ps::<0xEE>(t5, t7),
    ];
    [
        _mm256_permute2f128_ps::<0x20>(s[0], u[0]),
        _mm256_permute2f128_ps::<0x20>(s[1], u[1]),
        _mm256_permute2f128_ps::<0x20>(s[2], u[2]),
        _mm256_permute2f128_ps::<0x20>(s[3], u[3]),
        _mm256_permute2f128_ps::<0x31>(s[0], u[0]),
        _mm256_permute2f128_ps::<0x31>(s[1], u[1]),
        _mm256_permute2f128_ps::<0x31>(s[2], u[2]),
        _mm256_permute2f128_ps::<0x31>(s[3], u[3]),
    ]
}
