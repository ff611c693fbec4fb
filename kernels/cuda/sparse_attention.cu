// Tensor-core executor for SparsePlans (see sparse_attention.cuh for the contract).
// FlashAttention-2 structure: 4 warps, 16 query rows each; mma.sync m16n8k16 with ldmatrix from padded
// shared memory; K/V chunks gathered row by row with cp.async (a key row is D contiguous values, so a
// permuted or gathered chunk costs the same as a contiguous one) and double-buffered.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "kernels/cuda/sparse_attention.cuh"
#include "kernels/vertical_slash_walk.h"

namespace mmi::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerWarp = kBlockM / kWarps;  // 32: two m16 atoms share every K and V fragment
constexpr int kMAtoms = kRowsPerWarp / 16;
static_assert(kThreads == kBlockM, "one query row per thread when loading a tile");
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
  int32_t len[2];
  int32_t contiguous[2];  // the chunk's keys are len consecutive positions from cols[0]
  uint32_t keep[2][kBlockM][kBlockN / 32];  // rule-tested chunks: bit c of row r = element kept
  MaskRule rule;
};

// Bits [start, start + 64) of a bitmap as one word (bit t = bitmap bit start + t); bits below 0 read 0.
// Bitmaps carry one spare word at the end, so reading the word after the last is safe.
__device__ __forceinline__ uint64_t bit_window(const uint64_t* words, int64_t start) {
  if (start <= -64) return 0;
  const int shift = start < 0 ? static_cast<int>(-start) : 0;  // bits below 0
  const int64_t from = start < 0 ? 0 : start;
  const int64_t q = from >> 6;
  const int r = static_cast<int>(from & 63);
  const uint64_t window = r == 0 ? words[q] : (words[q] >> r) | (words[q + 1] << (64 - r));
  return window << shift;
}

// For a rule-tested chunk, evaluates the rule once per element into keep bits (one row per thread),
// outside the register-heavy MMA loop. Vertical-Slash rules over consecutive keys take 64 elements at
// a time: the verticals are a window of their bitmap, the slashes a reversed window of theirs.
template <int D, typename T>
__device__ __forceinline__ void evaluate_rule(const SparseAttentionParams& p, SharedStorage<D, T>& s, int buf,
                                              int rule_kind) {
  static_assert(kBlockN == 64, "one 64-bit word of keep bits per row");
  const int r = threadIdx.x;
  const int32_t i = s.rows[r], len = s.len[buf];
  const MaskRule& rule = s.rule;
  uint64_t bits = 0;
  if (i >= 0 && rule_kind == 1 && s.contiguous[buf]) {
    const int64_t c0 = s.cols[buf][0], reach = i - c0;  // key c0 + c is causal iff c <= reach
    if (reach >= 0) {
      if (rule.vertical_words >= 0) bits |= bit_window(p.words + rule.vertical_words, c0);
      if (rule.slash_words >= 0) bits |= __brevll(bit_window(p.words + rule.slash_words, reach - 63));
      if (reach < 63) bits &= (uint64_t(2) << reach) - 1;
      if (len < 64) bits &= (uint64_t(1) << len) - 1;
    }
  } else if (i >= 0) {
    const int32_t phase_i = s.row_phase[r];
    for (int c = 0; c < len; ++c) {
      const int32_t j = s.cols[buf][c];
      if (j < 0) continue;  // a compact pass's covered vertical
      const bool keep = rule_kind == 1
                            ? j <= i && ((rule.vertical_words >= 0 && test_bit(p.words + rule.vertical_words, j)) ||
                                         (rule.slash_words >= 0 && test_bit(p.words + rule.slash_words, i - j)))
                            : rule_keeps_at(rule, p.words, i, j, phase_i, s.col_phase[buf][c]);
      if (keep) bits |= uint64_t(1) << c;
    }
  }
  s.keep[buf][r][0] = static_cast<uint32_t>(bits);
  s.keep[buf][r][1] = static_cast<uint32_t>(bits >> 32);
}

