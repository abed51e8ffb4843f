//! How the daemon's heap is kept small: glibc's malloc, told not to hold on to memory.
//!
//! Two habits of glibc's allocator keep memory resident that the daemon no longer uses:
//! - After the first large block (reading the host, a long device list) is freed, malloc
//!   raises its threshold for serving blocks from their own mapping, up to 32 MiB. Every
//!   later list reply then comes from the heap and leaves a hole there when it is freed:
//!   eight clients listing 10,000 devices left 2.4 MiB of holes.
//! - It only gives back what is free at the top of a heap, never the holes in between.
//!
//! Neither is worth a different allocator: a fixed threshold and a trim after each whole
//! reading of the host are enough (`bench/run` reports the resident set).

/// Blocks from this size up get their own mapping, given back when freed (glibc's
/// starting value, kept from rising).
const MMAP_THRESHOLD: i32 = 128 << 10;

/// Sets the allocator's thresholds; called once, early in start-up.
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets the allocator's parameters, under its own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Returns the heap's free pages to the kernel. Reading the host leaves holes between the
/// devices kept: what the enumeration threads and the old device set used.
pub fn give_back_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks and releases the allocator's own free chunks.
    unsafe {
        libc::malloc_trim(0);
    }
}
