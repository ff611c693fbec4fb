// wgmma building blocks for the sm_90a kernels: the 128-byte swizzled K-major shared-memory layout,
// matrix descriptors, the wgmma fences, and the m64n64k16 (both operands in shared memory) and
// m64n128k16 (A in registers) steps for bf16 and fp16. Included by .cu files only; the instructions
// exist on sm_90a alone, so kernels that use them guard their bodies with __CUDA_ARCH_FEAT_SM90_ALL.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/mma.cuh"

// A named namespace: the host compilation pass sees these device helpers unreferenced, and would warn
// about them inside an anonymous one.
namespace mmi::cuda::sm90 {

using detail::smem_address;

// 128-byte swizzled K-major storage of kRows rows of d = 128: half h (values 64h .. 64h + 63) of every
// row forms one region of kRows x 128 bytes; inside it the 16-byte piece c of row r sits at c ^ (r % 8).
// Regions start on 1024 bytes, as the swizzle pattern repeats every 8 rows.
template <int kRows>
struct Swizzled {
  static __device__ __forceinline__ int offset(int r, int piece) {
    const int half = piece / 8, c = piece % 8;
    return half * kRows * 64 + r * 64 + ((c ^ (r % 8)) * 8);
  }
};


// A shared-memory matrix descriptor with 128-byte swizzling: start address, leading and stride byte
// offsets (each stored >> 4).
__device__ __forceinline__ uint64_t descriptor(const void* smem, uint32_t leading_bytes, uint32_t stride_bytes) {
  return static_cast<uint64_t>((smem_address(smem) & 0x3FFFF) >> 4) | (static_cast<uint64_t>(leading_bytes >> 4) << 16) |
         (static_cast<uint64_t>(stride_bytes >> 4) << 32) | (uint64_t(1) << 62);
}

// Dynamic shared memory rounded up to the 1024 bytes swizzled regions need (a launch allots 1 KiB of
// slack for it).
__device__ __forceinline__ unsigned char* align_1024(unsigned char* smem) {
  return smem + ((1024 - (smem_address(smem) & 1023)) & 1023);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
// Waits until at most N committed groups of this warpgroup's wgmmas are still running.
template <int N>
__device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
__device__ __forceinline__ void wgmma_wait_all() { wgmma_wait<0>(); }
// Makes this thread's cp.async writes visible to wgmma, which reads shared memory through the async proxy.
__device__ __forceinline__ void fence_async_proxy() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// Keeps the compiler from moving register reads or writes across an asynchronous wgmma.
template <int N>
__device__ __forceinline__ void fence_registers(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}

// An accumulator block [rows][4] as the flat register list a wgmma instruction takes.
template <int N, int R>
__device__ __forceinline__ float (&flat(float (&block)[R][4]))[N] {
  static_assert(N == R * 4, "the whole block");
  return reinterpret_cast<float(&)[N]>(block);
}

template <typename T>
struct Wgmma;

// S (+)= Q K^T for one 64 x 64 score block (A and B K-major in shared memory), and
// O (+)= P V for one 64 x 128 output block (A in registers, B MN-major in shared memory), for one
// element type: the two specialisations differ only in the type named in the instruction.
#define MMI_WGMMA_SPECIALIZATION(T, PTX_TYPE) \
  template <> \
  struct Wgmma<T> { \
    static __device__ __forceinline__ void qk(float (&d)[32], uint64_t a, uint64_t b, int accumulate) { \
      asm volatile( \
          "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n" \
          "wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX_TYPE "." PTX_TYPE " {" \
          "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15," \
          "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31" \
          "}, %32, %33, p, 1, 1, 0, 0;\n}\n" \
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
            "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
            "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
            "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]) \
          : "l"(a), "l"(b), "r"(accumulate)); \
    } \
    static __device__ __forceinline__ void pv(float (&d)[64], const uint32_t (&a)[4], uint64_t b, \
                                              int accumulate) { \
      asm volatile( \
          "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n" \
          "wgmma.mma_async.sync.aligned.m64n128k16.f32." PTX_TYPE "." PTX_TYPE " {" \
          "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15," \
          "%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31," \
          "%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47," \
          "%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63" \
          "}, {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}\n" \
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
            "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
            "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
            "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
            "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
            "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
            "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
            "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]) \
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate)); \
    } \
  };

MMI_WGMMA_SPECIALIZATION(__nv_bfloat16, "bf16")
MMI_WGMMA_SPECIALIZATION(__half, "f16")
#undef MMI_WGMMA_SPECIALIZATION

}  // namespace mmi::cuda::sm90
