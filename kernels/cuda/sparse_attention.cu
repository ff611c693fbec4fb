// Tensor-core executor for SparsePlans (see sparse_attention.cuh for the contract).
// FlashAttention-2 structure: 4 warps, 16 query rows each; mma.sync m16n8k16 with ldmatrix from padded
// shared memory; K/V chunks gathered row by row with cp.async (a key row is D contiguous values, so a
// permuted or gathered chunk costs the same as a contiguous one) and double-buffered.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "kernels/cuda/sparse_attention.cuh"

namespace mmi::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

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

template <>
struct Mma<__nv_bfloat16> {
  static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};

template <>
struct Mma<__half> {
  static __device__ __forceinline__ void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};

// Original position of logical index `x` in a band list (bands ascend in `logical`).
__device__ __forceinline__ int32_t band_orig(const DeviceBand* bands, int32_t count, int32_t x) {
  int32_t lo = 0, hi = count - 1;
  while (lo < hi) {
    const int32_t mid = (lo + hi + 1) / 2;
    if (bands[mid].logical <= x) lo = mid; else hi = mid - 1;
  }
  const DeviceBand b = bands[lo];
  return b.orig + b.step * (x - b.logical);
}

// Shared memory of one CTA: padded rows (D + 8 elements) keep ldmatrix free of bank conflicts.
template <int D, typename T>
struct SharedStorage {
  static constexpr int kStride = D + 8;
  T q[kBlockM * kStride];
  T k[2][kBlockN * kStride];
  T v[2][kBlockN * kStride];
  int32_t rows[kBlockM];
  int32_t row_phase[kBlockM];
  int32_t cols[2][kBlockN];
  int32_t col_phase[2][kBlockN];
  int32_t mask[2];
  MaskRule rule;
};

// Walks a tile's chunks in order: runs first (in chunks of kBlockN logical keys), then gathered columns.
struct ChunkCursor {
  int32_t run, pos, column;

  __device__ void start(const SparseAttentionParams& p, const DeviceTile& t) {
    run = t.run_begin;
    pos = run < t.run_end ? p.runs[run].begin : 0;
    column = t.column_begin;
  }
  __device__ bool done(const DeviceTile& t) const { return run >= t.run_end && column >= t.column_end; }

  // Fills cols/col_phase/mask of buffer `buf` for the next chunk and advances.
  template <int D, typename T>
  __device__ void fetch(const SparseAttentionParams& p, const DeviceTile& t, const DevicePass& pass,
                        SharedStorage<D, T>& s, int buf) {
    const int tid = threadIdx.x;
    int32_t col = -1;
    if (run < t.run_end) {
      const DeviceRun r = p.runs[run];
      const int32_t len = min(kBlockN, r.end - pos);
      if (tid < kBlockN && tid < len) col = band_orig(p.bands + pass.col_bands, pass.num_col_bands, pos + tid);
      if (tid == 0) s.mask[buf] = r.mask;
      pos += kBlockN;
      if (pos >= r.end) {
        ++run;
        if (run < t.run_end) pos = p.runs[run].begin;
      }
    } else {
      const int32_t len = min(kBlockN, t.column_end - column);
      if (tid < kBlockN && tid < len) col = p.columns[column + tid];
      if (tid == 0) s.mask[buf] = 2;  // gathered columns are always tested by the rule
      column += kBlockN;
    }
    if (tid < kBlockN) {
      s.cols[buf][tid] = col;
      const VisualSpans spans{p.visual_starts, p.visual_ends, p.num_visual_spans};
      s.col_phase[buf][tid] = col >= 0 ? static_cast<int32_t>(rule_phase(pass.rule, spans, col)) : -1;
    }
  }
};

template <int D, typename T>
__device__ __forceinline__ void load_rows(T* dst, const T* base, const int32_t* rows, int heads, int head) {
  constexpr int kChunks = D / 8;  // 16-byte pieces per row
  constexpr int kStride = D + 8;
  for (int idx = threadIdx.x; idx < kBlockN * kChunks; idx += kThreads) {
    const int r = idx / kChunks, c = idx % kChunks;
    const int32_t pos = rows[r];
    const T* src = base + (static_cast<int64_t>(pos < 0 ? 0 : pos) * heads + head) * D + c * 8;
    cp_async_16(dst + r * kStride + c * 8, src, pos >= 0);
  }
}

