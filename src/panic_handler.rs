//! Rust panics in the kernel become the kernel's `panic()`.
//!
//! Nothing unwinds into C: the kernel profile has `panic = "abort"` and this
//! handler never returns.  Paths reachable from C do not use `unwrap()` or
//! indexing that could panic; this handler exists for the impossible cases
//! (and for arithmetic checks in debug builds).

use core::panic::PanicInfo;

use crate::backend::Current;
use crate::kernel::Kernel;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    match info.location() {
        Some(loc) => Current::panic(format_args!(
            "rust_localcount: {} at {}:{}",
            info.message(),
            loc.file(),
            loc.line()
        )),
        None => Current::panic(format_args!("rust_localcount: {}", info.message())),
    }
}
