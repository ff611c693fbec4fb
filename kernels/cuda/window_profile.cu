// Fused last-query profile (see window_profile.cuh). One CTA per block of keys and team of query heads
// (those of one KV head), the window's rows 64 at a time; fp32 scores (as the ATen path computes them),
// fp64 sums across CTAs.
// - bf16 and fp16 with D = 128 on Hopper: wgmma (sm90_profile below), blocks of 256 keys, two
//   warpgroups of 128 keys each.
// - other bf16 and fp16 with D a multiple of 16: tensor cores (mma.sync m16n8k16, fp32 accumulation),
//   blocks of 256 keys, 256 threads. Rows and keys sit in padded shared memory as they are; each warp
//   computes all 64 rows against its 32 keys.
// - otherwise (fp32 inputs, other D): CUDA cores, blocks of 128 keys. Each warp owns 16 rows and each
//   lane 4 keys (lane + 32c), so one shared-memory load of a query value feeds four FMAs and one of a key
//   value sixteen (scalar FMAs are bound by shared-memory traffic otherwise), 128 threads. Rows go through
//   shared memory transposed ([D][64]) and keys as [D][128].
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <type_traits>
#include <utility>

#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/wgmma.cuh"
#include "kernels/cuda/window_profile.cuh"

namespace mmi::cuda {
namespace {

constexpr int kProfileKeys = 128;  // keys per CTA of the CUDA-core kernels
constexpr int kThreads = kProfileKeys;
constexpr float kLog2e = 1.4426950408889634f;
constexpr int kWarps = kThreads / 32;
constexpr int kRowsPerWarp = kProfileRows / kWarps;  // 16
constexpr int kKeysPerLane = kProfileKeys / 32;      // 4
static_assert(kRowsPerWarp % 4 == 0, "rows are read four at a time");

__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(float x) { return x; }

// A CTA's work: a block of keys, and the team of heads (positions [first, first + count)) that run
// over it.
struct Team {
  int first, count;
  int64_t block;  // keys [block * keys per CTA, + keys per CTA)
};

__device__ __forceinline__ Team team_of(const WindowProfileParams& p) {
  const int t = static_cast<int>(blockIdx.x % p.num_teams);
  return Team{p.team_first[t], p.team_first[t + 1] - p.team_first[t], blockIdx.x / p.num_teams};
}

// One head of a CTA's team: its rows, its KV head's keys, and its rows of the outputs.
struct HeadView {
  const void* q;  // the head's rows, as WindowProfileParams::q at head 0
  const void* k;  // its KV head's
  int64_t q_row_stride, k_row_stride;
  int32_t head_dim, end, count;
  float scale;
  const double* key_filter;
  float* block_max;  // [blocks, count] of the head's output row
  float* block_sum;
  const float* row_max;  // [count]
  const float* row_sum;
  double* column;    // [end]
  double* distance;  // [end], or nullptr
  int64_t block;     // the CTA's key block
};

// kKeys: keys per CTA of the kernel.
template <typename T, int kKeys>
__device__ __forceinline__ HeadView head_view(const WindowProfileParams& p, int position, int64_t block) {
  const int32_t head = p.heads[position];
  const int64_t slot = p.slots[position];
  const int64_t blocks = (p.end + kKeys - 1) / kKeys;
  HeadView v;
  v.q = static_cast<const T*>(p.q) + head * p.q_head_stride;
  v.k = static_cast<const T*>(p.k) + (head / p.group) * p.k_head_stride;
  v.q_row_stride = p.q_row_stride;
  v.k_row_stride = p.k_row_stride;
  v.head_dim = p.head_dim;
  v.end = p.end;
  v.count = p.count;
  v.scale = p.scale;
  v.key_filter = p.key_filter;
  // Pass 1 has no row statistics or sums yet, pass 2 no block statistics: those pointers stay null.
  auto at_slot = [slot](auto* base, int64_t per_slot) { return base ? base + slot * per_slot : nullptr; };
  v.block_max = at_slot(p.block_max, blocks * p.count);
  v.block_sum = at_slot(p.block_sum, blocks * p.count);
  v.row_max = at_slot(p.row_max, p.count);
  v.row_sum = at_slot(p.row_sum, p.count);
  v.column = at_slot(p.column, p.end);
  v.distance = at_slot(p.distance, p.end);
  v.block = block;
  return v;
}

size_t shared_bytes(int head_dim) { return sizeof(float) * head_dim * (kProfileRows + kProfileKeys); }

using Scores = float[kKeysPerLane][kRowsPerWarp];

// Scores of this lane's keys (key0 + lane + 32c) against this warp's rows (first_row + 16 warp + r),
// from q_s (scaled) and k_s; -inf where the key is not causal for the row, past the window's end, or
// the row is past the step's `rows`.
__device__ __forceinline__ void scores(const float* q_s, const float* k_s, int head_dim, int64_t key0,
                                       int64_t first_row, int rows, int32_t end, Scores& s) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int c = 0; c < kKeysPerLane; ++c)
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) s[c][r] = 0.f;
  for (int d = 0; d < head_dim; ++d) {
    float kv[kKeysPerLane];
#pragma unroll
    for (int c = 0; c < kKeysPerLane; ++c) kv[c] = k_s[d * kProfileKeys + lane + 32 * c];
    const float4* qv = reinterpret_cast<const float4*>(q_s + d * kProfileRows + warp * kRowsPerWarp);
#pragma unroll
    for (int r4 = 0; r4 < kRowsPerWarp / 4; ++r4) {
      const float4 x = qv[r4];
#pragma unroll
      for (int c = 0; c < kKeysPerLane; ++c) {
        s[c][4 * r4] += x.x * kv[c];
        s[c][4 * r4 + 1] += x.y * kv[c];
        s[c][4 * r4 + 2] += x.z * kv[c];
        s[c][4 * r4 + 3] += x.w * kv[c];
      }
    }
  }
#pragma unroll
  for (int c = 0; c < kKeysPerLane; ++c) {
    const int64_t key = key0 + lane + 32 * c;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int row = warp * kRowsPerWarp + r;
      if (row >= rows || key >= end || key > first_row + row) s[c][r] = -INFINITY;
    }
  }
}