template <int D, typename T>
__global__ void __launch_bounds__(kThreads) sparse_attention_kernel(const SparseAttentionParams p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  SharedStorage<D, T>& s = *reinterpret_cast<SharedStorage<D, T>*>(smem_raw);
  constexpr int kStride = D + 8;
  constexpr int kAtomsD = D / 8;  // n-atoms of the output
  const DeviceTile tile = p.tiles[blockIdx.x];
  const DevicePass& pass = p.passes[tile.pass];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const VisualSpans spans{p.visual_starts, p.visual_ends, p.num_visual_spans};

  if (tid < kBlockM) {
    const int32_t logical = tile.tile * kBlockM + tid;
    const int32_t orig = logical < pass.num_rows ? band_orig(p.bands + pass.row_bands, pass.num_row_bands, logical) : -1;
    s.rows[tid] = orig;
    s.row_phase[tid] = orig >= 0 ? static_cast<int32_t>(rule_phase(pass.rule, spans, orig)) : -1;
  }
  if (tid == 0) s.rule = pass.rule;
  __syncthreads();
  load_rows<D, T>(s.q, static_cast<const T*>(p.q), s.rows, p.q_heads, pass.head);
  cp_async_commit();

  const T* k_base = static_cast<const T*>(p.k);
  const T* v_base = static_cast<const T*>(p.v);
  ChunkCursor cursor;
  cursor.start(p, tile);
  bool have_chunk = !cursor.done(tile);
  if (have_chunk) {
    cursor.fetch<D, T>(p, tile, pass, s, 0);
    __syncthreads();
    load_rows<D, T>(s.k[0], k_base, s.cols[0], p.kv_heads, pass.kv_head);
    load_rows<D, T>(s.v[0], v_base, s.cols[0], p.kv_heads, pass.kv_head);
  }
  cp_async_commit();

  const int row0 = warp * 16 + lane / 4, row1 = row0 + 8;
  const float scale_log2 = p.softmax_scale * kLog2e;
  uint32_t qf[D / 16][4];
  float o[kAtomsD][4];
  for (int n = 0; n < kAtomsD; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  bool first_chunk = true;
  static_assert(D % 16 == 0, "head_dim must be a multiple of 16");

  for (int buf = 0; have_chunk; buf ^= 1) {
    const bool more = !cursor.done(tile);
    if (more) {
      cursor.fetch<D, T>(p, tile, pass, s, buf ^ 1);
      __syncthreads();
      load_rows<D, T>(s.k[buf ^ 1], k_base, s.cols[buf ^ 1], p.kv_heads, pass.kv_head);
      load_rows<D, T>(s.v[buf ^ 1], v_base, s.cols[buf ^ 1], p.kv_heads, pass.kv_head);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (first_chunk) {  // Q landed with the first chunk: keep its fragments in registers
      first_chunk = false;
      for (int kk = 0; kk < D / 16; ++kk) {
        ldmatrix_x4(qf[kk], &s.q[(warp * 16 + lane % 16) * kStride + kk * 16 + (lane / 16) * 8]);
      }
    }

    // S = Q K^T for this warp's 16 rows x 64 keys.
    float sc[8][4];
    for (int a = 0; a < 8; ++a) sc[a][0] = sc[a][1] = sc[a][2] = sc[a][3] = 0.f;
    for (int kk = 0; kk < D / 16; ++kk) {
      for (int nn = 0; nn < 4; ++nn) {
        uint32_t b[4];
        ldmatrix_x4(b, &s.k[buf][(nn * 16 + lane % 8 + (lane / 16) * 8) * kStride + kk * 16 + ((lane / 8) % 2) * 8]);
        Mma<T>::run(sc[2 * nn], qf[kk], b[0], b[1]);
        Mma<T>::run(sc[2 * nn + 1], qf[kk], b[2], b[3]);
      }
    }

    // Mask (on original positions) and scale into the log2 domain.
    const int mask = s.mask[buf];
    const int32_t i0 = s.rows[row0], i1 = s.rows[row1];
    for (int a = 0; a < 8; ++a) {
      for (int e = 0; e < 4; ++e) {
        const int c = a * 8 + (lane % 4) * 2 + (e & 1);
        const int32_t i = e < 2 ? i0 : i1, j = s.cols[buf][c];
        bool keep = j >= 0 && i >= 0;
        if (keep && mask == 1) keep = j <= i;
        if (keep && mask == 2) {
          keep = rule_keeps_at(s.rule, p.words, i, j, s.row_phase[e < 2 ? row0 : row1], s.col_phase[buf][c]);
        }
        sc[a][e] = keep ? sc[a][e] * scale_log2 : -INFINITY;
      }
    }

    // Online softmax: each row's state lives in the 4 threads of its quad.
    float mx[2] = {-INFINITY, -INFINITY};
    for (int a = 0; a < 8; ++a) {
      mx[0] = fmaxf(mx[0], fmaxf(sc[a][0], sc[a][1]));
      mx[1] = fmaxf(mx[1], fmaxf(sc[a][2], sc[a][3]));
    }
    float correction[2], base[2];
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffff, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffff, mx[r], 2));
      const float m_new = fmaxf(m[r], mx[r]);
      base[r] = m_new == -INFINITY ? 0.f : m_new;  // a row with nothing kept yet stays empty
      correction[r] = exp2f(m[r] - base[r]);
      m[r] = m_new;
      l[r] *= correction[r];
    }
    for (int n = 0; n < kAtomsD; ++n) {
      o[n][0] *= correction[0];
      o[n][1] *= correction[0];
      o[n][2] *= correction[1];
      o[n][3] *= correction[1];
    }
    for (int a = 0; a < 8; ++a) {
      for (int e = 0; e < 4; ++e) {
        sc[a][e] = exp2f(sc[a][e] - base[e / 2]);
        l[e / 2] += sc[a][e];
      }
    }

    // O += P V: P is reused from the accumulators as A fragments (16 keys per k-step).
    for (int kk = 0; kk < 4; ++kk) {
      const uint32_t pa[4] = {Mma<T>::pack(sc[2 * kk][0], sc[2 * kk][1]), Mma<T>::pack(sc[2 * kk][2], sc[2 * kk][3]),
                              Mma<T>::pack(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                              Mma<T>::pack(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
      for (int dn = 0; dn < kAtomsD / 2; ++dn) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, &s.v[buf][(kk * 16 + lane % 8 + ((lane / 8) % 2) * 8) * kStride + dn * 16 + (lane / 16) * 8]);
        Mma<T>::run(o[2 * dn], pa, b[0], b[1]);
        Mma<T>::run(o[2 * dn + 1], pa, b[2], b[3]);
      }
    }
    have_chunk = more;
    __syncthreads();  // buffer `buf` is refilled by the next iteration's fetch
  }
  cp_async_wait<0>();

  // Merge this pass's rows into the running state by log-sum-exp.
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffff, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffff, l[r], 2);
  }
  const int32_t rows[2] = {s.rows[row0], s.rows[row1]};
  float old_lse[2];
  for (int r = 0; r < 2; ++r) {
    old_lse[r] = (rows[r] >= 0 && l[r] > 0.f) ? p.lse_state[static_cast<int64_t>(pass.head) * p.n + rows[r]] : 0.f;
  }
  __syncwarp();
  for (int r = 0; r < 2; ++r) {
    if (rows[r] < 0 || !(l[r] > 0.f)) continue;
    const float lse = m[r] * kLn2 + logf(l[r]);
    float w_old = 0.f, w_new = 1.f, new_lse = lse;
    if (old_lse[r] != -INFINITY) {
      const float top = fmaxf(old_lse[r], lse);
      w_old = expf(old_lse[r] - top);
      w_new = expf(lse - top);
      new_lse = top + logf(w_old + w_new);
      const float inv_total = 1.f / (w_old + w_new);
      w_old *= inv_total;
      w_new *= inv_total;
    }
    const float scale_new = w_new / l[r];
    float* out = p.out_state + (static_cast<int64_t>(rows[r]) * p.q_heads + pass.head) * D + (lane % 4) * 2;
    for (int n = 0; n < kAtomsD; ++n) {
      float2 prev = *reinterpret_cast<float2*>(out + n * 8);
      prev.x = prev.x * w_old + o[n][2 * r] * scale_new;
      prev.y = prev.y * w_old + o[n][2 * r + 1] * scale_new;
      *reinterpret_cast<float2*>(out + n * 8) = prev;
    }
    if (lane % 4 == 0) p.lse_state[static_cast<int64_t>(pass.head) * p.n + rows[r]] = new_lse;
  }
}

