//! Build script.
//!
//! Kernel builds (no `host` feature): nothing to do.
//!
//! Host builds (`--features host`): compile the C ABI checker
//! `tests/c/abi.c` twice against the committed header `include/sys/localcount.h`
//! -- once plain, once with `-DDEBUG -DLOCKDEBUG` -- with the kernel's
//! warning flags and `-Werror`, so that `cargo test` fails when the header
//! and the Rust layout disagree or the header stops compiling cleanly.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=tests/c/abi.c");
    println!("cargo:rerun-if-changed=include/sys/localcount.h");
    if env::var_os("CARGO_FEATURE_HOST").is_none() {
        return;
    }
    if env::var("TARGET").ok() != env::var("HOST").ok() {
        return;
    }
    for (name, debug) in [("lcabi", false), ("lcabi_debug", true)] {
        let mut b = cc::Build::new();
        b.file("tests/c/abi.c")
            .include("include")
            .include("tests/c/kernel-stub")
            .define("_KERNEL", None)
            .define("ABI_PREFIX", if debug { "abi_debug_" } else { "abi_" })
            .warnings(true)
            .warnings_into_errors(true)
            .flag("-Wall")
            .flag("-Wmissing-prototypes")
            .flag("-Wstrict-prototypes")
            .flag("-Wpointer-arith")
            .flag("-Wno-sign-compare")
            .flag("-std=gnu99");
        if debug {
            b.define("DEBUG", None).define("LOCKDEBUG", None);
        }
        b.compile(name);
    }
}
