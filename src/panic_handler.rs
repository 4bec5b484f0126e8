//! Rust panics in the kernel become the kernel's `panic()`.
//!
//! Nothing unwinds into C: the kernel profile has `panic = "abort"` and this
//! handler never returns.  Paths reachable from C do not use `unwrap()` or
//! indexing that could panic; this handler exists for the impossible cases
//! (and for arithmetic checks in debug builds).

use core::panic::PanicInfo;

use crate::backend::Current;
use crate::kernel::{Kernel, PanicMsg};

/// Only the location is reported: formatting the message would link Rust's
/// formatting machinery into the kernel for a path that should never run.
#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let (file, line) = info.location().map_or(("?", 0), |l| (l.file(), l.line()));
    Current::panic(PanicMsg::Rust { file, line })
}
