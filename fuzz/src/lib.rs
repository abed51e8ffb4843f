//! What every fuzz target does before its body ([`fuzzcheck`] holds the bodies).
//!
//! The daemon decodes a call on a tokio worker, whose stack is 2 MiB; libFuzzer runs the
//! target on the main thread, whose stack is `ulimit -s` (8 MiB by default), deep enough to
//! hide the 4,000-level nesting that overflows a worker (issue 9). `fuzz/run` therefore
//! starts the fuzzer under `ulimit -s 2048`. An overflow is then a SIGSEGV on the guard
//! page, and both libFuzzer's handler and the default action would run on the exhausted
//! stack and die silently, leaving no artifact. So `fuzz/run` passes `-handle_segv=0` and
//! [`worker_stack_overflow_is_a_crash`] installs a handler on an alternate stack that
//! aborts: libFuzzer's SIGABRT handler, running on that alternate stack, records the
//! input as a crash.

use std::sync::Once;

const ALT_STACK: usize = 1 << 20;

extern "C" fn on_segv(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let msg = b"\n==fuzz== SIGSEGV: most likely a stack overflow (fuzz/run limits the stack to \
the daemon's 2 MiB worker stack)\n";
    // SAFETY: write(2) and abort(3) are async-signal-safe.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::abort();
    }
}

/// Makes a SIGSEGV (a stack overflow: there is no other unsafe code in the fuzzed crates)
/// abort, so that libFuzzer records the input. Called at the start of every input; the
/// work is done once.
pub fn worker_stack_overflow_is_a_crash() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let stack: &'static mut [u8] = Box::leak(vec![0u8; ALT_STACK].into_boxed_slice());
        // SAFETY: the alternate stack is leaked, so it outlives the thread; the handler
        // only calls async-signal-safe functions.
        unsafe {
            let ss = libc::stack_t {
                ss_sp: stack.as_mut_ptr().cast(),
                ss_flags: 0,
                ss_size: ALT_STACK,
            };
            libc::sigaltstack(&ss, std::ptr::null_mut());
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_segv as extern "C" fn(_, _, _) as usize;
            sa.sa_flags = libc::SA_ONSTACK | libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut());
        }
    });
}