// Global rows to transposed fp32 shared memory, 16 bytes per load and several loads in flight per
// thread (one load at a time leaves these short kernels waiting on memory latency). The binding checks
// that rows start on 16 bytes and that D is a whole number of 16-byte pieces.
template <typename T, int kCount, int kStrideS>
__device__ __forceinline__ void load_transposed(const T* base, int64_t row_stride, int head_dim, int64_t first,
                                                int64_t valid, float scale, float* out) {
  constexpr int kVec = 16 / sizeof(T);
  const int pieces = head_dim / kVec;
#pragma unroll 4
  for (int idx = threadIdx.x; idx < kCount * pieces; idx += kThreads) {
    const int row = idx % kCount, piece = idx / kCount;  // a warp: 32 rows, one piece (no bank conflicts)
    float4 raw = make_float4(0.f, 0.f, 0.f, 0.f);
    if (row < valid) raw = *reinterpret_cast<const float4*>(base + (first + row) * row_stride + piece * kVec);
    const T* values = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int e = 0; e < kVec; ++e) out[(piece * kVec + e) * kStrideS + row] = to_float(values[e]) * scale;
  }
}

template <typename T>
__device__ void load_keys(const HeadView& p, float* k_s, int64_t key0) {
  const int64_t valid = p.end - key0 < kProfileKeys ? p.end - key0 : kProfileKeys;
  load_transposed<T, kProfileKeys, kProfileKeys>(static_cast<const T*>(p.k), p.k_row_stride, p.head_dim, key0, valid,
                                                 1.f, k_s);
}

template <typename T>
__device__ void load_rows(const HeadView& p, float* q_s, int64_t first_row, int rows) {
  load_transposed<T, kProfileRows, kProfileRows>(static_cast<const T*>(p.q), p.q_row_stride, p.head_dim, first_row,
                                                 rows, p.scale, q_s);
}

template <bool kMax>
__device__ __forceinline__ float warp_reduce(float x) {
  for (int offset = 16; offset > 0; offset /= 2) {
    const float y = __shfl_xor_sync(0xffffffffu, x, offset);
    x = kMax ? fmaxf(x, y) : x + y;
  }
  return x;
}

// Pass 1 of one head of the team over the keys in k_s.
template <typename T>
__device__ void row_stats_head(const HeadView& p, float* q_s, const float* k_s) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t key0 = p.block * kProfileKeys;
  for (int r0 = 0; r0 < p.count; r0 += kProfileRows) {
    const int rows = min(kProfileRows, p.count - r0);
    const int64_t first_row = static_cast<int64_t>(p.end) - p.count + r0;
    __syncthreads();
    load_rows<T>(p, q_s, first_row, rows);
    __syncthreads();
    Scores s;
    scores(q_s, k_s, p.head_dim, key0, first_row, rows, p.end, s);
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      float m = s[0][r];
#pragma unroll
      for (int c = 1; c < kKeysPerLane; ++c) m = fmaxf(m, s[c][r]);
      m = warp_reduce<true>(m);
      float e = 0.f;
#pragma unroll
      for (int c = 0; c < kKeysPerLane; ++c) e += s[c][r] == -INFINITY ? 0.f : __expf(s[c][r] - m);
      e = warp_reduce<false>(e);
      const int row = warp * kRowsPerWarp + r;
      if (lane == 0 && row < rows) {
        const int64_t at = p.block * p.count + r0 + row;
        p.block_max[at] = m;
        p.block_sum[at] = e;
      }
    }
  }
}

// Adds one step's per-distance sums of this CTA of kKeys keys (by_distance[r + kKeys - 1 - x]: row r of
// the step, key key0 + x) to the global ones.
template <int kKeys>
__device__ __forceinline__ void flush_distances(const HeadView& p, const float* by_distance,
                                                int64_t first_row, int64_t key0) {
  if (!p.distance) return;
  const int64_t lowest = first_row - key0 - (kKeys - 1);
  for (int i = threadIdx.x; i < kKeys + kProfileRows - 1; i += blockDim.x) {
    const int64_t d = lowest + i;
    if (d >= 0 && d < p.end && by_distance[i] != 0.f) atomicAdd(&p.distance[d], static_cast<double>(by_distance[i]));
  }
}

// Pass 2 of one head of the team over the keys in k_s.
template <typename T>
__device__ void profile_head(const HeadView& p, float* q_s, const float* k_s, const float (&filter)[kKeysPerLane]) {
  // Distances of this CTA's keys and the step's rows: row r (0..63) and key index x (0..127) have
  // d = first_row + r - (key0 + x), stored at r + (kProfileKeys - 1 - x).
  __shared__ float by_distance[kProfileKeys + kProfileRows - 1];
  __shared__ double column_part[kWarps][kProfileKeys];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t key0 = p.block * kProfileKeys;
  double column[kKeysPerLane] = {};
  for (int r0 = 0; r0 < p.count; r0 += kProfileRows) {
    const int rows = min(kProfileRows, p.count - r0);
    const int64_t first_row = static_cast<int64_t>(p.end) - p.count + r0;
    __syncthreads();
    load_rows<T>(p, q_s, first_row, rows);
    for (int i = threadIdx.x; i < kProfileKeys + kProfileRows - 1; i += kThreads) by_distance[i] = 0.f;
    __syncthreads();
    Scores s;
    scores(q_s, k_s, p.head_dim, key0, first_row, rows, p.end, s);
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int row = warp * kRowsPerWarp + r;
      if (row >= rows) continue;
      const float m = p.row_max[r0 + row], inv = 1.f / p.row_sum[r0 + row];
#pragma unroll
      for (int c = 0; c < kKeysPerLane; ++c) {
        if (s[c][r] == -INFINITY) continue;
        const float prob = __expf(s[c][r] - m) * inv * filter[c];
        column[c] += prob;
        if (p.distance) atomicAdd(&by_distance[row + kProfileKeys - 1 - (lane + 32 * c)], prob);
      }
    }
    __syncthreads();
    flush_distances<kProfileKeys>(p, by_distance, first_row, key0);
  }
#pragma unroll
  for (int c = 0; c < kKeysPerLane; ++c) column_part[warp][lane + 32 * c] = column[c];
  __syncthreads();
  const int64_t key = key0 + threadIdx.x;
  if (key < p.end) {
    double total = 0;
    for (int w = 0; w < kWarps; ++w) total += column_part[w][threadIdx.x];
    p.column[key] = total;
  }
}

// Pass 1 (kStats) or pass 2 on the CUDA cores: the CTA's keys load once, then each head of its team.
template <typename T, bool kStats>
__global__ void __launch_bounds__(kThreads) pass_kernel(const WindowProfileParams params) {
  const Team team = team_of(params);
  extern __shared__ float shared[];
  float* q_s = shared;
  float* k_s = shared + params.head_dim * kProfileRows;
  const int64_t key0 = team.block * kProfileKeys;
  float filter[kKeysPerLane];  // pass 2's key filter at this lane's keys
#pragma unroll
  for (int c = 0; c < kKeysPerLane; ++c) {
    const int64_t key = key0 + threadIdx.x % 32 + 32 * c;
    filter[c] = !kStats && params.key_filter && key < params.end ? static_cast<float>(params.key_filter[key]) : 1.f;
  }
  load_keys<T>(head_view<T, kProfileKeys>(params, team.first, team.block), k_s, key0);
  for (int x = team.first; x < team.first + team.count; ++x) {
    const HeadView head = head_view<T, kProfileKeys>(params, x, team.block);
    if constexpr (kStats) {
      row_stats_head<T>(head, q_s, k_s);
    } else {
      profile_head<T>(head, q_s, k_s, filter);
    }
  }
}

