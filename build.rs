//! Build script.
//!
//! Kernel builds (no `host` feature): nothing to do.
//!
//! Host builds (`--features host`):
//!
//! 1. Generate `<sys/localcount.h>` from the Rust source with cbindgen
//!    (a build dependency pinned by Cargo.lock, configured by
//!    `cbindgen.toml`) into `$OUT_DIR/localcount.h`, and compare it with
//!    the committed `include/sys/localcount.h`.  On a difference:
//!    `LOCALCOUNT_HEADER=write` rewrites the committed header,
//!    `LOCALCOUNT_HEADER=check` (what `scripts/check-header.sh` and CI
//!    use) fails the build, anything else prints a warning.
//! 2. Compile the C ABI checker `tests/c/abi.c` twice against the committed
//!    header -- once plain, once with `-DDEBUG -DLOCKDEBUG` -- with the
//!    kernel's warning flags and `-Werror`, so that `cargo test` fails when
//!    the header and the Rust layout disagree or the header stops
//!    compiling cleanly.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=tests/c/abi.c");
    println!("cargo:rerun-if-changed=include/sys/localcount.h");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-env-changed=LOCALCOUNT_HEADER");
    if env::var_os("CARGO_FEATURE_HOST").is_none() {
        return;
    }
    if env::var("TARGET").ok() != env::var("HOST").ok() {
        return;
    }
    header();
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

/// Generate the header and compare it with the committed one (step 1).
fn header() {
    const COMMITTED: &str = "include/sys/localcount.h";
    let dir = env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let out = std::path::Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("localcount.h");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml"))
        .unwrap_or_else(|e| panic!("cbindgen.toml: {e}"));
    let bindings = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen: {e}"));
    bindings.write_to_file(&out);
    let generated = std::fs::read(&out).expect("generated header");
    let committed = std::fs::read(format!("{dir}/{COMMITTED}")).unwrap_or_default();
    if generated == committed {
        return;
    }
    match env::var("LOCALCOUNT_HEADER").as_deref() {
        Ok("write") => {
            std::fs::write(format!("{dir}/{COMMITTED}"), &generated).expect("write the header");
            println!("cargo:warning={COMMITTED} regenerated");
        }
        Ok("check") => panic!(
            "{COMMITTED} is stale (it differs from {}): regenerate it with \
             LOCALCOUNT_HEADER=write cargo build --features host",
            out.display()
        ),
        _ => println!(
            "cargo:warning={COMMITTED} is stale: LOCALCOUNT_HEADER=write cargo build --features host"
        ),
    }
}
