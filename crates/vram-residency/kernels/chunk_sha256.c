/*
 * Leaf hashes of the seal digest: SHA-256 over fixed-size chunks of a
 * shard's resident bytes, one chunk per thread.
 *
 * The seal digest of a shard is an RFC 9162 Merkle tree root whose leaves
 * are the shard's consecutive chunks of SEALTRAIL_CHUNK_BYTES (the last one
 * may be shorter). A leaf's hash is SHA-256(0x00 || chunk), the RFC 9162
 * leaf hash, so a chunk hash can never be mistaken for an interior node,
 * whose hash is SHA-256(0x01 || left || right).
 *
 * The code is written for a GPU, one thread per chunk, and kept in plain
 * C99 with fixed-width integers and no library calls so that the host C
 * compiler builds the same code: build.rs compiles it with the `cc` crate,
 * once as C and once, through cuda_source_on_cpu.cpp, with its CUDA branch
 * as NVRTC sees it, and tests/chunk_kernel_matches_the_standard.rs holds
 * both to the NIST SHA-256 test vectors and to the `sha2` crate on every
 * run, with or without a GPU. Under a CUDA compiler (NVRTC defines
 * __CUDACC_RTC__) the functions become __device__ functions and
 * sealtrail_chunk_leaves, at the end, is the kernel that the CUDA backend
 * (src/backend/cuda.rs) compiles with NVRTC at run time and launches over
 * a resident shard. SHA-256 is FIPS 180-4; the constants are the
 * standard's.
 */

#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
#define ST_GPU 1
typedef unsigned char uint8_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#define ST_FN __device__ static inline
#define ST_CONST __constant__ static const
/* Fully unrolled, the message schedule's indices are constants and its 16
 * words stay in registers instead of spilling to local memory. */
#define ST_UNROLL _Pragma("unroll")
#else
#include <stdint.h>
#define ST_FN static inline
#define ST_CONST static const
#define ST_UNROLL
#endif

/* Seal digest chunk size; must equal vram_residency::digest::CHUNK_BYTES. */
#define SEALTRAIL_CHUNK_BYTES (16u * 1024u)

ST_CONST uint32_t ST_K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u,
    0x923f82a4u, 0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u,
    0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u,
    0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u,
    0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u,
    0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au,
    0x5b9cca4fu, 0x682e6ff3u, 0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u,
    0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

ST_FN uint32_t st_rotr(uint32_t x, uint32_t n) { return (x >> n) | (x << (32u - n)); }

/*
 * One SHA-256 compression of the block whose sixteen big-endian words are
 * `m` into `h`. The message schedule is kept as a rolling window of sixteen
 * words, as the standard allows (FIPS 180-4, 6.2.2 computes W[t] from
 * W[t-2], W[t-7], W[t-15] and W[t-16] only).
 */
