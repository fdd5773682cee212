/*
 * WebSocket payload masking (RFC 6455 section 5.3), compiled by cffi as syncws._mask_cffi.
 *
 *     dst[i] = src[i] ^ mask[(offset + i) % 4]    for 0 <= i < n
 *
 * "offset" is the number of payload bytes that were already masked, so a payload that
 * arrives in pieces can be masked piece by piece. src == dst (in place) is supported; other
 * overlaps are not.
 *
 * The bulk of the buffer is processed 16 bytes at a time (SSE2 on x86, where it is part of
 * the x86-64 baseline) or 8 bytes at a time otherwise (which gcc/clang vectorise at -O3, e.g.
 * to NEON on aarch64). Every unaligned access goes through memcpy or an explicitly unaligned
 * intrinsic, so there is no undefined behaviour for any alignment of src/dst. Define
 * SYNCWS_MASK_NO_SSE2 to force the portable path (e.g. to test it on x86).
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if !defined(SYNCWS_MASK_NO_SSE2) && \
    (defined(__SSE2__) || defined(_M_X64) || defined(_M_AMD64) || \
     (defined(_M_IX86_FP) && _M_IX86_FP >= 2))
#include <emmintrin.h>
#define SYNCWS_MASK_SSE2 1
#endif

void syncws_mask(const unsigned char *src, unsigned char *dst, size_t n,
                 const unsigned char *mask, size_t offset)
{
    unsigned char key[4];
    uint32_t k32;
    size_t i = 0;

    /* key[j] is the mask byte for every position p with p % 4 == j. */
    key[0] = mask[offset & 3];
    key[1] = mask[(offset + 1) & 3];
    key[2] = mask[(offset + 2) & 3];
    key[3] = mask[(offset + 3) & 3];
    memcpy(&k32, key, 4);

#ifdef SYNCWS_MASK_SSE2
    {
        const __m128i k = _mm_set1_epi32((int)k32);
        for (; i + 64 <= n; i += 64) {
            __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 16));
            __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32));
            __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 48));
            _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
            _mm_storeu_si128((__m128i *)(dst + i + 16), _mm_xor_si128(b, k));
            _mm_storeu_si128((__m128i *)(dst + i + 32), _mm_xor_si128(c, k));
            _mm_storeu_si128((__m128i *)(dst + i + 48), _mm_xor_si128(d, k));
        }
        for (; i + 16 <= n; i += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
            _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
        }
    }
#else
    {
        /* Both halves hold the same 4 bytes, so this is right for either byte order. */
        const uint64_t k8 = (uint64_t)k32 | ((uint64_t)k32 << 32);
        for (; i + 32 <= n; i += 32) {
            uint64_t a, b, c, d;
            memcpy(&a, src + i, 8);
            memcpy(&b, src + i + 8, 8);
            memcpy(&c, src + i + 16, 8);
            memcpy(&d, src + i + 24, 8);
            a ^= k8;
            b ^= k8;
            c ^= k8;
            d ^= k8;
            memcpy(dst + i, &a, 8);
            memcpy(dst + i + 8, &b, 8);
            memcpy(dst + i + 16, &c, 8);
            memcpy(dst + i + 24, &d, 8);
        }
        for (; i + 8 <= n; i += 8) {
            uint64_t a;
            memcpy(&a, src + i, 8);
            a ^= k8;
            memcpy(dst + i, &a, 8);
        }
    }
#endif

    /* Tail (and everything, for tiny buffers). */
    for (; i < n; i++) {
        dst[i] = (unsigned char)(src[i] ^ key[i & 3]);
    }
}
