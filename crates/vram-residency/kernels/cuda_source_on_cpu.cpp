/*
 * The CUDA branch of chunk_sha256.c, built for the CPU.
 *
 * The host build of chunk_sha256.c skips what only the GPU compiles: the
 * aligned word loads of st_load_block and the kernel's own index
 * arithmetic. This file compiles the source exactly as NVRTC sees it,
 * with the few CUDA keywords and built-ins it uses defined for a plain
 * C++ compiler, and runs the kernel over a grid one thread at a time, so
 * that the tests hold the GPU's code path, not only its host twin, to
 * `sha2`. What it cannot check is NVRTC itself and the device.
 */

#define __CUDACC__ 1
#define __device__
#define __constant__
#define __global__

/* blockIdx, blockDim and threadIdx, set by the grid loop below. */
struct st_dim3 {
    unsigned int x, y, z;
};
static st_dim3 blockIdx, blockDim, threadIdx;

#include "chunk_sha256.c"

/*
 * Every thread of the grid the CUDA backend launches (blocks of
 * `threads_per_block`, the last one partly past the end), one after
 * another. `shard` must be 4-byte aligned, as a device allocation is.
 */
extern "C" void sealtrail_chunk_leaves_cuda_source(const uint8_t *shard, uint64_t len,
                                                   uint32_t threads_per_block,
                                                   uint8_t *leaves) {
    uint64_t chunks = (len + SEALTRAIL_CHUNK_BYTES - 1) / SEALTRAIL_CHUNK_BYTES;
    uint64_t blocks = (chunks + threads_per_block - 1) / threads_per_block;
    blockDim.x = threads_per_block;
    for (uint64_t b = 0; b < blocks; b++) {
        blockIdx.x = (unsigned int)b;
        for (uint32_t t = 0; t < threads_per_block; t++) {
            threadIdx.x = t;
            sealtrail_chunk_leaves(shard, len, chunks, leaves);
        }
    }
}
