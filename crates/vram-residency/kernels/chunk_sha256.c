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
 * and the tests in src/digest.rs hold it to the NIST SHA-256 test vectors
 * and to the `sha2` crate on every run, with or without a GPU. Under a CUDA
 * compiler (NVRTC defines __CUDACC_RTC__) the functions become __device__
 * functions and sealtrail_chunk_leaves, at the end, is the kernel that the
 * CUDA backend (src/backend/cuda.rs) compiles with NVRTC at run time and
 * launches over a resident shard. SHA-256 is FIPS 180-4; the constants are
 * the standard's.
 */

#if defined(__CUDACC_RTC__) || defined(__CUDACC__)
typedef unsigned char uint8_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#define ST_FN __device__ static inline
#define ST_CONST __constant__ static const
#else
#include <stdint.h>
#define ST_FN static inline
#define ST_CONST static const
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

/* One SHA-256 compression of the 64-byte block `p` into `h`. */
ST_FN void st_compress(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) |
               ((uint32_t)p[4 * i + 2] << 8) | (uint32_t)p[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = st_rotr(w[i - 15], 7) ^ st_rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = st_rotr(w[i - 2], 17) ^ st_rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    uint32_t e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (st_rotr(e, 6) ^ st_rotr(e, 11) ^ st_rotr(e, 25)) +
                      ((e & f) ^ (~e & g)) + ST_K[i] + w[i];
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

/*
 * SHA-256 of `prefix_len` (0 or 1) bytes of `prefix` followed by `len`
 * bytes of `data`, into `out`. The message is fed through a 64-byte block
 * buffer so that a one-byte prefix needs no copy of the data.
 */
ST_FN void st_sha256_prefixed(const uint8_t *prefix, uint32_t prefix_len,
                              const uint8_t *data, uint64_t len, uint8_t out[32]) {
    uint32_t h[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                     0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    uint8_t block[64];
    uint32_t fill = 0;
    for (uint32_t i = 0; i < prefix_len; i++) {
        block[fill++] = prefix[i];
    }
    uint64_t pos = 0;
    /* Finish the block the prefix started, then hash whole blocks in place. */
    while (fill != 0 && pos < len) {
        block[fill++] = data[pos++];
        if (fill == 64) {
            st_compress(h, block);
            fill = 0;
        }
    }
    while (fill == 0 && len - pos >= 64) {
        st_compress(h, data + pos);
        pos += 64;
    }
    while (pos < len) {
        block[fill++] = data[pos++];
    }
    /* Padding: 0x80, zeros, and the message length in bits, big-endian. */
    uint64_t bits = (len + prefix_len) * 8u;
    block[fill++] = 0x80;
    if (fill > 56) {
        while (fill < 64) {
            block[fill++] = 0;
        }
        st_compress(h, block);
        fill = 0;
    }
    while (fill < 56) {
        block[fill++] = 0;
    }
    for (int i = 7; i >= 0; i--) {
        block[fill++] = (uint8_t)(bits >> (8 * i));
    }
    st_compress(h, block);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

/* The RFC 9162 leaf hash of chunk `index` of a shard of `len` bytes. */
ST_FN void st_chunk_leaf(const uint8_t *shard, uint64_t len, uint64_t index,
                         uint8_t out[32]) {
    const uint8_t leaf_prefix = 0x00;
    uint64_t start = index * SEALTRAIL_CHUNK_BYTES;
    uint64_t n = len - start < SEALTRAIL_CHUNK_BYTES ? len - start : SEALTRAIL_CHUNK_BYTES;
    st_sha256_prefixed(&leaf_prefix, 1, shard + start, n, out);
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

#if defined(__CUDACC_RTC__) || defined(__CUDACC__)

/* The kernel the CUDA backend launches, one thread per chunk. */
extern "C" __global__ void sealtrail_chunk_leaves(const uint8_t *shard, uint64_t len,
                                                  uint64_t chunks, uint8_t *leaves) {
    st_chunk_leaves_thread(shard, len, chunks, leaves,
                           (uint64_t)blockIdx.x * (uint64_t)blockDim.x + (uint64_t)threadIdx.x);
}

#else

/* Host entry points, for the tests that hold this code to the standard. */

uint32_t sealtrail_chunk_bytes(void) { return SEALTRAIL_CHUNK_BYTES; }

void sealtrail_sha256(const uint8_t *data, uint64_t len, uint8_t out[32]) {
    st_sha256_prefixed(data, 0, data, len, out);
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
