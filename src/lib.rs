//! NetBSD localcount(9) in Rust, with the devsw/autoconf reference-acquire
//! layer built on it.
//!
//! This crate is a drop-in replacement for `sys/kern/subr_localcount.c`: a
//! `no_std` library with exactly the C ABI of NetBSD-current
//! (`<sys/localcount.h>`), built as one relocatable object that a NetBSD
//! kernel links instead of the C implementation (`options RUST_LOCALCOUNT`).
//!
//! How to read it, from the C call to the algorithm:
//!
//! * [`ffi::exports`] -- every `extern "C"` function the kernel calls.  Each
//!   one turns raw pointers into references (the only place that does) and
//!   calls the protocol.
//! * [`localcount`] -- the localcount(9) protocol (acquire, release, drain),
//!   written once, generic over the kernel primitives.
//! * [`sys`] -- the C mirrors: the opaque kernel types, `struct
//!   localcount`, `struct bdevsw`/`struct cdevsw`, and (kernel builds) the
//!   kernel symbols the library imports.
//! * [`kernel`] -- the [`kernel::Kernel`] trait: the few primitives the
//!   protocol needs (percpu(9), kpreempt, spl, xcall(9), mutex(9),
//!   condvar(9), panic), plus RAII guards over them.
//! * [`backend`] -- implementations of [`kernel::Kernel`]: the real NetBSD
//!   kernel (through `sys::imports`, kernel builds only: the one place
//!   that imports kernel symbols) and, behind the `host` feature, a std-backed
//!   simulation of a multiprocessor kernel used by the tests.
//! * [`devsw`], [`autoconf`] -- the seed's reference-acquire layer on top of
//!   localcount(9): `bdevsw_lookup_acquire`/`cdevsw_lookup_acquire` and
//!   their releases, `device_lookup_acquire` and friends, written once
//!   against [`kernel::DevswKernel`] and [`kernel::AutoconfKernel`].
//! * [`diag`] -- `KASSERT`-style checks and the kernel's panic messages.
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
