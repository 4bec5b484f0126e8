//! Implementations of [`crate::kernel::Kernel`] (and of
//! [`crate::kernel::DevswKernel`] and [`crate::kernel::AutoconfKernel`]).
//! A backend builds on [`crate::sys`] and [`crate::kernel`]; the host
//! simulation of the kernel's own C code that uses the library
//! (`devsw_attach`, `config_*`) also calls the algorithms, as that C code
//! does.  No backend calls the C exports (the `ffi` module).
//!
//! * `netbsd`: the real kernel, through `crate::sys::imports` (kernel
//!   builds only: not in the documentation of a `host` build).
//! * `host` (feature `host`): a simulated multiprocessor kernel on std
//!   threads, for the tests.
//!
//! [`Current`] is the backend the exported C functions use.

#[cfg(feature = "host")]
pub mod host;
#[cfg(not(feature = "host"))]
pub mod netbsd;

/// The backend behind the exported C functions.
#[cfg(feature = "host")]
pub type Current = host::Host;
/// The backend behind the exported C functions.
#[cfg(not(feature = "host"))]
pub type Current = netbsd::NetBSD;
