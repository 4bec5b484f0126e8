//! Diagnostics: `KASSERT`-style checks with NetBSD's messages.
//!
//! NetBSD's `KASSERT(e)` panics with
//! `kernel diagnostic assertion "e" failed: file "F", line L` when the kernel
//! is built with `options DIAGNOSTIC`; `KASSERTMSG(e, fmt, ...)` appends the
//! formatted message.  The macros here produce the same text (with the C
//! expression as written in `subr_localcount.c`, so that a panic reads the
//! same whichever implementation is linked) and are compiled in only with the
//! `diagnostic` feature, the mirror of `options DIAGNOSTIC`.

use crate::kernel::{Kernel, PanicMsg};

/// Whether `KASSERT`s are compiled in (`options DIAGNOSTIC`).
pub const DIAGNOSTIC: bool = cfg!(feature = "diagnostic");

/// Whether the `DEBUG && LOCKDEBUG` reference counter `lc_refcnt` is kept.
pub const LC_DEBUG: bool = cfg!(feature = "lc-debug");

/// Panic with NetBSD's diagnostic-assertion message.
#[cold]
#[inline(never)]
pub fn assertion_failed<K: Kernel>(
    expr: &'static str,
    file: &'static str,
    line: u32,
    detail: Option<&PanicMsg<'_>>,
) -> ! {
    K::panic(PanicMsg::Assertion {
        expr,
        file,
        line,
        detail,
    })
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

/// `KASSERTMSG(cond, msg)`, `msg` a [`PanicMsg`].
#[macro_export]
#[doc(hidden)]
macro_rules! kassertmsg {
    ($k:ty, $cond:expr, $text:literal, $msg:expr) => {
        if $crate::diag::DIAGNOSTIC && !($cond) {
            $crate::diag::assertion_failed::<$k>($text, file!(), line!(), Some(&$msg))
        }
    };
}
