//! Build script of the `markoff` crate: records the target triple (`MARKOFF_TARGET`) for the
//! `markoff_build_info` metric. A packaging build may set `MARKOFF_COMMIT` to the source commit.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MARKOFF_COMMIT");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=MARKOFF_TARGET={target}");
}