// ---- tensor cores ----------------------------------------------------------------------------------

constexpr int kPaddedRow = 128 + 8;  // elements per shared row: D <= 128, padded so ldmatrix has no conflicts
// Eight warps of 32 keys each, two CTAs per SM. A step's fixed costs (its rows' load, the barriers, the
// row reductions' shuffles and the cross-warp combination) are spread over 256 keys: with 16 keys per
// warp these issue-bound passes executed a third to a half more instructions.
constexpr int kMmaKeys = 256;  // keys per CTA
constexpr int kMmaWarps = 8;
constexpr int kMmaThreads = kMmaWarps * 32;
constexpr int kWarpKeys = kMmaKeys / kMmaWarps;  // 32
constexpr int kKeyAtoms = kWarpKeys / 8;         // n-atoms of a warp's scores
static_assert(kKeyAtoms % 2 == 0, "one ldmatrix_x4 of keys per two n-atoms and 16 values of d");

template <typename T>
struct MmaShared {
  using Element = T;
  T keys[kMmaKeys * kPaddedRow];
  T rows[2][kProfileRows * kPaddedRow];  // one step's rows computing, the next one's loading
  float warp_max[kMmaWarps][kProfileRows];  // pass 1: each warp's row maxima and sums over its keys
  float warp_sum[kMmaWarps][kProfileRows];
  float by_distance[kMmaKeys + kProfileRows - 1];  // pass 2, as in profile_head
  // Pass 2: each step row's log2(e) * maximum + log2(normaliser), per row buffer (0 past the step's rows).
  float row_base[2][kProfileRows];

  // Starts copying kRows rows (all `out` holds) from `first` into `out`, rows past `valid` zero-filled.
  template <int kRows>
  static __device__ void copy(const T* base, int64_t row_stride, int head_dim, int64_t first, int64_t valid,
                              T* out);
  // Makes the finished copies visible to their readers (ldmatrix reads them directly).
  static __device__ void publish() {}
};

// Starts copying kRows rows of D values from `first` (rows past `valid` zero-filled) into padded
// shared memory; the caller commits and waits.
template <typename T>
template <int kRows>
__device__ __forceinline__ void MmaShared<T>::copy(const T* base, int64_t row_stride, int head_dim, int64_t first,
                                                   int64_t valid, T* out) {
  // Slots of the largest row (16 pieces of 16 bytes), so that no division by a runtime D is needed;
  // pieces past D are skipped.
  constexpr int kPieces = kPaddedRow / 8 - 1;
  const int pieces = head_dim / 8;
  for (int idx = threadIdx.x; idx < kRows * kPieces; idx += kMmaThreads) {
    const int row = idx / kPieces, piece = idx % kPieces;
    if (piece >= pieces) continue;
    const bool ok = row < valid;
    detail::cp_async_16(out + row * kPaddedRow + piece * 8, base + (first + (ok ? row : 0)) * row_stride + piece * 8,
                        ok);
  }
}

// sc[a][n][e]: the raw score q.k (not yet scaled) of step row a * 16 + lane / 4 + 8 * (e / 2) and key
// key0 + 16 * warp + 8 * n + 2 * (lane % 4) + e % 2 (the mma accumulator layout); -inf where the key is
// not causal for the row, past the window's end, or the row is past the step's `rows`. The passes fold
// the scale into their base-2 exponentials (one FFMA and one EX2 per score), which -inf passes through
// as a zero, so most of a step needs no per-score test at all.
using MmaScores = float[4][kKeyAtoms][4];

__device__ __forceinline__ int mma_row(int a, int e) { return a * 16 + (threadIdx.x % 32) / 4 + 8 * (e / 2); }
__device__ __forceinline__ int mma_key(int n, int e) {
  return kWarpKeys * (threadIdx.x / 32) + 8 * n + 2 * (threadIdx.x % 4) + e % 2;
}

// One step of a team's work: head view `p`, window rows [first_row, first_row + rows) (the step's
// r0-th onwards) in shared memory at `rows_s`. `whole`: every row of the step is there and keeps every
// key of the block (the block ends before the step's first row and before the window's end).
template <typename T>
struct MmaStep {
  HeadView p;
  int item, step, steps, r0, rows;  // item: the CTA's step count so far (selects the row buffers)
  int64_t first_row, key0;
  bool whole;
  T* rows_s;
};

template <typename T>
__device__ __forceinline__ void mma_scores(const MmaShared<T>& s, const MmaStep<T>& st, MmaScores& sc) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int a = 0; a < 4; ++a)
#pragma unroll
    for (int n = 0; n < kKeyAtoms; ++n) sc[a][n][0] = sc[a][n][1] = sc[a][n][2] = sc[a][n][3] = 0.f;
  // Unrolled to the largest D with a bound check: fixed shared-memory offsets instead of a loop's
  // address arithmetic in this short, issue-bound step.
  const int steps = st.p.head_dim / 16;
#pragma unroll
  for (int kk = 0; kk < kPaddedRow / 16; ++kk) {
    if (kk >= steps) break;
    uint32_t qa[4][4];
#pragma unroll
    for (int a = 0; a < 4; ++a) {
      detail::ldmatrix_x4(qa[a], &st.rows_s[(a * 16 + lane % 16) * kPaddedRow + kk * 16 + (lane / 16) * 8]);
    }
    // Keys 16nb .. 16nb + 15 of the warp: n-atoms 2nb (b[nb][0..1]) and 2nb + 1 (b[nb][2..3]).
    uint32_t b[kKeyAtoms / 2][4];
#pragma unroll
    for (int nb = 0; nb < kKeyAtoms / 2; ++nb) {
      detail::ldmatrix_x4(b[nb], &s.keys[(warp * kWarpKeys + nb * 16 + lane % 8 + (lane / 16) * 8) * kPaddedRow +
                                         kk * 16 + ((lane / 8) % 2) * 8]);
    }
#pragma unroll
    for (int a = 0; a < 4; ++a)
#pragma unroll
      for (int nb = 0; nb < kKeyAtoms / 2; ++nb) {
        detail::Mma<T>::run(sc[a][2 * nb], qa[a], b[nb][0], b[nb][1]);
        detail::Mma<T>::run(sc[a][2 * nb + 1], qa[a], b[nb][2], b[nb][3]);
      }
  }
  if (st.whole) return;