template <typename T>
__global__ void finalize_kernel(const float* state, T* out, int64_t count) {
  for (int64_t x = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; x < count; x += int64_t(gridDim.x) * blockDim.x) {
    out[x] = static_cast<T>(state[x]);
  }
}

template <int D, typename T>
cudaError_t launch_typed(const SparseAttentionParams& params, cudaStream_t stream) {
  if (params.num_tiles == 0) return cudaSuccess;
  const size_t bytes = sizeof(SharedStorage<D, T>);
  auto kernel = sparse_attention_kernel<D, T>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (err != cudaSuccess) return err;
  kernel<<<params.num_tiles, kThreads, bytes, stream>>>(params);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_dim(const SparseAttentionParams& params, int head_dim, cudaStream_t stream) {
  switch (head_dim) {
    case 64: return launch_typed<64, T>(params, stream);
    case 80: return launch_typed<80, T>(params, stream);
    case 128: return launch_typed<128, T>(params, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t launch_sparse_attention(const SparseAttentionParams& params, int head_dim, DType dtype,
                                    cudaStream_t stream) {
  return dtype == DType::kBFloat16 ? launch_dim<__nv_bfloat16>(params, head_dim, stream)
                                   : launch_dim<__half>(params, head_dim, stream);
}

cudaError_t launch_finalize(const float* state, void* out, int64_t count, DType dtype, cudaStream_t stream) {
  const int blocks = static_cast<int>(std::min<int64_t>((count + 255) / 256, 65536));
  if (count == 0) return cudaSuccess;
  if (dtype == DType::kBFloat16) {
    finalize_kernel<<<blocks, 256, 0, stream>>>(state, static_cast<__nv_bfloat16*>(out), count);
  } else {
    finalize_kernel<<<blocks, 256, 0, stream>>>(state, static_cast<__half*>(out), count);
  }
  return cudaGetLastError();
}

}  // namespace mmi::cuda
