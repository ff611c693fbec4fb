// wgmma executor for SparsePlans with d = 128 on sm_90a (see sparse_attention.cuh for the contract).
// Two warpgroups take 64 of the tile's 128 query rows each. Q and every K/V chunk sit in shared memory in
// the 128-byte swizzled layout wgmma reads through matrix descriptors; S = Q K^T is a chain of eight
// m64n64k16 wgmmas from shared memory, and O += P V four m64n128k16 wgmmas with P taken straight from
// the S accumulators as register fragments (V read MN-major, so it needs no transpose). Chunks are
// gathered with cp.async exactly as in the mma.sync kernel (same cursor, masks and merge).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/sparse_attention_device.cuh"

// A named namespace: the host compilation pass sees these device helpers unreferenced, and would warn
// about them inside an anonymous one.
namespace mmi::cuda::sm90 {

using namespace detail;

constexpr int kD = 128;
constexpr int kWarpGroups = 2;
constexpr int kThreads = kWarpGroups * 128;
constexpr int kGroupRows = kBlockM / kWarpGroups;  // 64: one wgmma M
static_assert(kBlockN == 64 && kGroupRows == 64, "the wgmma shapes below assume 64 x 64 score tiles");

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

template <typename T>
struct Sm90Storage {
  alignas(1024) T q[kBlockM * kD];
  alignas(1024) T k[2][kBlockN * kD];
  alignas(1024) T v[2][kBlockN * kD];
  TileMeta meta;
};

// A shared-memory matrix descriptor with 128-byte swizzling: start address, leading and stride byte
// offsets (each stored >> 4).
__device__ __forceinline__ uint64_t descriptor(const void* smem, uint32_t leading_bytes, uint32_t stride_bytes) {
  return static_cast<uint64_t>((smem_address(smem) & 0x3FFFF) >> 4) | (static_cast<uint64_t>(leading_bytes >> 4) << 16) |
         (static_cast<uint64_t>(stride_bytes >> 4) << 32) | (uint64_t(1) << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
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

template <typename T>
__global__ void __launch_bounds__(kThreads, 2) sparse_attention_sm90_kernel(const SparseAttentionParams p) {
#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __trap();  // built for a GPU without wgmma: the host side only launches this kernel on sm_90
#else
  extern __shared__ unsigned char smem_raw[];
  // Swizzled regions need 1024-byte alignment; the launch allots 1 KiB of slack for it.
  unsigned char* aligned = smem_raw + ((1024 - (smem_address(smem_raw) & 1023)) & 1023);
  Sm90Storage<T>& s = *reinterpret_cast<Sm90Storage<T>*>(aligned);
  TileMeta& meta = s.meta;
  const DeviceTile tile = tile_of(p);
  const DevicePass& pass = p.passes[tile.pass];
  const int tid = threadIdx.x, group = tid / 128, warp = (tid % 128) / 32, lane = tid % 32;

  bool have_chunk = start_tile<kThreads, kD, Swizzled<kBlockM>, Swizzled<kBlockN>>(p, tile, pass, meta, s.q, s.k[0],
                                                                                  s.v[0]);
  if (!have_chunk) return;  // nothing to add to these rows
  const T* k_base = static_cast<const T*>(p.k);
  const T* v_base = static_cast<const T*>(p.v);
  const bool rows_valid = (tile.tile + 1) * kBlockM <= pass.num_rows;
  const int rule_kind = pass.rule_kind, form = pass.form;

  // This thread's rows (h = 0, 1) within the tile, as in every m64 wgmma accumulator.
  auto row_of = [&](int h) { return group * kGroupRows + warp * 16 + h * 8 + lane / 4; };
  // Q rows of this warpgroup: K-major, 8-row groups 1024 bytes apart; k-step kk reads 32 bytes of a half.
  const T* q_group = s.q + group * kGroupRows * 64;
  const float scale_log2 = p.softmax_scale * kLog2e;
  float o[16][4];  // as the m64n128 accumulator: o[n][2h + e] is row row_of(h), column n * 8 + (lane % 4) * 2 + e
#pragma unroll
  for (int n = 0; n < 16; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

  for (int buf = 0; have_chunk; buf ^= 1) {
    // One barrier per chunk: it makes the chunk in `buf` visible, and it frees the other buffer (every
    // warp is done with the chunk before), which the next chunk's loads then fill while this one computes.
    cp_async_wait<0>();
    fence_async_proxy();
    __syncthreads();
    const bool more = !meta.cursor[buf ^ 1].done();
    if (more) {
      fetch_chunk<kThreads, kD, Swizzled<kBlockN>>(p, pass, meta, s.k[buf ^ 1], s.v[buf ^ 1], buf ^ 1, k_base, v_base);
    }
    cp_async_commit();
    const int mask = meta.mask[buf];
    // Keep bits with a closed form are cheap enough for each thread to take its own rows' (no barrier);
    // other rule-tested chunks are evaluated once per element into shared keep bits.
    const bool own_bits = mask == 2 && closed_form_rule(rule_kind, form, meta.step[buf]);
    if (mask == 2 && !own_bits) {
      if (tid < kBlockM) evaluate_rule(p, meta, buf, rule_kind, form);
      __syncthreads();
    }

    // S = Q K^T over d in 8 steps of 16 (4 per 128-byte half).
    float sc[8][4];  // as the m64n64 accumulator, laid out as mask_scores expects
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      const int half = kk / 4, offset = (kk % 4) * 16;  // elements into the swizzle row
      const uint64_t a = descriptor(q_group + half * kBlockM * 64 + offset, 16, 1024);
      const uint64_t b = descriptor(s.k[buf] + half * kBlockN * 64 + offset, 16, 1024);
      Wgmma<T>::qk(flat<32>(sc), a, b, kk > 0);
    }
    wgmma_commit();
    wgmma_wait_all();
    fence_registers(flat<32>(sc));

    const bool plain = mask == 0 && rows_valid && meta.len[buf] == kBlockN;
    const int rows[2] = {row_of(0), row_of(1)};
    uint64_t bits[2] = {0, 0};
#pragma unroll
    for (int h = 0; h < 2 && mask == 2; ++h) {
      bits[h] = own_bits ? closed_form_bits(p.words, meta.rule, rule_kind, form, meta.rows[rows[h]],
                                            meta.cols[buf][0], meta.step[buf], meta.len[buf], meta.line[buf])
                         : stored_keep_bits(meta, buf, rows[h]);
    }
    mask_scores(sc, meta, buf, mask, plain, rows, bits, lane);
    online_softmax(sc, o, m, l, scale_log2);

    // O += P V, 16 keys per step.
    uint32_t pa[4][4];
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) p_fragment<T>(sc, kk, pa[kk]);
    fence_registers(flat<64>(o));
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      // V MN-major: 16 keys (two 8-row groups, 1024 bytes apart) from row 16kk; the halves of d are
      // the two 64-value atoms, one region (kBlockN x 128 bytes) apart.
      const uint64_t b = descriptor(s.v[buf] + kk * 16 * 64, kBlockN * 128, 1024);
      Wgmma<T>::pv(flat<64>(o), pa[kk], b, 1);
    }
    wgmma_commit();
    wgmma_wait_all();
    fence_registers(flat<64>(o));
    have_chunk = more;
  }

  // Merge this pass's rows into the running state (or the output) by log-sum-exp.
  const int rows[2] = {row_of(0), row_of(1)};
  merge_block<kD, T>(p, pass, meta, rows, m, l, o, lane);
#endif
}

template <typename T>
cudaError_t launch(const SparseAttentionParams& params, cudaStream_t stream) {
  if (params.num_tiles == 0) return cudaSuccess;
  const size_t bytes = sizeof(Sm90Storage<T>) + 1024;
  auto kernel = sparse_attention_sm90_kernel<T>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (err != cudaSuccess) return err;
  kernel<<<params.num_tiles, kThreads, bytes, stream>>>(params);
  return cudaGetLastError();
}

}  // namespace mmi::cuda::sm90

namespace mmi::cuda {

cudaError_t launch_sparse_attention_sm90(const SparseAttentionParams& params, DType dtype, cudaStream_t stream) {
  return dtype == DType::kBFloat16 ? sm90::launch<__nv_bfloat16>(params, stream) : sm90::launch<__half>(params, stream);
}

}  // namespace mmi::cuda