#pragma unroll
  for (int a = 0; a < 4; ++a)
#pragma unroll
    for (int n = 0; n < kKeyAtoms; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = mma_row(a, e);
        const int64_t key = st.key0 + mma_key(n, e);
        if (row >= st.rows || key >= st.p.end || key > st.first_row + row) sc[a][n][e] = -INFINITY;
      }
}

// Runs body(step) for every step of every head of this CTA's team, head by head. The keys load once;
// each step's rows load while the step before computes (two row buffers, one barrier per step). In pass
// 2 the step's row statistics come along the same way, as MmaShared::row_base: their loads are issued
// before the step before computes and stored after it, so the body never waits on them.
// Shared: MmaShared<T> or WgmmaShared<T> (their keys, rows, row_base, copy and publish).
template <typename Shared, typename Body>
__device__ __forceinline__ void for_each_team_step(const WindowProfileParams& params, Shared& s, Body&& body) {
  using T = typename Shared::Element;
  const Team team = team_of(params);
  const int steps = (params.count + kProfileRows - 1) / kProfileRows, items = team.count * steps;
  // Item i is step `step` of head position `position`; both are counted along (no division by a
  // runtime value).
  auto step_of = [&](int position, int step, int i) {
    MmaStep<T> st;
    st.p = head_view<T, kMmaKeys>(params, position, team.block);
    st.item = i;
    st.step = step;
    st.steps = steps;
    st.r0 = step * kProfileRows;
    st.rows = min(kProfileRows, params.count - st.r0);
    st.first_row = static_cast<int64_t>(params.end) - params.count + st.r0;
    st.key0 = team.block * kMmaKeys;
    st.whole = st.rows == kProfileRows &&
               st.key0 + kMmaKeys <= min(static_cast<int64_t>(params.end), st.first_row + 1);
    st.rows_s = s.rows[i % 2];
    return st;
  };
  // Starts loading item i's rows (only the row pointer and range are needed for that).
  auto copy_rows = [&](int position, int step, int i) {
    const T* q = static_cast<const T*>(params.q) + params.heads[position] * params.q_head_stride;
    const int r0 = step * kProfileRows;
    Shared::template copy<kProfileRows>(q, params.q_row_stride, params.head_dim,
                                        static_cast<int64_t>(params.end) - params.count + r0,
                                        min(kProfileRows, params.count - r0), s.rows[i % 2]);
    detail::cp_async_commit();
  };
  auto advance = [&](int& position, int& step) {
    if (++step == steps) step = 0, ++position;
  };
  // Pass 2, thread r < 64: the statistics of row r of item (position, step), loaded into max and sum.
  const bool with_stats = params.row_max != nullptr;
  auto load_stats = [&](int position, int step, float& max, float& sum) {
    const int r = static_cast<int>(threadIdx.x), row = step * kProfileRows + r;
    max = -INFINITY;
    sum = 1.f;
    if (!with_stats || r >= kProfileRows || row >= params.count) return;
    const int64_t at = static_cast<int64_t>(params.slots[position]) * params.count + row;
    max = params.row_max[at];
    sum = params.row_sum[at];
  };
  auto store_stats = [&](float max, float sum, int i) {
    if (with_stats && threadIdx.x < kProfileRows) {
      s.row_base[i % 2][threadIdx.x] = max == -INFINITY ? 0.f : max * kLog2e + __log2f(sum);
    }
  };
  int position = team.first, step = 0;  // of item i + 1 in the loop
  int current_position = position, current_step = step;  // of item i
  const int64_t key0 = team.block * kMmaKeys, valid = min(static_cast<int64_t>(kMmaKeys), params.end - key0);
  const T* keys = static_cast<const T*>(params.k) + (params.heads[team.first] / params.group) * params.k_head_stride;
  Shared::template copy<kMmaKeys>(keys, params.k_row_stride, params.head_dim, key0, valid, s.keys);
  copy_rows(position, step, 0);
  float max, sum;
  load_stats(position, step, max, sum);
  store_stats(max, sum, 0);
  advance(position, step);
  for (int i = 0; i < items; ++i) {
    if (i + 1 < items) {
      copy_rows(position, step, i + 1);  // into the buffer item i - 1 used: the barrier below it freed it
      load_stats(position, step, max, sum);
      detail::cp_async_wait<1>();
    } else {
      detail::cp_async_wait<0>();
    }
    Shared::publish();
    __syncthreads();
    // Built here rather than carried from the step before: a step's view is some 40 registers, which
    // the body's scores need.
    body(step_of(current_position, current_step, i));
    __syncthreads();
    if (i + 1 < items) {
      store_stats(max, sum, i + 1);
      current_position = position;
      current_step = step;
      advance(position, step);
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kMmaThreads, 2) row_stats_mma_kernel(const WindowProfileParams params) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  MmaShared<T>& s = *reinterpret_cast<MmaShared<T>*>(shared_raw);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for_each_team_step(params, s, [&](const MmaStep<T>& st) {
    MmaScores sc;
    mma_scores(s, st, sc);
    // Each row's maximum and sum over the warp's 32 keys: 8 values per thread, then its quad. In
    // log2 units: c = scale * log2(e), so exp(scale * x - m) = exp2(c * x - c * raw max).
    const float c = st.p.scale * kLog2e;
#pragma unroll
    for (int a = 0; a < 4; ++a)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float m = -INFINITY;
#pragma unroll
        for (int n = 0; n < kKeyAtoms; ++n) m = fmaxf(m, fmaxf(sc[a][n][2 * h], sc[a][n][2 * h + 1]));
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
        const float base = m == -INFINITY ? 0.f : m * c;  // a row with no key here sums to 0
        float e = 0.f;
#pragma unroll
        for (int n = 0; n < kKeyAtoms; ++n)
#pragma unroll
          for (int x = 2 * h; x < 2 * h + 2; ++x) e += exp2f(fmaf(sc[a][n][x], c, -base));
        e += __shfl_xor_sync(0xffffffffu, e, 1);
        e += __shfl_xor_sync(0xffffffffu, e, 2);
        if (lane % 4 == 0) {
          s.warp_max[warp][mma_row(a, 2 * h)] = m * st.p.scale;
          s.warp_sum[warp][mma_row(a, 2 * h)] = e;
        }
      }
    __syncthreads();
    const int row = threadIdx.x;
    if (row < st.rows) {  // the warps' partial results, combined by log-sum-exp
      float m = -INFINITY, e = 0.f;
      for (int w = 0; w < kMmaWarps; ++w) m = fmaxf(m, s.warp_max[w][row]);
      for (int w = 0; w < kMmaWarps; ++w) {
        if (s.warp_max[w][row] != -INFINITY) e += s.warp_sum[w][row] * __expf(s.warp_max[w][row] - m);
      }
      const int64_t at = st.p.block * st.p.count + st.r0 + row;
      st.p.block_max[at] = m;
      st.p.block_sum[at] = e;
    }
  });
}

