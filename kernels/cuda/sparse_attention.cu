// Tensor-core executor for SparsePlans (see sparse_attention.cuh for the contract).
// FlashAttention-2 structure: 4 warps, 16 query rows each; mma.sync m16n8k16 with ldmatrix from padded
// shared memory; K/V chunks gathered row by row with cp.async (a key row is D contiguous values, so a
// permuted or gathered chunk costs the same as a contiguous one) and double-buffered.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "kernels/cuda/sparse_attention_device.cuh"

namespace mmi::cuda {
namespace {

using namespace detail;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerWarp = kBlockM / kWarps;  // 32: two m16 atoms share every K and V fragment
constexpr int kMAtoms = kRowsPerWarp / 16;
static_assert(kThreads == kBlockM, "one query row per thread when loading a tile");

// Shared memory of one CTA: padded rows (D + 8 elements) keep ldmatrix free of bank conflicts; the tiles
// are 16-byte aligned for cp.async and ldmatrix whatever the size of TileMeta.
template <int D, typename T>
struct SharedStorage : TileMeta {
  static constexpr int kStride = D + 8;
  alignas(16) T q[kBlockM * kStride];
  alignas(16) T k[2][kBlockN * kStride];
  alignas(16) T v[2][kBlockN * kStride];
};

template <int D>
struct PaddedRows {
  static __device__ __forceinline__ int offset(int r, int piece) { return r * (D + 8) + piece * 8; }
};

template <int D, typename T>
__global__ void __launch_bounds__(kThreads) sparse_attention_kernel(const SparseAttentionParams p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  SharedStorage<D, T>& s = *reinterpret_cast<SharedStorage<D, T>*>(smem_raw);
  constexpr int kStride = D + 8;
  constexpr int kAtomsD = D / 8;  // n-atoms of the output
  static_assert(D % 16 == 0, "head_dim must be a multiple of 16");
  const DeviceTile tile = tile_of(p);
  const DevicePass& pass = p.passes[tile.pass];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  bool have_chunk = start_tile<kThreads, D, PaddedRows<D>, PaddedRows<D>>(p, tile, pass, s, s.q, s.k[0], s.v[0]);
  if (!have_chunk) return;  // nothing to add to these rows
  const T* k_base = static_cast<const T*>(p.k);
  const T* v_base = static_cast<const T*>(p.v);
  const bool rows_valid = (tile.tile + 1) * kBlockM <= pass.num_rows;
  const int rule_kind = pass.rule_kind;

  // This thread's rows: m-atom a, half h -> warp * 32 + a * 16 + h * 8 + lane / 4.
  auto row_of = [&](int a, int h) { return warp * kRowsPerWarp + a * 16 + h * 8 + lane / 4; };
  const float scale_log2 = p.softmax_scale * kLog2e;
  float o[kMAtoms][kAtomsD][4];
#pragma unroll
  for (int a = 0; a < kMAtoms; ++a)
#pragma unroll
    for (int n = 0; n < kAtomsD; ++n) o[a][n][0] = o[a][n][1] = o[a][n][2] = o[a][n][3] = 0.f;
  float m[kMAtoms][2], l[kMAtoms][2];
#pragma unroll
  for (int a = 0; a < kMAtoms; ++a) m[a][0] = m[a][1] = -INFINITY, l[a][0] = l[a][1] = 0.f;

  for (int buf = 0; have_chunk; buf ^= 1) {
    // One barrier per chunk, as in the wgmma kernel: the chunk in `buf` is visible, the other buffer free.
    cp_async_wait<0>();
    __syncthreads();
    const bool more = !s.cursor[buf ^ 1].done();
    if (more) fetch_chunk<kThreads, D, PaddedRows<D>>(p, pass, s, s.k[buf ^ 1], s.v[buf ^ 1], buf ^ 1, k_base, v_base);
    cp_async_commit();
    const int mask = s.mask[buf];
    if (mask == 2) {  // rule bits for this chunk, once per element, outside the MMA loop
      evaluate_rule(p, s, buf, rule_kind);
      __syncthreads();
    }

    // S = Q K^T: the warp's 32 rows x 64 keys; every K fragment serves both m-atoms.
    float sc[kMAtoms][8][4];
#pragma unroll
    for (int a = 0; a < kMAtoms; ++a)
#pragma unroll
      for (int n = 0; n < 8; ++n) sc[a][n][0] = sc[a][n][1] = sc[a][n][2] = sc[a][n][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t qa[kMAtoms][4];
#pragma unroll
      for (int a = 0; a < kMAtoms; ++a) {
        ldmatrix_x4(qa[a], &s.q[(warp * kRowsPerWarp + a * 16 + lane % 16) * kStride + kk * 16 + (lane / 16) * 8]);
      }
#pragma unroll
      for (int nn = 0; nn < 4; ++nn) {
        uint32_t b[4];
        ldmatrix_x4(b, &s.k[buf][(nn * 16 + lane % 8 + (lane / 16) * 8) * kStride + kk * 16 + ((lane / 8) % 2) * 8]);
#pragma unroll
        for (int a = 0; a < kMAtoms; ++a) {
          Mma<T>::run(sc[a][2 * nn], qa[a], b[0], b[1]);
          Mma<T>::run(sc[a][2 * nn + 1], qa[a], b[2], b[3]);
        }
      }
    }

    // Mask and online softmax (which applies the scale), per 16-row block.
    const bool plain = mask == 0 && rows_valid && s.len[buf] == kBlockN;
#pragma unroll
    for (int a = 0; a < kMAtoms; ++a) {
      const int rows[2] = {row_of(a, 0), row_of(a, 1)};
      const uint64_t bits[2] = {mask == 2 ? stored_keep_bits(s, buf, rows[0]) : 0,
                                mask == 2 ? stored_keep_bits(s, buf, rows[1]) : 0};
      mask_scores(sc[a], s, buf, mask, plain, rows, bits, lane);
      online_softmax(sc[a], o[a], m[a], l[a], scale_log2);
    }

    // O += P V: P is reused from the accumulators as A fragments (16 keys per k-step).
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      uint32_t pa[kMAtoms][4];
#pragma unroll
      for (int a = 0; a < kMAtoms; ++a) p_fragment<T>(sc[a], kk, pa[a]);
#pragma unroll
      for (int dn = 0; dn < kAtomsD / 2; ++dn) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, &s.v[buf][(kk * 16 + lane % 8 + ((lane / 8) % 2) * 8) * kStride + dn * 16 + (lane / 16) * 8]);
#pragma unroll
        for (int a = 0; a < kMAtoms; ++a) {
          Mma<T>::run(o[a][2 * dn], pa[a], b[0], b[1]);
          Mma<T>::run(o[a][2 * dn + 1], pa[a], b[2], b[3]);
        }
      }
    }
    have_chunk = more;
  }

  // Merge this pass's rows into the running state (or the output) by log-sum-exp.
