//! Compiles the seal digest's chunk-hash code (`kernels/chunk_sha256.c`)
//! with the host C compiler, so that the tests can check the code meant for
//! the GPU against the NIST vectors and the `sha2` crate on every run.

fn main() {
    println!("cargo:rerun-if-changed=kernels/chunk_sha256.c");
    println!("cargo:rerun-if-changed=kernels/cuda_source_on_cpu.cpp");
    cc::Build::new()
        .file("kernels/chunk_sha256.c")
        .std("c99")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .opt_level(2)
        .compile("sealtrail_chunk_sha256");
    // The same source as NVRTC compiles it, CUDA branch included, for the
    // CPU (see the file's comment).
    cc::Build::new()
        .cpp(true)
        // Plain C in C++ clothing: no exceptions, no runtime type
        // information, nothing of the C++ library, so none is linked.
        .cpp_link_stdlib(None)
        .flag("-fno-exceptions")
        .flag("-fno-rtti")
        .file("kernels/cuda_source_on_cpu.cpp")
        .std("c++17")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        // `#pragma unroll` is for NVRTC; a host compiler ignores it.
        .flag_if_supported("-Wno-unknown-pragmas")
        .opt_level(2)
        .compile("sealtrail_chunk_sha256_cuda_source");
}
