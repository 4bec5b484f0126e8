//! Diagnostics: `KASSERT`-style checks with NetBSD's messages.
//!
//! NetBSD's `KASSERT(e)` panics with
//! `kernel diagnostic assertion "e" failed: file "F", line L` when the kernel
//! is built with `options DIAGNOSTIC`; `KASSERTMSG(e, fmt, ...)` appends the
//! formatted message.  The macros here produce the same text (with the C
//! expression as written in `subr_localcount.c`, so that a panic reads the
//! same whichever implementation is linked) and are compiled in only with the
//! `diagnostic` feature, the mirror of `options DIAGNOSTIC`.

use core::fmt;

use crate::kernel::Kernel;

/// Whether `KASSERT`s are compiled in (`options DIAGNOSTIC`).
pub const DIAGNOSTIC: bool = cfg!(feature = "diagnostic");

/// Whether the `DEBUG && LOCKDEBUG` reference counter `lc_refcnt` is kept.
pub const LC_DEBUG: bool = cfg!(feature = "lc-debug");

/// Panic with NetBSD's diagnostic-assertion message.
#[cold]
#[inline(never)]
pub fn assertion_failed<K: Kernel>(
    expr: &str,
    file: &str,
    line: u32,
    msg: Option<fmt::Arguments<'_>>,
) -> ! {
    match msg {
        Some(m) => K::panic(format_args!(
            "kernel diagnostic assertion \"{expr}\" failed: file \"{file}\", line {line} {m}"
        )),
        None => K::panic(format_args!(
            "kernel diagnostic assertion \"{expr}\" failed: file \"{file}\", line {line} "
        )),
    }
}

/// `KASSERT(cond)`: `kassert!(K, cond, "C expression text")`.
#[macro_export]
#[doc(hidden)]
macro_rules! kassert {
    ($k:ty, $cond:expr, $text:literal) => {
        if $crate::diag::DIAGNOSTIC && !($cond) {
            $crate::diag::assertion_failed::<$k>($text, file!(), line!(), None)
        }
    };
}

/// `KASSERTMSG(cond, fmt, ...)`.
#[macro_export]
#[doc(hidden)]
macro_rules! kassertmsg {
    ($k:ty, $cond:expr, $text:literal, $($fmt:tt)+) => {
        if $crate::diag::DIAGNOSTIC && !($cond) {
            $crate::diag::assertion_failed::<$k>(
                $text, file!(), line!(), Some(format_args!($($fmt)+)))
        }
    };
}