// Pass 2's sums of one step: this thread's probabilities per key into step_column and, kDistances, the
// CTA's per-distance sums (by_distance). prob = exp(scale * x - row max) / row sum = exp2(c * x - base),
// 0 where x is -inf (rows past the step's have base 0 and only -inf scores).
template <bool kDistances, typename T>
__device__ __forceinline__ void add_probabilities(MmaShared<T>& s, const MmaStep<T>& st, const MmaScores& sc,
                                                  const float (&filter)[kKeyAtoms][2],
                                                  float (&step_column)[kKeyAtoms][2]) {
  const float c = st.p.scale * kLog2e;
  const float* row_base = s.row_base[st.item % 2];
#pragma unroll
  for (int a = 0; a < 4; ++a)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = mma_row(a, 2 * h);
      const float base = row_base[row];
#pragma unroll
      for (int n = 0; n < kKeyAtoms; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float x = sc[a][n][2 * h + e];
          const float prob = exp2f(fmaf(x, c, -base));
          step_column[n][e] += prob;
          if (kDistances && x != -INFINITY) {
            atomicAdd(&s.by_distance[row + kMmaKeys - 1 - mma_key(n, e)], prob * filter[n][e]);
          }
        }
    }
}

template <typename T>
__global__ void __launch_bounds__(kMmaThreads, 2) profile_mma_kernel(const WindowProfileParams params) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  MmaShared<T>& s = *reinterpret_cast<MmaShared<T>*>(shared_raw);
  const int lane = threadIdx.x % 32;
  const int64_t key0 = (blockIdx.x / params.num_teams) * static_cast<int64_t>(kMmaKeys);
  float filter[kKeyAtoms][2];  // this thread's keys: n, e % 2 as in mma_key
#pragma unroll
  for (int n = 0; n < kKeyAtoms; ++n)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int64_t key = key0 + mma_key(n, e);
      filter[n][e] = params.key_filter && key < params.end ? static_cast<float>(params.key_filter[key]) : 1.f;
    }
  double column[kKeyAtoms][2];  // the current head's sums over its steps so far
  for_each_team_step(params, s, [&](const MmaStep<T>& st) {
    const HeadView& p = st.p;
    if (st.step == 0) {
#pragma unroll
      for (int n = 0; n < kKeyAtoms; ++n) column[n][0] = column[n][1] = 0.0;
    }
    if (p.distance) {
      for (int i = threadIdx.x; i < kMmaKeys + kProfileRows - 1; i += kMmaThreads) s.by_distance[i] = 0.f;
      __syncthreads();
    }
    MmaScores sc;
    mma_scores(s, st, sc);
    float step_column[kKeyAtoms][2] = {};
    if (p.distance) {
      add_probabilities<true>(s, st, sc, filter, step_column);
    } else {
      add_probabilities<false>(s, st, sc, filter, step_column);
    }
    // A key's rows are spread over the 8 quads of the warp (lane / 4).
#pragma unroll
    for (int n = 0; n < kKeyAtoms; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float x = step_column[n][e];
        x += __shfl_xor_sync(0xffffffffu, x, 4);
        x += __shfl_xor_sync(0xffffffffu, x, 8);
        x += __shfl_xor_sync(0xffffffffu, x, 16);
        column[n][e] += x;
      }
    if (p.distance) {
      __syncthreads();
      flush_distances<kMmaKeys>(p, s.by_distance, st.first_row, st.key0);
    }
    if (st.step + 1 == st.steps && lane < 4) {  // the first quad holds the warp's column sums
#pragma unroll
      for (int n = 0; n < kKeyAtoms; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int64_t key = st.key0 + mma_key(n, e);
          if (key < p.end) p.column[key] = column[n][e] * filter[n][e];
        }
    }
  });
}

// ---- tensor cores on sm_90a: wgmma ------------------------------------------------------------

// D = 128 on Hopper: the same CTAs (256 keys, a team of heads, 64-row steps), two warpgroups of 128 keys
// each, keys and rows in the 128-byte swizzled layout wgmma reads through descriptors. Pass 1 computes
// S = Q K^T (window rows along M: a row's keys lie in one thread and its quad), pass 2 S^T = K Q^T (keys
// along M: a key's rows lie in one thread and its quad), so each pass reduces in the direction that
// needs only two shuffles; either way a thread holds 64 scores of a step. The mma.sync passes spent most
// of their issue slots on fragment loads and cross-lane reductions around 128 mma.sync per warp and step.
namespace sm90_profile {

using namespace sm90;

constexpr int kD = 128;
constexpr int kGroupKeys = kMmaKeys / 2;  // keys per warpgroup
static_assert(kGroupKeys == 128 && kProfileRows == 64, "two m64n64 blocks of keys per warpgroup, one of rows");

template <typename T>
struct WgmmaShared {
  using Element = T;
  alignas(1024) T keys[kMmaKeys * kD];              // Swizzled<kMmaKeys>
  alignas(1024) T rows[2][kProfileRows * kD];       // Swizzled<kProfileRows>, as MmaShared::rows
  float group_max[2][kProfileRows];                 // pass 1: each warpgroup's row maxima and sums
  float group_sum[2][kProfileRows];
  alignas(16) float row_base[2][kProfileRows];      // pass 2, as in MmaShared (read as float2)
  float by_distance[kMmaKeys + kProfileRows - 1];   // pass 2, as in profile_head

