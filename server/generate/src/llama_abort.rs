//! Cancellation inside a llama.cpp decode call. llama.cpp asks an abort callback between
//! the operations of a graph (milliseconds apart even on a slow CPU), so a cancelled
//! request stops in the middle of a prefill batch or a decoded token instead of at its end.
//! `llama-cpp-2` does not wrap `llama_set_abort_callback`; the raw API is called with the
//! context's pointer, which the wrapper shows only through its `Debug` output.

use llama_cpp_2::context::LlamaContext;
use std::cell::Cell;
use std::ffi::c_void;
use std::ptr::NonNull;

/// The check llama.cpp calls while a decode runs: the request's `cancelled` closure,
/// installed only for the duration of one [`AbortHook::run`].
pub(crate) struct AbortHook {
    check: Cell<Option<NonNull<dyn Fn() -> bool>>>,
}

// SAFETY: `check` is written only by `run`, on the thread that holds the generator's state
// lock, and read by llama.cpp's first compute thread, which is that same thread (OpenMP's
// master thread, or the caller in ggml's own thread pool) while `run` waits for the decode.
unsafe impl Send for AbortHook {}

impl AbortHook {
    /// A hook with no check installed, boxed so that its address stays put.
    pub(crate) fn new() -> Box<AbortHook> {
        Box::new(AbortHook { check: Cell::new(None) })
    }

    /// Asks llama.cpp to call this hook during `ctx`'s decodes; false when the context's
    /// pointer could not be read (cancellation then waits for the end of a decode call).
    pub(crate) fn attach(self: &AbortHook, ctx: &LlamaContext) -> bool {
        let Some(raw) = raw_context(ctx) else { return false };
        let data = self as *const AbortHook as *mut c_void;
        // SAFETY: `raw` is the live context `ctx` wraps; the hook outlives the context
        // (both live in the generator, the hook declared after the context's owner).
        unsafe { llama_cpp_sys_2::llama_set_abort_callback(raw, Some(abort_requested), data) };
        true
    }

    /// Sets the threads `ctx` decodes with (llama-cpp-2 fixes them when it is created).
    pub(crate) fn set_threads(ctx: &mut LlamaContext, threads: usize) {
        if let Some(raw) = raw_context(ctx) {
            let n = threads as i32;
            // SAFETY: `raw` is the live context `ctx` wraps, borrowed mutably here.
            unsafe { llama_cpp_sys_2::llama_set_n_threads(raw, n, n) };
        }
    }

    /// Runs `f` with `cancelled` as the check; no check is installed before or after.
    pub(crate) fn run<T>(&self, cancelled: &dyn Fn() -> bool, f: impl FnOnce() -> T) -> T {
        struct Clear<'a>(&'a Cell<Option<NonNull<dyn Fn() -> bool>>>);
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                self.0.set(None);
            }
        }
        // SAFETY: only the lifetime is erased; `Clear` removes the pointer before
        // `cancelled`'s borrow ends, whether `f` returns or unwinds.
        let check: NonNull<dyn Fn() -> bool> = unsafe {
            std::mem::transmute::<NonNull<dyn Fn() -> bool + '_>, NonNull<dyn Fn() -> bool>>(
                NonNull::from(cancelled),
            )
        };
        self.check.set(Some(check));
        let _clear = Clear(&self.check);
        f()
    }
}

extern "C" fn abort_requested(data: *mut c_void) -> bool {
    // SAFETY: `data` is the boxed hook `attach` registered, alive as long as the context.
    let hook = unsafe { &*(data as *const AbortHook) };
    match hook.check.get() {
        // SAFETY: set only while `run` holds the closure's borrow.
        Some(check) => unsafe { check.as_ref()() },
        None => false,
    }
}

/// The `llama_context` pointer a [`LlamaContext`] wraps, read from its `Debug` output
/// (`LlamaContext { context: 0x… }`, pinned with the crate's exact version).
pub(crate) fn raw_context(ctx: &LlamaContext) -> Option<*mut llama_cpp_sys_2::llama_context> {
    let shown = format!("{ctx:?}");
    let hex = shown.split("context: 0x").nth(1)?;
    let hex: String = hex.chars().take_while(char::is_ascii_hexdigit).collect();
    let address = usize::from_str_radix(&hex, 16).ok().filter(|a| *a != 0)?;
    Some(address as *mut llama_cpp_sys_2::llama_context)
}
