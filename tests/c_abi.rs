//! The generated header, compiled as C with the kernel's warning flags (by
//! build.rs, plain and with -DDEBUG -DLOCKDEBUG), against Rust's layout, and
//! the exports called from C.
#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use std::mem::{align_of, offset_of, size_of};

use common::Obj;
use rust_localcount::backend::host::Machine;
use rust_localcount::sys::types::{kcondvar, kmutex};
use rust_localcount::LocalCount;

mod plain {
    use super::*;
    #[link(name = "lcabi", kind = "static")]
    extern "C" {
        #[link_name = "abi_sizeof_localcount"]
        pub fn sizeof_localcount() -> usize;
        #[link_name = "abi_alignof_localcount"]
        pub fn alignof_localcount() -> usize;
        #[link_name = "abi_offsetof_totalp"]
        pub fn offsetof_totalp() -> usize;
        #[link_name = "abi_offsetof_percpu"]
        pub fn offsetof_percpu() -> usize;
        #[link_name = "abi_offsetof_refcnt"]
        pub fn offsetof_refcnt() -> usize;
        #[link_name = "abi_debug_refcnt_macro"]
        pub fn debug_refcnt_macro() -> u32;
        #[link_name = "abi_acquire_release"]
        pub fn acquire_release(
            lc: *mut LocalCount,
            cv: *mut kcondvar,
            m: *mut kmutex,
            nacq: i32,
            nrel: i32,
        ) -> u32;
        #[link_name = "abi_drain_fini"]
        pub fn drain_fini(lc: *mut LocalCount, cv: *mut kcondvar, m: *mut kmutex);
    }
}

mod debug {
    #[link(name = "lcabi_debug", kind = "static")]
    extern "C" {
        #[link_name = "abi_debug_sizeof_localcount"]
        pub fn sizeof_localcount() -> usize;
        #[link_name = "abi_debug_alignof_localcount"]
        pub fn alignof_localcount() -> usize;
        #[link_name = "abi_debug_offsetof_totalp"]
        pub fn offsetof_totalp() -> usize;
        #[link_name = "abi_debug_offsetof_percpu"]
        pub fn offsetof_percpu() -> usize;
        #[link_name = "abi_debug_offsetof_refcnt"]
        pub fn offsetof_refcnt() -> usize;
        #[link_name = "abi_debug_debug_refcnt_macro"]
        pub fn debug_refcnt_macro() -> u32;
    }
}

#[test]
fn layout_matches_c_plain_and_debug() {
    let rust = (
        size_of::<LocalCount>(),
        align_of::<LocalCount>(),
        offset_of!(LocalCount, lc_totalp),
        offset_of!(LocalCount, lc_percpu),
        offset_of!(LocalCount, lc_refcnt),
    );
    assert_eq!(rust, (24, 8, 0, 8, 16), "LP64 layout of struct localcount");
    // SAFETY: pure functions returning constants.
    let c_plain = unsafe {
        (
            plain::sizeof_localcount(),
            plain::alignof_localcount(),
            plain::offsetof_totalp(),
            plain::offsetof_percpu(),
            plain::offsetof_refcnt(),
        )
    };
    // SAFETY: as above.
    let c_debug = unsafe {
        (
            debug::sizeof_localcount(),
            debug::alignof_localcount(),
            debug::offsetof_totalp(),
            debug::offsetof_percpu(),
            debug::offsetof_refcnt(),
        )
    };
    assert_eq!(c_plain, rust, "C (no DEBUG) vs Rust");
    assert_eq!(c_debug, rust, "C (DEBUG LOCKDEBUG) vs Rust");
}

#[test]
fn header_mirrors_debug_feature() {
    // SAFETY: pure functions returning constants.
    let (p, d) = unsafe { (plain::debug_refcnt_macro(), debug::debug_refcnt_macro()) };
    assert_eq!(p, 0, "LOCALCOUNT_DEBUG_REFCNT without DEBUG && LOCKDEBUG");
    assert_eq!(d, 1, "LOCALCOUNT_DEBUG_REFCNT with DEBUG && LOCKDEBUG");
    assert_eq!(
        rust_localcount::localcount::LOCALCOUNT_DEBUG_REFCNT,
        u32::from(cfg!(feature = "lc-debug"))
    );
}

#[test]
fn every_export_called_from_c() {
    let m = Machine::new(3);
    let o = Obj::new();
    m.lwp(0, || {
        // SAFETY: host mutex/condvar and a zeroed localcount, as C would
        // pass them.
        let n =
            // SAFETY: host-kernel objects that outlive the call, used as the
            // localcount(9) contract requires (initialized, references held).
            unsafe { plain::acquire_release(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex(), 9, 4) };
        assert_eq!(n, if cfg!(feature = "lc-debug") { 5 } else { 0 });
        // Release the remaining five from Rust on another CPU.
        rust_localcount::backend::host::migrate_to(2);
        for _ in 0..5 {
            // SAFETY: initialized, references held.
            unsafe {
                rust_localcount::ffi::exports::localcount_release(
                    o.lcp(),
                    o.cv.as_kcondvar(),
                    o.mtx.as_kmutex(),
                )
            };
        }
        o.mtx.enter();
        // SAFETY: interlock held, no references left.
        unsafe { plain::drain_fini(o.lcp(), o.cv.as_kcondvar(), o.mtx.as_kmutex()) };
        assert!(o.mtx.owned());
        o.mtx.exit();
    });
}