// Walks a tile's chunks in order: runs first (in chunks of kBlockN logical keys), then gathered columns.
// Every thread keeps the same cursor in registers, including the current run and the band holding the
// chunk start, so a chunk inside one band costs no global loads to locate. A compact Vertical-Slash pass
// takes its runs from the slash walk and its columns from the pass's vertical list.
struct ChunkCursor {
  int32_t run, run_end, pos, column, column_end;
  DeviceRun current;
  int32_t band_index;
  DeviceBand band;
  bool compact;
  SlashRunWalk<int32_t> walk;  // compact passes: yields the tile's runs, holds its row range

  __device__ void enter_run(const SparseAttentionParams& p) {
    current = p.runs[run];
    pos = current.begin;
    band_index = current.band;
    band = p.bands[band_index];
  }
  __device__ void next_compact_run(const SparseAttentionParams& p) {
    int32_t begin, end;
    if (walk.next([&](int32_t g) { return p.slash_groups[g]; }, begin, end)) {
      current = DeviceRun{begin - band.orig, end + 1 - band.orig, 2, band_index};
      pos = current.begin;
    } else {
      run = run_end;
    }
  }
  __device__ void start(const SparseAttentionParams& p, const DeviceTile& t, const DevicePass& pass) {
    compact = pass.compact != 0;
    if (!compact) {
      run = t.run_begin;
      run_end = t.run_end;
      column = t.column_begin;
      column_end = t.column_end;
      if (run < run_end) enter_run(p);
      return;
    }
    const DeviceBand rows = p.bands[pass.row_bands];
    band_index = pass.col_bands;
    band = p.bands[band_index];
    const int32_t row_min = rows.orig + t.tile * kBlockM;
    const int32_t row_max = rows.orig + min(rows.count, (t.tile + 1) * kBlockM) - 1;
    const int32_t key_max = min(row_max, band.orig + band.count - 1);
    walk = SlashRunWalk<int32_t>(row_min, row_max, band.orig, key_max, pass.slash_group_begin, pass.slash_group_end);
    run = 0;
    run_end = 1;
    next_compact_run(p);
    int32_t lo = pass.vertical_begin, hi = pass.vertical_end;  // first vertical after key_max
    while (lo < hi) {
      const int32_t mid = (lo + hi) / 2;
      if (p.verticals[mid] <= key_max) lo = mid + 1; else hi = mid;
    }
    column = pass.vertical_begin;
    column_end = lo;
  }
  __device__ bool done() const { return run >= run_end && column >= column_end; }

  // Original position of logical column x (x at or after the chunk start).
  __device__ int32_t col_at(const SparseAttentionParams& p, int32_t x) const {
    DeviceBand b = band;
    for (int32_t k = band_index; x >= b.logical + b.count;) b = p.bands[++k];
    return b.orig + b.step * (x - b.logical);
  }

  // Issues the K and V loads of the next chunk into buffer `buf`, records its columns, phases, mask and
  // length for the masking step, and advances.
  template <int D, typename T>
  __device__ void fetch(const SparseAttentionParams& p, const DevicePass& pass, SharedStorage<D, T>& s, int buf,
                        const T* k_base, const T* v_base) {
    constexpr int kPieces = D / 8;  // 16-byte pieces per row
    constexpr int kStride = D + 8;
    const int tid = threadIdx.x;
    const bool from_run = run < run_end;
    const int32_t* column_list = compact ? p.verticals : p.columns;
    const int32_t len = from_run ? min(kBlockN, current.end - pos) : min(kBlockN, column_end - column);
    auto col_of = [&](int r) -> int32_t {
      if (r >= len) return -1;
      return from_run ? col_at(p, pos + r) : column_list[column + r];
    };
#pragma unroll
    for (int idx = tid; idx < kBlockN * kPieces; idx += kThreads) {
      const int r = idx / kPieces, c = idx % kPieces;
      const int32_t j = col_of(r);
      const int64_t offset = (static_cast<int64_t>(j < 0 ? 0 : j) * p.kv_heads + pass.kv_head) * D + c * 8;
      cp_async_16(&s.k[buf][r * kStride + c * 8], k_base + offset, j >= 0);
      cp_async_16(&s.v[buf][r * kStride + c * 8], v_base + offset, j >= 0);
    }
    if (tid < kBlockN) {
      int32_t j = col_of(tid);
      if (compact && !from_run && j >= 0 &&
          vertical_covered(p.words + pass.rule.slash_words, walk.row_min, walk.row_max, j)) {
        j = -1;  // one of the tile's runs counts this column already
      }
      s.cols[buf][tid] = j;
      const VisualSpans spans{p.visual_starts, p.visual_ends, p.num_visual_spans};
      s.col_phase[buf][tid] = j >= 0 ? static_cast<int32_t>(rule_phase(pass.rule, spans, j)) : -1;
    }
    if (tid == 0) {
      s.mask[buf] = from_run ? current.mask : 2;  // gathered columns are always tested by the rule
      s.len[buf] = len;
      s.contiguous[buf] = from_run && band.step == 1 && pos + len <= band.logical + band.count;
    }
    if (!from_run) {
      column += kBlockN;
      return;
    }
    pos += kBlockN;
    if (pos < current.end) {
      while (pos >= band.logical + band.count) band = p.bands[++band_index];
    } else if (compact) {
      next_compact_run(p);
    } else if (++run < run_end) {
      enter_run(p);
    }
  }
};