  // D = 128 values of kRows rows from `first` (rows past `valid` zero-filled) into swizzled rows. A
  // thread copies piece tid % 16 of rows tid / 16 + 16 j: the same swizzle phase for every j, so its
  // shared and global addresses step by constants.
  template <int kRows>
  static __device__ __forceinline__ void copy(const T* base, int64_t row_stride, int /*head_dim*/, int64_t first,
                                              int64_t valid, T* out) {
    constexpr int kPieces = kD / 8;  // 16-byte pieces per row
    constexpr int kRowsPerPass = kMmaThreads / kPieces;
    static_assert(kRows % kRowsPerPass == 0 && kRowsPerPass % 8 == 0, "whole passes, one swizzle phase");
    const int row = threadIdx.x / kPieces, piece = threadIdx.x % kPieces;
    T* to = out + Swizzled<kRows>::offset(row, piece);
    const T* from = base + (first + row) * row_stride + piece * 8;
#pragma unroll
    for (int j = 0; j < kRows / kRowsPerPass; ++j) {
      const bool ok = row + j * kRowsPerPass < valid;
      detail::cp_async_16(to + j * kRowsPerPass * 64, ok ? from + j * kRowsPerPass * row_stride : base, ok);
    }
  }
  // wgmma reads shared memory through the async proxy: each thread fences its finished copies.
  static __device__ __forceinline__ void publish() { fence_async_proxy(); }
};

template <typename T>
size_t shared_bytes() { return sizeof(WgmmaShared<T>) + 1024; }  // slack for the 1024-byte alignment

// The descriptor of k-step kk (16 values of d) of swizzled row `first`, from the descriptor of row 0 of
// a region of kRows rows of bf16/fp16: the address field counts 16 bytes. Added in an opaque asm, as
// the compiler otherwise hoists the loop-invariant key descriptors out of the loop and spills them.
template <int kRows, int kFirst, int kK>
__device__ __forceinline__ uint64_t advance_descriptor(uint64_t region) {
  constexpr uint64_t kOffset = ((kK / 4) * kRows * 128 + kFirst * 128 + (kK % 4) * 32) / 16;
  uint64_t d;
  asm volatile("add.s64 %0, %1, %2;\n" : "=l"(d) : "l"(region), "n"(kOffset));
  return d;
}

// body(std::integral_constant<int, kk>) for the k-steps kk = 0 .. kD / 16 - 1 (16 values of d each).
template <typename Body, int... kK>
__device__ __forceinline__ void for_each_k_step(Body&& body, std::integer_sequence<int, kK...>) {
  (body(std::integral_constant<int, kK>()), ...);
}
template <typename Body>
__device__ __forceinline__ void for_each_k_step(Body&& body) {
  for_each_k_step(body, std::make_integer_sequence<int, kD / 16>());
}

// Both passes' scores of a step, sc[b][n][2h + e] as two m64n64 accumulators (b = 0, 1). Pass 1
// (kKeysAlongM false): window row 16 warp + 8h + lane / 4 and key 128 group + 64b + 8n + 2 (lane % 4) + e.
// Pass 2 (true): key 128 group + 64b + 16 warp + 8h + lane / 4 and row 8n + 2 (lane % 4) + e. Raw q.k,
// -inf where the key is not causal for the row, past the window's end, or the row past the step's rows.
// issue_scores starts both blocks' wgmmas, block b in commit group b; finish_scores<b> waits for block b
// and masks it, so that a pass works on block 0 while the tensor cores compute block 1.
template <bool kKeysAlongM, int kBlock, typename T>
__device__ __forceinline__ void issue_block(uint64_t rows0, uint64_t keys0, float (&acc)[8][4]) {
  for_each_k_step([&](auto kk) {
    constexpr int kK = decltype(kk)::value;
    const uint64_t rows = advance_descriptor<kProfileRows, 0, kK>(rows0);
    const uint64_t keys = advance_descriptor<kMmaKeys, 64 * kBlock, kK>(keys0);
    if (kKeysAlongM) {
      Wgmma<T>::qk(flat<32>(acc), keys, rows, kK > 0);
    } else {
      Wgmma<T>::qk(flat<32>(acc), rows, keys, kK > 0);
    }
  });
  wgmma_commit();
}

template <bool kKeysAlongM, typename T>
__device__ __forceinline__ void issue_scores(const WgmmaShared<T>& s, const MmaStep<T>& st, float (&sc)[2][8][4]) {
  const int group = threadIdx.x / 128;
  // Two descriptors per step; the others differ from them by constants (in units of 16 bytes).
  const uint64_t rows0 = descriptor(st.rows_s, 16, 1024), keys0 = descriptor(s.keys + group * kGroupKeys * 64, 16, 1024);
  wgmma_fence();
  issue_block<kKeysAlongM, 0, T>(rows0, keys0, sc[0]);
  issue_block<kKeysAlongM, 1, T>(rows0, keys0, sc[1]);
}

template <bool kKeysAlongM, int kBlock, typename T>
__device__ __forceinline__ void finish_scores(const MmaStep<T>& st, float (&acc)[8][4]) {
  wgmma_wait<1 - kBlock>();
  fence_registers(flat<32>(acc));
  if (st.whole) return;
  const int group = threadIdx.x / 128, warp = (threadIdx.x % 128) / 32, lane = threadIdx.x % 32;
  // An element's row and key are this thread's first ones plus offsets known at compile time; the
  // thread's bounds are moved to the other side, so that each element compares constants (the
  // compiler would otherwise keep 64 positions per thread across the loop, and spill them).
  const int along_m = 16 * warp + lane / 4, along_n = 2 * (lane % 4);
  const int row0 = kKeysAlongM ? along_n : along_m;
  const int64_t key0 = st.key0 + group * kGroupKeys + kBlock * 64 + (kKeysAlongM ? along_m : along_n);
  auto clamp = [](int64_t x) { return static_cast<int>(x < -(1 << 20) ? -(1 << 20) : x > (1 << 20) ? 1 << 20 : x); };
  const int rows_left = st.rows - row0, keys_left = clamp(st.p.end - key0);
  const int causal = clamp(st.first_row + row0 - key0);  // key > first_row + row: key offset - row offset > this
#pragma unroll
  for (int n = 0; n < 8; ++n)
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      const int m_offset = 8 * (x / 2), n_offset = 8 * n + x % 2;
      const int row_offset = kKeysAlongM ? n_offset : m_offset;
      const int key_offset = kKeysAlongM ? m_offset : n_offset;
      if (row_offset >= rows_left || key_offset >= keys_left || key_offset - row_offset > causal) acc[n][x] = -INFINITY;
    }
}

