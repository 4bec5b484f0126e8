//! The C side, mirrored: the kernel's types and the kernel symbols the
//! library uses, with no logic of their own -- what Rust-for-Linux's
//! `bindings` crate is to its `kernel` crate.  Everything above builds on
//! these definitions; nothing here imports from the rest of the crate.
//!
//! * [`types`] -- the opaque kernel types (`struct kmutex`, `struct
//!   kcondvar`, `struct percpu`, `struct device`, `struct cfdriver`,
//!   `struct lwp`), `xcfunc_t`, and `dev_t` with `major()`, `minor()`,
//!   `makedev()`.
//! * [`localcount`] -- `<sys/localcount.h>`: `struct localcount`, whose
//!   layout is ABI.
//! * [`conf`] -- `<sys/conf.h>`: `struct bdevsw` and `struct cdevsw` with
//!   the seed's `d_localcount`, and the devsw tables' `struct devswref`.
//! * `imports` -- the kernel functions and globals the NetBSD backend calls
//!   (kernel builds only, so it is not in the documentation of a `host`
//!   build): the one place that imports a kernel symbol.

pub mod conf;
/// cbindgen:ignore
#[cfg(not(feature = "host"))]
pub mod imports;
pub mod localcount;
pub mod types;