// Gathers `kRows` rows (original positions, -1 = zero-fill) of one head into padded shared memory.
template <int D, typename T, int kRows>
__device__ __forceinline__ void load_rows(T* dst, const T* base, const int32_t* rows, int heads, int head) {
  constexpr int kChunks = D / 8;  // 16-byte pieces per row
  constexpr int kStride = D + 8;
#pragma unroll
  for (int idx = threadIdx.x; idx < kRows * kChunks; idx += kThreads) {
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
  static_assert(D % 16 == 0, "head_dim must be a multiple of 16");
  const DeviceTile tile = p.tiles[blockIdx.x];
  const DevicePass& pass = p.passes[tile.pass];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const VisualSpans spans{p.visual_starts, p.visual_ends, p.num_visual_spans};

  {  // one query row per thread
    const int32_t logical = tile.tile * kBlockM + tid;
    const int32_t orig = logical < pass.num_rows ? band_orig(p.bands + pass.row_bands, pass.num_row_bands, logical) : -1;
    s.rows[tid] = orig;
    s.row_phase[tid] = orig >= 0 ? static_cast<int32_t>(rule_phase(pass.rule, spans, orig)) : -1;
  }
  if (tid == 0) s.rule = pass.rule;
  __syncthreads();
  load_rows<D, T, kBlockM>(s.q, static_cast<const T*>(p.q), s.rows, p.q_heads, pass.head);
  cp_async_commit();

  const T* k_base = static_cast<const T*>(p.k);
  const T* v_base = static_cast<const T*>(p.v);
  ChunkCursor cursor;
  cursor.start(p, tile, pass);
  bool have_chunk = !cursor.done();
  if (have_chunk) cursor.fetch<D, T>(p, pass, s, 0, k_base, v_base);
  cp_async_commit();
  const bool rows_valid = (tile.tile + 1) * kBlockM <= pass.num_rows;

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
    const bool more = !cursor.done();
    if (more) cursor.fetch<D, T>(p, pass, s, buf ^ 1, k_base, v_base);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const int mask = s.mask[buf];
    if (mask == 2) {  // rule bits for this chunk, once per element, outside the MMA loop
      evaluate_rule(p, s, buf, pass.rule_kind);
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

    // Mask (on original positions) and scale into the log2 domain. A fully kept, full chunk of valid
    // rows needs no test at all.
    const bool plain = mask == 0 && rows_valid && s.len[buf] == kBlockN;
#pragma unroll
    for (int a = 0; a < kMAtoms; ++a) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = warp * kRowsPerWarp + a * 16 + h * 8 + lane / 4;
        const int32_t i = s.rows[row];
#pragma unroll
        for (int n = 0; n < 8; ++n) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float& x = sc[a][n][2 * h + e];
            if (plain) {
              x *= scale_log2;
              continue;
            }
            const int c = n * 8 + (lane % 4) * 2 + e;
            const int32_t j = s.cols[buf][c];
            bool keep = j >= 0 && i >= 0;
            if (mask == 1) keep = keep && j <= i;
            if (mask == 2) keep = (s.keep[buf][row][c / 32] >> (c % 32)) & 1u;
            x = keep ? x * scale_log2 : -INFINITY;
          }
        }
      }
    }

    // Online softmax: each row's state lives in the 4 threads of its quad.