ST_FN void st_compress(uint32_t h[8], const uint32_t m[16]) {
    uint32_t w[16];
    ST_UNROLL
    for (int i = 0; i < 16; i++) {
        w[i] = m[i];
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    uint32_t e = h[4], f = h[5], g = h[6], k = h[7];
    ST_UNROLL
    for (int i = 0; i < 64; i++) {
        uint32_t wi;
        if (i < 16) {
            wi = w[i];
        } else {
            uint32_t w15 = w[(i - 15) & 15];
            uint32_t w2 = w[(i - 2) & 15];
            uint32_t s0 = st_rotr(w15, 7) ^ st_rotr(w15, 18) ^ (w15 >> 3);
            uint32_t s1 = st_rotr(w2, 17) ^ st_rotr(w2, 19) ^ (w2 >> 10);
            wi = w[i & 15] + s0 + w[(i - 7) & 15] + s1;
            w[i & 15] = wi;
        }
        uint32_t t1 = k + (st_rotr(e, 6) ^ st_rotr(e, 11) ^ st_rotr(e, 25)) +
                      ((e & f) ^ (~e & g)) + ST_K[i] + wi;
        uint32_t t2 = (st_rotr(a, 2) ^ st_rotr(a, 13) ^ st_rotr(a, 22)) +
                      ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

/* The big-endian word of the four bytes at `p`, which may be unaligned. */
ST_FN uint32_t st_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
           (uint32_t)p[3];
}

/* One compression of the 64 bytes at `p`. */
ST_FN void st_compress_bytes(uint32_t h[8], const uint8_t *p) {
    uint32_t m[16];
    ST_UNROLL
    for (int i = 0; i < 16; i++) {
        m[i] = st_be32(p + 4 * i);
    }
    st_compress(h, m);
}

/*
 * The sixteen big-endian words of the 64 bytes at `p`. On the GPU `p` is
 * 4-byte aligned (a chunk starts a multiple of the chunk size into a
 * device allocation, and the driver aligns those to 256 bytes), so each
 * word is one 32-bit load and a byte swap instead of four byte loads; the
 * host, whose buffers have no such promise, reads bytes. Either way the
 * words are the same.
 */
ST_FN void st_load_block(const uint8_t *p, uint32_t out[16]) {
#ifdef ST_GPU
    const uint32_t *q = (const uint32_t *)p;
    ST_UNROLL
    for (int i = 0; i < 16; i++) {
        uint32_t v = q[i];
        out[i] = (v >> 24) | ((v >> 8) & 0x0000ff00u) | ((v << 8) & 0x00ff0000u) | (v << 24);
    }
#else
    for (int i = 0; i < 16; i++) {
        out[i] = st_be32(p + 4 * i);
    }
#endif
}

/* SHA-256's initial hash value (FIPS 180-4, 5.3.3). */
ST_FN void st_init(uint32_t h[8]) {
    h[0] = 0x6a09e667u; h[1] = 0xbb67ae85u; h[2] = 0x3c6ef372u; h[3] = 0xa54ff53au;
    h[4] = 0x510e527fu; h[5] = 0x9b05688cu; h[6] = 0x1f83d9abu; h[7] = 0x5be0cd19u;
}

/*
 * Ends a message of `total` bytes whose last `fill` bytes (0 to 63) wait
 * in `block`: the padding (0x80, zeros, the length in bits, big-endian),
 * the last one or two compressions, and the digest into `out`.
 */
ST_FN void st_finish(uint32_t h[8], uint8_t block[64], uint32_t fill, uint64_t total,
                     uint8_t out[32]) {
    uint64_t bits = total * 8u;
    block[fill++] = 0x80;
    if (fill > 56) {
        while (fill < 64) {
            block[fill++] = 0;
        }
        st_compress_bytes(h, block);
        fill = 0;
    }
    while (fill < 56) {
        block[fill++] = 0;
    }
    for (int i = 7; i >= 0; i--) {
        block[fill++] = (uint8_t)(bits >> (8 * i));
    }
    st_compress_bytes(h, block);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

/*
 * The RFC 9162 leaf hash of chunk `index` of a shard of `len` bytes:
 * SHA-256 of the message 0x00 || chunk.
 *
 * The prefix byte puts every block of the message one byte before a
 * 64-byte boundary of the chunk: block b is chunk bytes 64b-1 to 64b+62.
 * So that the data is still read in aligned words, block b is made from
 * the words of chunk bytes 64b to 64b+63, each shifted right by a byte,
 * with the low byte of the previous block's last word (or the prefix, for
 * the first block) shifted in on top. That covers every whole block whose
 * aligned words lie inside the chunk; the few bytes after them, the
 * padding and the length go through the byte-wise code.
 */
ST_FN void st_chunk_leaf(const uint8_t *shard, uint64_t len, uint64_t index,
                         uint8_t out[32]) {
    uint64_t start = index * SEALTRAIL_CHUNK_BYTES;
    uint64_t n = len - start < SEALTRAIL_CHUNK_BYTES ? len - start : SEALTRAIL_CHUNK_BYTES;
    const uint8_t *chunk = shard + start;
    uint32_t h[8];
    st_init(h);
    /* The byte before the next block's data: the 0x00 prefix at first. */
    uint32_t carry = 0;
    uint64_t blocks = n / 64;
    for (uint64_t b = 0; b < blocks; b++) {
        uint32_t words[16];
        uint32_t m[16];
        st_load_block(chunk + 64 * b, words);
        ST_UNROLL
        for (int i = 0; i < 16; i++) {
            m[i] = (carry << 24) | (words[i] >> 8);
            carry = words[i] & 0xffu;
        }
        st_compress(h, m);
    }
    /* The message bytes still to hash: the carried byte (the prefix when
     * no block was hashed), then chunk bytes 64 * blocks to n - 1; 1 to 64
     * bytes, then the padding. */
    uint8_t block[64];
    uint32_t fill = 0;
    block[fill++] = (uint8_t)carry;
    for (uint64_t pos = 64 * blocks; pos < n; pos++) {
        block[fill++] = chunk[pos];
        if (fill == 64) {
            st_compress_bytes(h, block);
            fill = 0;
        }
    }
    st_finish(h, block, fill, n + 1, out);
}

/*
 * One thread of the kernel: thread `i` of the grid writes the leaf hash of
 * chunk i of the `len`-byte shard to leaves[32 * i]; `chunks` is
 * ceil(len / chunk size), and threads past it do nothing, so any grid that
 * covers it is correct. The CUDA kernel and its host twin both run this.
 */
ST_FN void st_chunk_leaves_thread(const uint8_t *shard, uint64_t len, uint64_t chunks,
                                  uint8_t *leaves, uint64_t i) {
    if (i < chunks) {
        st_chunk_leaf(shard, len, i, leaves + 32u * i);
    }
}

#ifdef ST_GPU

/* The kernel the CUDA backend launches, one thread per chunk. `shard` is
 * the base of a device allocation, so 4-byte aligned (see st_load_block). */
extern "C" __global__ void sealtrail_chunk_leaves(const uint8_t *shard, uint64_t len,
                                                  uint64_t chunks, uint8_t *leaves) {
    st_chunk_leaves_thread(shard, len, chunks, leaves,
                           (uint64_t)blockIdx.x * (uint64_t)blockDim.x + (uint64_t)threadIdx.x);
}

#else

/* Host entry points, for the tests that hold this code to the standard. */

uint32_t sealtrail_chunk_bytes(void) { return SEALTRAIL_CHUNK_BYTES; }

/* Plain SHA-256, whole blocks straight from `data`, for the NIST vectors. */
void sealtrail_sha256(const uint8_t *data, uint64_t len, uint8_t out[32]) {
    uint32_t h[8];
    st_init(h);
    uint64_t pos = 0;
    for (; len - pos >= 64; pos += 64) {
        st_compress_bytes(h, data + pos);
    }
    uint8_t block[64];
    uint32_t fill = 0;
    while (pos < len) {
        block[fill++] = data[pos++];
    }
    st_finish(h, block, fill, len, out);
}

/*
 * The host twin of the kernel: every thread of the grid the CUDA backend
 * launches (blocks of 128 threads, the last one partly past the end), one
 * after another.
 */
void sealtrail_chunk_leaves_host(const uint8_t *shard, uint64_t len, uint8_t *leaves) {
    const uint64_t threads_per_block = 128u;
    uint64_t chunks = (len + SEALTRAIL_CHUNK_BYTES - 1) / SEALTRAIL_CHUNK_BYTES;
    uint64_t blocks = (chunks + threads_per_block - 1) / threads_per_block;
    for (uint64_t i = 0; i < blocks * threads_per_block; i++) {
        st_chunk_leaves_thread(shard, len, chunks, leaves, i);
    }
}

#endif
