//! Generates raw bindings to Debian's libdpdk (22.11) and compiles C wrappers for the
//! static-inline functions (`rte_eth_rx_burst`, `rte_pktmbuf_alloc`, ...), which have no
//! symbol in the shared libraries.

use std::env;
use std::path::PathBuf;

const MISSING_DPDK: &str = "libdpdk was not found by pkg-config. Install Debian's DPDK 22.11 \
     development files: `apt-get install dpdk libdpdk-dev pkg-config` (or run scripts/setup.sh).";
const MISSING_CLANG: &str = "bindgen could not load libclang. Install it: \
     `apt-get install libclang-dev clang` (or run scripts/setup.sh).";

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-changed=build.rs");

    let dpdk = match pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => panic!("{MISSING_DPDK}\npkg-config said: {e}"),
    };

    // The compile flags pkg-config hands out (-include rte_config.h, -march=...) matter
    // for struct layout, so bindgen and cc both get them verbatim.
    let cflags = other_cflags();
    let mut clang_args: Vec<String> = dpdk
        .include_paths
        .iter()
        .map(|p| format!("-I{}", p.display()))
        .collect();
    clang_args.extend(extra_cflags(cflags.as_deref()));

    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let wrappers = out.join("static_wrappers");

    // bindgen panics (rather than erring) when libclang is missing: turn that into advice.
    let generated = std::panic::catch_unwind(|| {
        bindgen::Builder::default()
            .header("wrapper.h")
        .clang_args(&clang_args)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .allowlist_function("rte_(eal|eth|pktmbuf|mbuf|mempool|lcore|get|socket|strerror|rdtsc|ring|vlan|version|dev|delay|pause|prefetch|zmalloc|free|ether).*")
        .allowlist_function("weir_.*")
        // The software Toeplitz hash, to check Weir's against DPDK's own.
        .allowlist_function("rte_softrss")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*")
            .blocklist_item("per_lcore_.*")
            .opaque_type("rte_l2tpv2_common_hdr|rte_gtp_psc_generic_hdr|rte_flow_item_.*|rte_l2tpv2_combined_msg_hdr")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .wrap_static_fns(true)
        .wrap_static_fns_path(&wrappers)
        .generate()
    });
    let bindings = match generated {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => panic!("bindgen failed on the DPDK headers: {e}\n{MISSING_CLANG}"),
        Err(_) => panic!("{MISSING_CLANG}"),
    };
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs");

    let mut build = cc::Build::new();
    build
        .file(wrappers.with_extension("c"))
        .file("shim.c")
        .include(env::current_dir().expect("cwd"))
        .includes(&dpdk.include_paths)
        .flag_if_supported("-Wno-deprecated-declarations")
        .opt_level(2);
    for f in extra_cflags(cflags.as_deref()) {
        build.flag(&f);
    }
    build.compile("weir_dpdk_shim");
}

/// Flags from libdpdk's cflags that are not include paths (`-include rte_config.h`,
/// `-march=corei7`), kept in order because `-include` takes the next word.
fn extra_cflags(cflags: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(cflags) = cflags else {
        // Debian's .pc file puts these in Cflags; fall back to what 22.11 uses.
        return vec![
            "-include".into(),
            "rte_config.h".into(),
            "-march=corei7".into(),
        ];
    };
    let mut words = cflags.split_whitespace();
    while let Some(w) = words.next() {
        if w == "-include" {
            if let Some(file) = words.next() {
                out.push(w.to_string());
                out.push(file.to_string());
            }
        } else if w.starts_with("-m") || w.starts_with("-D") {
            out.push(w.to_string());
        }
    }
    out
}

fn other_cflags() -> Option<String> {
    let out = std::process::Command::new("pkg-config")
        .args(["--cflags-only-other", "libdpdk"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
