//! [`PanicMsg`]: every message the library panics with.

use core::ffi::c_void;
use core::fmt;

/// Every message this library panics with, as data: the NetBSD backend
/// hands it to the kernel's `panic()` as a printf format and arguments (so
/// the kernel object carries no Rust formatting machinery), the host
/// backend formats it with [`fmt::Display`].  The texts are NetBSD's.
#[derive(Clone, Copy, Debug)]
pub enum PanicMsg<'a> {
    /// `KASSERT(expr)` / `KASSERTMSG(expr, ...)` failed:
    /// `kernel diagnostic assertion "EXPR" failed: file "FILE", line N DETAIL`.
    Assertion {
        /// The C expression, as NetBSD's source writes it.
        expr: &'static str,
        /// Source file of the check.
        file: &'static str,
        /// Source line of the check.
        line: u32,
        /// The KASSERTMSG message, if any.
        detail: Option<&'a PanicMsg<'a>>,
    },
    /// A fixed text, e.g. `counter overflow`.
    Text(&'static str),
    /// `FUNCTION: NULL ARGUMENT`.
    NullArgument(&'static str, &'static str),
    /// `localcount %p is not initialized`.
    NotInitialized(*const c_void),
    /// `localcount_release: localcount %p released after drain`.
    ReleasedAfterDrain(*const c_void),
    /// `negatively referenced localcount: %p, %lld`.
    NegativeTotal(*const c_void, i64),
    /// A device's name (NUL-terminated `device_xname`), as in
    /// `KASSERTMSG(!dv->dv_detach_done, "%s", device_xname(dv))`.
    DeviceName(*const core::ffi::c_char),
    /// `FUNCTION: device %p has no localcount`.
    NoLocalcount(&'static str, *const c_void),
    /// `device_lookup_private_acquire: %s has no softc`.
    NoSoftc(*const core::ffi::c_char),
    /// A Rust panic (a bug in this library) at FILE:LINE.
    Rust {
        /// Source file.
        file: &'a str,
        /// Source line.
        line: u32,
    },
}

impl fmt::Display for PanicMsg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PanicMsg::Assertion {
                expr,
                file,
                line,
                detail,
            } => {
                write!(
                    f,
                    "kernel diagnostic assertion \"{expr}\" failed: file \"{file}\", line {line} "
                )?;
                match detail {
                    Some(d) => write!(f, "{d}"),
                    None => Ok(()),
                }
            }
            PanicMsg::Text(s) => f.write_str(s),
            PanicMsg::NullArgument(func, arg) => write!(f, "{func}: NULL {arg}"),
            PanicMsg::NotInitialized(p) => write!(f, "localcount {p:p} is not initialized"),
            PanicMsg::ReleasedAfterDrain(p) => {
                write!(
                    f,
                    "localcount_release: localcount {p:p} released after drain"
                )
            }
            PanicMsg::NegativeTotal(p, t) => {
                write!(f, "negatively referenced localcount: {p:p}, {t}")
            }
            PanicMsg::DeviceName(name) => write_c_str(f, name),
            PanicMsg::NoLocalcount(func, dv) => {
                write!(f, "{func}: device {dv:p} has no localcount")
            }
            PanicMsg::NoSoftc(name) => {
                f.write_str("device_lookup_private_acquire: ")?;
                write_c_str(f, name)?;
                f.write_str(" has no softc")
            }
            PanicMsg::Rust { file, line } => {
                write!(f, "rust_localcount: Rust panic at {file}:{line}")
            }
        }
    }
}

/// Write a NUL-terminated C string (a device name) like printf's `%s`.
fn write_c_str(f: &mut fmt::Formatter<'_>, s: *const core::ffi::c_char) -> fmt::Result {
    if s.is_null() {
        return f.write_str("(null)");
    }
    // SAFETY: PanicMsg's C strings are device names, NUL-terminated and
    // alive while the message is formatted (the device is live).
    let bytes = unsafe { core::ffi::CStr::from_ptr(s) }.to_bytes();
    match core::str::from_utf8(bytes) {
        Ok(t) => f.write_str(t),
        Err(_) => f.write_str("(non-UTF-8 name)"),
    }
}
