// Tensor-core building blocks shared by the CUDA kernels: 16-byte async copies, ldmatrix and the
// mma.sync m16n8k16 step for bf16 and fp16. Included by .cu files only.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace mmi::cuda::detail {

__device__ __forceinline__ uint32_t smem_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte async copy; when !valid the destination is zero-filled.
__device__ __forceinline__ void cp_async_16(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(smem)), "l"(gmem),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(p)));
}

template <typename T>
struct Mma;

// The mma.sync m16n8k16 step (c += a b, fp32 accumulators) and the packing of two fp32 values into one
// register (and back), for one element type: the two specialisations differ only in the type names.
#define MMI_MMA_SPECIALIZATION(T, PTX_TYPE, PAIR, PACK, UNPACK)                                          \
  template <>                                                                                          \
  struct Mma<T> {                                                                                      \
    static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,       \
                                               uint32_t b1) {                                          \
      asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." PTX_TYPE "." PTX_TYPE                        \
                   ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"                        \
                   : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                                      \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));                      \
    }                                                                                                  \
    static __device__ __forceinline__ uint32_t pack(float lo, float hi) {                               \
      PAIR v = PACK(lo, hi);                                                                           \
      return *reinterpret_cast<uint32_t*>(&v);                                                         \
    }                                                                                                  \
    static __device__ __forceinline__ float2 unpack(uint32_t packed) {                                  \
      return UNPACK(*reinterpret_cast<const PAIR*>(&packed));                                          \
    }                                                                                                  \
  };

MMI_MMA_SPECIALIZATION(__nv_bfloat16, "bf16", __nv_bfloat162, __floats2bfloat162_rn, __bfloat1622float2)
MMI_MMA_SPECIALIZATION(__half, "f16", __half2, __floats2half2_rn, __half22float2)
#undef MMI_MMA_SPECIALIZATION

}  // namespace mmi::cuda::detail
