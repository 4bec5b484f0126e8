//! The FFI boundary: the only place with `extern "C"`.
//!
//! * [`exports`]: the C API the kernel links against (`<sys/localcount.h>`).
//! * `kernel`: the kernel symbols this library calls (NetBSD backend only).

pub mod exports;
/// cbindgen:ignore
#[cfg(not(feature = "host"))]
pub mod kernel;
