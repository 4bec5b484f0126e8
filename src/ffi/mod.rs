//! The C API: every `extern "C"` function and global that the library
//! exports (`<sys/localcount.h>`), in [`exports`].  It is the top layer:
//! nothing else in the crate calls it.  (What the library imports from the
//! kernel is declared in `crate::sys::imports`.)

pub mod exports;