#pragma unroll
    for (int a = 0; a < kMAtoms; ++a) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float mx = -INFINITY;
#pragma unroll
        for (int n = 0; n < 8; ++n) mx = fmaxf(mx, fmaxf(sc[a][n][2 * h], sc[a][n][2 * h + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffff, mx, 2));
        const float m_new = fmaxf(m[a][h], mx);
        const float base = m_new == -INFINITY ? 0.f : m_new;  // a row with nothing kept yet stays empty
        const float correction = exp2f(m[a][h] - base);
        m[a][h] = m_new;
        float sum = 0.f;
#pragma unroll
        for (int n = 0; n < 8; ++n) {
          sc[a][n][2 * h] = exp2f(sc[a][n][2 * h] - base);
          sc[a][n][2 * h + 1] = exp2f(sc[a][n][2 * h + 1] - base);
          sum += sc[a][n][2 * h] + sc[a][n][2 * h + 1];
        }
        l[a][h] = l[a][h] * correction + sum;
#pragma unroll
        for (int n = 0; n < kAtomsD; ++n) {
          o[a][n][2 * h] *= correction;
          o[a][n][2 * h + 1] *= correction;
        }
      }
    }

    // O += P V: P is reused from the accumulators as A fragments (16 keys per k-step).
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      uint32_t pa[kMAtoms][4];
#pragma unroll
      for (int a = 0; a < kMAtoms; ++a) {
        pa[a][0] = Mma<T>::pack(sc[a][2 * kk][0], sc[a][2 * kk][1]);
        pa[a][1] = Mma<T>::pack(sc[a][2 * kk][2], sc[a][2 * kk][3]);
        pa[a][2] = Mma<T>::pack(sc[a][2 * kk + 1][0], sc[a][2 * kk + 1][1]);
        pa[a][3] = Mma<T>::pack(sc[a][2 * kk + 1][2], sc[a][2 * kk + 1][3]);
      }
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
    __syncthreads();  // buffer `buf` is refilled by the next iteration's fetch
  }
  cp_async_wait<0>();

  // Merge this pass's rows into the running state by log-sum-exp. All four threads of a quad read the
  // old lse before the first of them writes the new one.
  float old_lse[kMAtoms][2];
#pragma unroll
  for (int a = 0; a < kMAtoms; ++a) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      l[a][h] += __shfl_xor_sync(0xffffffff, l[a][h], 1);
      l[a][h] += __shfl_xor_sync(0xffffffff, l[a][h], 2);
      const int32_t i = s.rows[row_of(a, h)];
      old_lse[a][h] = (i >= 0 && l[a][h] > 0.f) ? p.lse_state[static_cast<int64_t>(pass.head) * p.n + i] : 0.f;
    }
  }
  __syncwarp();
#pragma unroll
  for (int a = 0; a < kMAtoms; ++a) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int32_t i = s.rows[row_of(a, h)];
      if (i < 0 || !(l[a][h] > 0.f)) continue;
      const float lse = m[a][h] * kLn2 + logf(l[a][h]);
      float w_old = 0.f, w_new = 1.f, new_lse = lse;
      if (old_lse[a][h] != -INFINITY) {
        const float top = fmaxf(old_lse[a][h], lse);
        w_old = expf(old_lse[a][h] - top);
        w_new = expf(lse - top);
        new_lse = top + logf(w_old + w_new);
        const float inv_total = 1.f / (w_old + w_new);
        w_old *= inv_total;
        w_new *= inv_total;
      }
      const float scale_new = w_new / l[a][h];
      float* out = p.out_state + (static_cast<int64_t>(i) * p.q_heads + pass.head) * D + (lane % 4) * 2;
#pragma unroll
      for (int n = 0; n < kAtomsD; ++n) {
        float2 prev = *reinterpret_cast<float2*>(out + n * 8);
        prev.x = prev.x * w_old + o[a][n][2 * h] * scale_new;
        prev.y = prev.y * w_old + o[a][n][2 * h + 1] * scale_new;
        *reinterpret_cast<float2*>(out + n * 8) = prev;
      }
      if (lane % 4 == 0) p.lse_state[static_cast<int64_t>(pass.head) * p.n + i] = new_lse;
    }
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
