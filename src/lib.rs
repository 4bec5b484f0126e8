//! NetBSD localcount(9) in Rust, with the devsw/autoconf reference-acquire
//! layer built on it.
//!
//! This crate is a drop-in replacement for `sys/kern/subr_localcount.c`: a
//! `no_std` library with exactly the C ABI of NetBSD-current
//! (`<sys/localcount.h>`), built as one relocatable object that a NetBSD
//! kernel links instead of the C implementation (`options RUST_LOCALCOUNT`).
//!
//! # Layers
//!
//! Each layer builds only on the layers to its left (`cargo doc --open
//! --features host` starts here):
//!
//! ```text
//!   sys        ->  kernel    ->  localcount, devsw,  ->  ffi::exports
//!   C mirrors      traits        autoconf                the C API
//!                  (+ diag)      algorithms              (extern "C")
//!                    |
//!                    +-- implemented by backend::netbsd (over sys::imports)
//!                        and backend::host (std threads, feature `host`);
//!                        ffi::exports runs the algorithms on
//!                        backend::Current, the backend of the build
//! ```
//!
//! * [`sys`] -- what the C side looks like to Rust, with no logic: `struct
//!   localcount`, `struct bdevsw`/`struct cdevsw` with `d_localcount`, the
//!   opaque `struct device`, `struct cfdriver`, `struct kmutex`, `struct
//!   kcondvar`, `struct percpu`, `dev_t`; on kernel builds also the kernel
//!   functions and globals the library calls (`sys::imports`, the one place
//!   that imports a kernel symbol).
//! * [`kernel`] -- the [`kernel::Kernel`] trait: the few primitives the
//!   protocol needs (percpu(9), kpreempt, spl, xcall(9), mutex(9),
//!   condvar(9), panic), plus [`kernel::DevswKernel`] and
//!   [`kernel::AutoconfKernel`] for the reference layer, and RAII guards.
//!   [`diag`] holds the `KASSERT`-style checks and the kernel's panic
//!   messages on top of it.
//! * [`localcount`] -- the localcount(9) protocol (acquire, release, drain),
//!   written once, generic over [`kernel::Kernel`].
//! * [`devsw`], [`autoconf`] -- the seed's reference-acquire layer on top of
//!   localcount(9): `bdevsw_lookup_acquire`/`cdevsw_lookup_acquire` and
//!   their releases, `device_lookup_acquire` and friends, written once
//!   against [`kernel::DevswKernel`] and [`kernel::AutoconfKernel`].
//! * [`ffi::exports`] -- every `extern "C"` function the kernel calls.  Each
//!   one turns raw pointers into references (the only place that does) and
//!   calls the algorithms with [`backend::Current`].  Nothing in the crate
//!   calls it; the panic handler of kernel builds sits beside it.
//! * [`backend`] -- implementations of the kernel traits: the real NetBSD
//!   kernel (kernel builds only) and, behind the `host` feature, a
//!   std-backed simulation of a multiprocessor kernel for the tests.  A
//!   backend uses [`sys`] and [`kernel`], never [`ffi`].  The host backend
//!   also simulates the kernel's own C code that uses the library
//!   (`devsw_attach`/`devsw_detach` of `subr_devsw.c`, `config_*` of
//!   `subr_autoconf.c`); like that C code it calls localcount(9) and the
//!   reference layer, but directly through the algorithms, not through the
//!   C exports.  Code that drives the exports as the kernel does (e.g.
//!   `cdev_open`) is test scaffolding, in `tests/common`.
#![cfg_attr(not(feature = "host"), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

// The layers, bottom up (cbindgen emits the header's constants in this
// order too: sys::conf's, kernel's, localcount's).
pub mod sys;
// The traits over the kernel, and KASSERT on top of them.
pub mod kernel;
#[macro_use]
pub mod diag;
// The algorithms: localcount(9) ...
pub mod localcount;
// ... and the reference layer built on it.
pub mod autoconf;
pub mod devsw;
// The C API.
pub mod ffi;
// The implementations of the kernel traits.
pub mod backend;

pub use sys::localcount::LocalCount;

#[cfg(all(not(feature = "host"), not(test)))]
mod panic_handler;
