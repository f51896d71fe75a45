//! Compiles the seal digest's chunk-hash code (`kernels/chunk_sha256.c`)
//! with the host C compiler, so that the tests can check the code meant for
//! the GPU against the NIST vectors and the `sha2` crate on every run.

fn main() {
    println!("cargo:rerun-if-changed=kernels/chunk_sha256.c");
    cc::Build::new()
        .file("kernels/chunk_sha256.c")
        .std("c99")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .opt_level(2)
        .compile("sealtrail_chunk_sha256");
}
