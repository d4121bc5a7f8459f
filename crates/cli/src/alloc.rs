//! The allocator setting that large-batch sampling needs.
//!
//! glibc serves allocations above a dynamic threshold (128 KiB at first, at most 32 MiB) with a
//! fresh mmap and returns them with munmap, so every 10,000 x 256 activation (10 MB) of a
//! sampling step is page-faulted in anew and zeroed by the kernel. Measured on 2 cores
//! (`diffuse bench`, 10,000 points x 1000 DDPM steps): 48 s with glibc's defaults, 25 s with freed
//! memory kept in the heap. Keeping it costs at most the largest working set, which is freed
//! memory the process would ask for again at the next step anyway.

/// Asks glibc to keep freed memory for reuse instead of returning it to the kernel.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any other thread
    // exists, and its failure (a return value of 0) leaves glibc's defaults in place.
    unsafe {
        // The largest threshold glibc accepts on 64-bit targets (32 MiB).
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * 1024 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