// Pass 1: the block statistics.
template <typename T>
__device__ __forceinline__ void row_stats_pass(const WindowProfileParams& params, WgmmaShared<T>& s) {
  const int group = threadIdx.x / 128, warp = (threadIdx.x % 128) / 32, lane = threadIdx.x % 32;
  for_each_team_step(params, s, [&](const MmaStep<T>& st) {
    float sc[2][8][4];
    issue_scores<false>(s, st, sc);
    // Each row's maximum and sum over the warpgroup's 128 keys (32 values per thread, then its quad),
    // in log2 units as in row_stats_mma_kernel: block 0's while block 1 computes, then block 1's,
    // combined by log-sum-exp.
    const float c = st.p.scale * kLog2e;
    float first_max[2], first_base[2], first_sum[2];
    auto block_max = [](const float (&acc)[8][4], int h) {
      float m = -INFINITY;
#pragma unroll
      for (int n = 0; n < 8; ++n) m = fmaxf(m, fmaxf(acc[n][2 * h], acc[n][2 * h + 1]));
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
      return fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
    };
    auto block_sum = [c](const float (&acc)[8][4], int h, float base) {
      float e = 0.f;
#pragma unroll
      for (int n = 0; n < 8; ++n) e += exp2f(fmaf(acc[n][2 * h], c, -base)) + exp2f(fmaf(acc[n][2 * h + 1], c, -base));
      return e;
    };
    finish_scores<false, 0>(st, sc[0]);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      first_max[h] = block_max(sc[0], h);
      first_base[h] = first_max[h] == -INFINITY ? 0.f : first_max[h] * c;  // a row with no key here sums to 0
      first_sum[h] = block_sum(sc[0], h, first_base[h]);
    }
    finish_scores<false, 1>(st, sc[1]);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float m = fmaxf(block_max(sc[1], h), first_max[h]);
      const float base = m == -INFINITY ? 0.f : m * c;
      float e = first_sum[h] * exp2f(first_base[h] - base) + block_sum(sc[1], h, base);
      e += __shfl_xor_sync(0xffffffffu, e, 1);
      e += __shfl_xor_sync(0xffffffffu, e, 2);
      if (lane % 4 == 0) {
        const int row = 16 * warp + 8 * h + lane / 4;
        s.group_max[group][row] = m * st.p.scale;
        s.group_sum[group][row] = e;
      }
    }
    __syncthreads();
    const int row = threadIdx.x;
    if (row < st.rows) {  // the two warpgroups' results, combined by log-sum-exp
      const float m0 = s.group_max[0][row], m1 = s.group_max[1][row], m = fmaxf(m0, m1);
      float e = 0.f;
      if (m0 != -INFINITY) e += s.group_sum[0][row] * __expf(m0 - m);
      if (m1 != -INFINITY) e += s.group_sum[1][row] * __expf(m1 - m);
      const int64_t at = st.p.block * st.p.count + st.r0 + row;
      st.p.block_max[at] = m;
      st.p.block_sum[at] = e;
    }
  });
}

// Pass 2's sums over block kBlock of a step's scores (acc as finish_scores<true, kBlock> leaves it): for
// each key of this thread (h) the sum over its 16 rows into key_sums and, kDistances, the CTA's
// per-distance sums. base[n][e]: the row statistics (MmaShared::row_base) of the thread's rows.
template <bool kDistances, int kBlock, typename T>
__device__ __forceinline__ void add_probabilities(WgmmaShared<T>& s, const float (&acc)[8][4], const float (&base)[8][2],
                                                  float c, const float (&filter)[2], float (&key_sums)[2]) {
  const int group = threadIdx.x / 128, warp = (threadIdx.x % 128) / 32, lane = threadIdx.x % 32;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int key = group * kGroupKeys + kBlock * 64 + 16 * warp + 8 * h + lane / 4;  // within the CTA's block
    float sum = 0.f;
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float x = acc[n][2 * h + e];
        const float prob = exp2f(fmaf(x, c, -base[n][e]));
        sum += prob;
        if (kDistances && x != -INFINITY) {
          atomicAdd(&s.by_distance[8 * n + 2 * (lane % 4) + e + kMmaKeys - 1 - key], prob * filter[h]);
        }
      }
    key_sums[h] = sum;
  }
}

// Pass 2: the column and distance sums.
template <typename T>
__device__ __forceinline__ void profile_pass(const WindowProfileParams& params, WgmmaShared<T>& s) {
  const int group = threadIdx.x / 128, warp = (threadIdx.x % 128) / 32, lane = threadIdx.x % 32;
  const int64_t key0 = (blockIdx.x / params.num_teams) * static_cast<int64_t>(kMmaKeys);
  // This thread's keys (b, h): key0 + 128 group + 64b + 16 warp + 8h + lane / 4.
  auto key_of = [&](int b, int h) { return key0 + group * kGroupKeys + b * 64 + 16 * warp + 8 * h + lane / 4; };
  float filter[2][2];
  double column[2][2];  // the current head's sums over its steps so far
#pragma unroll
  for (int b = 0; b < 2; ++b)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t key = key_of(b, h);
      filter[b][h] = params.key_filter && key < params.end ? static_cast<float>(params.key_filter[key]) : 1.f;
    }
  for_each_team_step(params, s, [&](const MmaStep<T>& st) {
    const HeadView& p = st.p;
    if (st.step == 0) column[0][0] = column[0][1] = column[1][0] = column[1][1] = 0.0;
    if (p.distance) {
      for (int i = threadIdx.x; i < kMmaKeys + kProfileRows - 1; i += kMmaThreads) s.by_distance[i] = 0.f;
      __syncthreads();
    }
    float sc[2][8][4];
    issue_scores<true>(s, st, sc);
    float base[8][2];  // while the tensor cores compute: the statistics of this thread's rows
    const float* row_base = s.row_base[st.item % 2];
#pragma unroll
    for (int n = 0; n < 8; ++n) {
      const float2 pair = *reinterpret_cast<const float2*>(&row_base[8 * n + 2 * (lane % 4)]);
      base[n][0] = pair.x;
      base[n][1] = pair.y;
    }
    const float c = p.scale * kLog2e;
    float key_sums[2][2];
    auto add_block = [&](auto block) {
      constexpr int kBlock = decltype(block)::value;
      finish_scores<true, kBlock>(st, sc[kBlock]);
      if (p.distance) {
        add_probabilities<true, kBlock>(s, sc[kBlock], base, c, filter[kBlock], key_sums[kBlock]);
      } else {
        add_probabilities<false, kBlock>(s, sc[kBlock], base, c, filter[kBlock], key_sums[kBlock]);
      }
    };
    add_block(std::integral_constant<int, 0>());  // while block 1 computes
    add_block(std::integral_constant<int, 1>());
#pragma unroll
    for (int b = 0; b < 2; ++b)
#pragma unroll
      for (int h = 0; h < 2; ++h) {  // a key's rows are spread over its quad
        float x = key_sums[b][h];
        x += __shfl_xor_sync(0xffffffffu, x, 1);
        x += __shfl_xor_sync(0xffffffffu, x, 2);
        column[b][h] += x;
      }
    if (p.distance) {
      __syncthreads();
      flush_distances<kMmaKeys>(p, s.by_distance, st.first_row, st.key0);
    }
    if (st.step + 1 == st.steps && lane % 4 == 0) {
#pragma unroll
      for (int b = 0; b < 2; ++b)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int64_t key = key_of(b, h);
          if (key < p.end) p.column[key] = column[b][h] * filter[b][h];
        }
    }
  });
}

template <typename T, bool kStats>
__global__ void __launch_bounds__(kMmaThreads, 2) pass_kernel(const WindowProfileParams params) {
#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __trap();  // built for a GPU without wgmma: the host side only launches this kernel on sm_90
#else
  extern __shared__ unsigned char shared_raw[];
  WgmmaShared<T>& s = *reinterpret_cast<WgmmaShared<T>*>(align_1024(shared_raw));
  if constexpr (kStats) {
    row_stats_pass(params, s);
  } else {
    profile_pass(params, s);
  }
#endif
}

}  // namespace sm90_profile