#pragma unroll
  for (int a = 0; a < kMAtoms; ++a) {
    const int rows[2] = {row_of(a, 0), row_of(a, 1)};
    merge_block<D, T>(p, pass, s, rows, m[a], l[a], o[a], lane);
  }
}

// Four values per thread (head_dim is a multiple of 4, so they share a row): zeros where the row's lse
// says no pass kept anything.
__global__ void finalize_kernel(const SparseAttentionParams p, int head_dim) {
  const int64_t groups = static_cast<int64_t>(p.n) * p.q_heads * head_dim / 4;
  for (int64_t x = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; x < groups; x += int64_t(gridDim.x) * blockDim.x) {
    const int64_t row = x * 4 / head_dim;  // i * Hq + h
    if (p.lse_state[(row % p.q_heads) * p.n + row / p.q_heads] == -INFINITY) {
      reinterpret_cast<uint2*>(p.out)[x] = make_uint2(0, 0);  // +0 in bf16 and fp16 alike
    }
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

namespace {

// blockIdx.y: the pass; x: its tiles x pieces, piece-minor.
__global__ void block_summary_runs_kernel(const DevicePass* passes, const DeviceBand* bands,
                                          const int32_t* phase_tables, BlockSummaryRun<int32_t>* runs) {
  const DevicePass& pass = passes[blockIdx.y];
  if (pass.form != 4 || pass.shares_arrays) return;  // a sharing pass's runs are its owner's
  const int32_t x = static_cast<int32_t>(blockIdx.x * blockDim.x + threadIdx.x);
  const int32_t tile = x / pass.phases, piece = x % pass.phases;
  if (tile * kBlockM >= pass.num_rows) return;
  runs[pass.tile_runs + x] = detail::tile_block_summary_run(bands, phase_tables, pass, tile, piece);
}

}  // namespace

cudaError_t launch_block_summary_runs(const DevicePass* passes, int32_t num_passes, int32_t max_tile_pieces,
                                      const DeviceBand* bands, const int32_t* phase_tables,
                                      BlockSummaryRun<int32_t>* runs, cudaStream_t stream) {
  if (num_passes == 0 || max_tile_pieces == 0) return cudaSuccess;
  constexpr int kThreads = 128;
  const dim3 grid((max_tile_pieces + kThreads - 1) / kThreads, num_passes);
  block_summary_runs_kernel<<<grid, kThreads, 0, stream>>>(passes, bands, phase_tables, runs);
  return cudaGetLastError();
}

cudaError_t launch_finalize(const SparseAttentionParams& params, int head_dim, cudaStream_t stream) {
  const int64_t groups = static_cast<int64_t>(params.n) * params.q_heads * head_dim / 4;
  if (groups == 0) return cudaSuccess;
  if (head_dim % 4 != 0) return cudaErrorInvalidValue;
  const int blocks = static_cast<int>(std::min<int64_t>((groups + 255) / 256, 65536));
  finalize_kernel<<<blocks, 256, 0, stream>>>(params, head_dim);
  return cudaGetLastError();
}

}  // namespace mmi::cuda