// Whether the current GPU runs sm_90a code (the wgmma kernels).
bool on_sm90() {
  int device = 0, major = 0;
  return cudaGetDevice(&device) == cudaSuccess &&
         cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess && major == 9;
}

// ---- between the passes ------------------------------------------------------------------------

// Each window row's maximum and normaliser from its block statistics, by log-sum-exp: one CTA per output
// row slot and 64 window rows, groups of 64 threads taking every kReduceGroups-th block, then combined.
constexpr int kReduceGroups = 16;

__global__ void __launch_bounds__(kProfileRows * kReduceGroups)
    reduce_row_stats_kernel(const float* block_max, const float* block_sum, int32_t blocks, int32_t count,
                            float* row_max, float* row_sum) {
  __shared__ float part_max[kReduceGroups][kProfileRows], part_sum[kReduceGroups][kProfileRows];
  const int slot = blockIdx.x, x = threadIdx.x % kProfileRows, group = threadIdx.x / kProfileRows;
  const int row = blockIdx.y * kProfileRows + x;
  float m = -INFINITY, l = 0.f;
  if (row < count) {
    for (int b = group; b < blocks; b += kReduceGroups) {
      const int64_t at = (static_cast<int64_t>(slot) * blocks + b) * count + row;
      const float bm = block_max[at];
      if (bm == -INFINITY) continue;  // the block has no key this row sees
      const float next = fmaxf(m, bm);
      l = l * __expf(m - next) + block_sum[at] * __expf(bm - next);
      m = next;
    }
  }
  part_max[group][x] = m;
  part_sum[group][x] = l;
  __syncthreads();
  if (group != 0 || row >= count) return;
  for (int g = 1; g < kReduceGroups; ++g) m = fmaxf(m, part_max[g][x]);
  l = 0.f;
  for (int g = 0; g < kReduceGroups; ++g) {
    if (part_max[g][x] != -INFINITY) l += part_sum[g][x] * __expf(part_max[g][x] - m);
  }
  row_max[static_cast<int64_t>(slot) * count + row] = m;
  row_sum[static_cast<int64_t>(slot) * count + row] = l;
}

// Whether inputs of this type and D run on the tensor-core kernels, and on the wgmma ones among them.
bool uses_mma(ProfileDType dtype, int head_dim) { return dtype != ProfileDType::kFloat32 && head_dim % 16 == 0; }
bool uses_wgmma(ProfileDType dtype, int head_dim) {
  return uses_mma(dtype, head_dim) && head_dim == sm90_profile::kD && on_sm90();
}

template <typename T>
constexpr ProfileDType dtype_of() {
  return std::is_same<T, __nv_bfloat16>::value ? ProfileDType::kBFloat16
         : std::is_same<T, __half>::value     ? ProfileDType::kFloat16
                                               : ProfileDType::kFloat32;
}

template <typename Kernel>
cudaError_t launch_kernel(Kernel kernel, const WindowProfileParams& p, int keys, int threads, size_t bytes,
                          cudaStream_t stream) {
  const cudaError_t set = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (set != cudaSuccess) return set;
  kernel<<<(p.end + keys - 1) / keys * p.num_teams, threads, bytes, stream>>>(p);
  return cudaGetLastError();
}

// mma: uses_mma for these inputs (never for fp32, which has no tensor-core kernels); D = 128 on sm_90
// takes the wgmma kernels.
template <typename T>
cudaError_t launch(const WindowProfileParams& p, bool stats, bool mma, cudaStream_t stream) {
  if constexpr (!std::is_same<T, float>::value) {
    if (uses_wgmma(dtype_of<T>(), p.head_dim)) {
      return launch_kernel(stats ? sm90_profile::pass_kernel<T, true> : sm90_profile::pass_kernel<T, false>, p, kMmaKeys,
                           kMmaThreads, sm90_profile::shared_bytes<T>(), stream);
    }
    if (mma) {
      return launch_kernel(stats ? row_stats_mma_kernel<T> : profile_mma_kernel<T>, p, kMmaKeys, kMmaThreads,
                           sizeof(MmaShared<T>), stream);
    }
  }
  return launch_kernel(stats ? pass_kernel<T, true> : pass_kernel<T, false>, p, kProfileKeys, kThreads,
                       shared_bytes(p.head_dim), stream);
}

cudaError_t dispatch(const WindowProfileParams& p, ProfileDType dtype, bool stats, cudaStream_t stream) {
  if (p.head_dim < 1 || p.head_dim > 128 || p.count < 1 || p.end < p.count || p.num_teams < 1 ||
      p.num_teams > kMaxProfileHeads || p.group < 1) {
    return cudaErrorInvalidValue;
  }
  const bool mma = uses_mma(dtype, p.head_dim);
  switch (dtype) {
    case ProfileDType::kBFloat16: return launch<__nv_bfloat16>(p, stats, mma, stream);
    case ProfileDType::kFloat16: return launch<__half>(p, stats, mma, stream);
    case ProfileDType::kFloat32: return launch<float>(p, stats, mma, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

bool window_profile_accepts(uintptr_t base, int64_t row_stride, int head_dim, int element_size) {
  return head_dim >= 1 && head_dim <= 128 && base % 16 == 0 && (row_stride * element_size) % 16 == 0 &&
         (head_dim * element_size) % 16 == 0;
}

int32_t profile_blocks(int32_t end, ProfileDType dtype, int head_dim) {
  const int keys = uses_mma(dtype, head_dim) ? kMmaKeys : kProfileKeys;
  return (end + keys - 1) / keys;
}

cudaError_t launch_window_row_stats(const WindowProfileParams& p, ProfileDType dtype, cudaStream_t stream) {
  return dispatch(p, dtype, true, stream);
}

cudaError_t launch_window_profile(const WindowProfileParams& p, ProfileDType dtype, cudaStream_t stream) {
  return dispatch(p, dtype, false, stream);
}

cudaError_t launch_window_row_reduce(const float* block_max, const float* block_sum, int32_t slots, int32_t blocks,
                                     int32_t count, float* row_max, float* row_sum, cudaStream_t stream) {
  if (slots < 1 || blocks < 1 || count < 1) return cudaErrorInvalidValue;
  const dim3 grid(slots, (count + kProfileRows - 1) / kProfileRows);
  reduce_row_stats_kernel<<<grid, kProfileRows * kReduceGroups, 0, stream>>>(block_max, block_sum, blocks, count,
                                                                             row_max, row_sum);
  return cudaGetLastError();
}

}  // namespace mmi::cuda
