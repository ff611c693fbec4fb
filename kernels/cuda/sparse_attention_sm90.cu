// wgmma executor for SparsePlans with d = 128 on sm_90a (see sparse_attention.cuh for the contract).
// Two warpgroups take 64 of the tile's 128 query rows each. Q and every K/V chunk sit in shared memory in
// the 128-byte swizzled layout wgmma reads through matrix descriptors; S = Q K^T is a chain of eight
// m64n64k16 wgmmas from shared memory, and O += P V four m64n128k16 wgmmas with P taken straight from
// the S accumulators as register fragments (V read MN-major, so it needs no transpose). The chunk walk
// and masks are the mma.sync kernel's; chunks of consecutive keys load with TMA, the others with
// cp.async as there, and the merge is staged through shared memory (merge_tile). A tile of consecutive
// rows loads Q with TMA as its first step, and when it merges into nothing, stores its outputs with TMA
// (store_tile). A chunk's serial work (its TMA loads, its description, the cursor's advance) falls on
// threads of both warpgroups, and a chunk that only needs its TMA loads is fetched by one warp.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/sparse_attention_device.cuh"
#include "kernels/cuda/wgmma.cuh"

namespace mmi::cuda::sm90 {

using namespace detail;

constexpr int kD = 128;
constexpr int kWarpGroups = 2;
constexpr int kThreads = kWarpGroups * 128;
constexpr int kGroupRows = kBlockM / kWarpGroups;  // 64: one wgmma M
static_assert(kBlockN == 64 && kGroupRows == 64, "the wgmma shapes below assume 64 x 64 score tiles");

// The epilogue stages the tile's normalised outputs as fp32 rows of kStageStride floats (8 of padding,
// so that a quad's stores of 8 rows hit distinct banks) over Q and the K/V buffers, free by then.
constexpr int kStageStride = kD + 8;

template <typename T>
struct Sm90Storage {
  alignas(1024) T q[kBlockM * kD];
  alignas(1024) T k[2][kBlockN * kD];
  alignas(1024) T v[2][kBlockN * kD];
  float row_lse[kBlockM];  // the epilogue's: each row's lse in this pass (-inf: it kept no key)
  uint64_t tma_full[2];    // completes when buffer b's TMA loads have landed (chunks of consecutive keys)
  uint64_t q_full;         // completes when Q's TMA loads have landed (tiles of consecutive rows)
  TileMeta meta;
  __device__ float* stage() { return reinterpret_cast<float*>(q); }
};
static_assert(sizeof(float) * kBlockM * kStageStride <= offsetof(Sm90Storage<__half>, row_lse),
              "the epilogue's staging rows fit over Q and the K/V buffers");

// The epilogue of a full tile of consecutive rows with no earlier results to merge (a head's first pass):
// the outputs go into Q's buffer in T, laid out as Q was, and thread 0 stores them with two TMA boxes,
// while each row's quad writes its lse. A row that kept nothing stores zeros (its lse stays -inf, so a
// later pass ignores them, and they are the output if none keeps anything either).
template <typename T>
__device__ __forceinline__ void store_tile(const SparseAttentionParams& p, int head, Sm90Storage<T>& s,
                                           const int (&rows)[2], const float (&m)[2], float (&l)[2],
                                           const float (&o)[16][4], int lane) {
  __syncthreads();  // every warpgroup's last Q K^T has read Q
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(0xffffffff, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffff, l[h], 2);
    const float inv = l[h] > 0.f ? 1.f / l[h] : 0.f;
#pragma unroll
    for (int n = 0; n < 16; ++n) {
      *reinterpret_cast<uint32_t*>(s.q + Swizzled<kBlockM>::offset(rows[h], n) + (lane % 4) * 2) =
          Mma<T>::pack(o[n][2 * h] * inv, o[n][2 * h + 1] * inv);
    }
    if (lane % 4 == 0 && l[h] > 0.f) {
      const int64_t row = static_cast<int64_t>(head) * p.n + s.meta.rows[rows[h]];
      p.lse_state[row] = m[h] * kLn2 + logf(l[h]);
    }
  }
  fence_async_proxy();  // the staged outputs, visible to the TMA unit after the barrier
  __syncthreads();
  if (threadIdx.x == 0) {
    constexpr int kHalf = kBlockM * 64;
    for (int half = 0; half < 2; ++half) {
      tma_store_3d(p.out_map, s.q + half * kHalf, half * 64, head, s.meta.row_start);
    }
    tma_store_commit();
    tma_store_wait_read();
  }
}

// The tile's epilogue: each row's result merged into its earlier one in the output by log-sum-exp. The
// normalised outputs go through shared memory first, so that a warp then takes whole rows in 256-byte
// lines and issues the loads of eight rows' earlier results before any store: one round trip to memory
// per eight rows, where merge_row's quad layout (the mma.sync kernel's, which has no shared memory to
// spare for a stage) waits for one per line it stores.
template <typename T>
__device__ __forceinline__ void merge_tile(const SparseAttentionParams& p, int head, bool reads_state,
                                           Sm90Storage<T>& s, const int (&rows)[2],
                                           const float (&m)[2], float (&l)[2], const float (&o)[16][4], int lane) {
  float* stage = s.stage();
  __syncthreads();  // every warpgroup's last P V has read the buffers the stage overwrites
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(0xffffffff, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffff, l[h], 2);
    const float inv = l[h] > 0.f ? 1.f / l[h] : 0.f;
    float* row = stage + rows[h] * kStageStride + (lane % 4) * 2;
#pragma unroll
    for (int n = 0; n < 16; ++n) {
      *reinterpret_cast<float2*>(row + n * 8) = make_float2(o[n][2 * h] * inv, o[n][2 * h + 1] * inv);
    }
    if (lane % 4 == 0) s.row_lse[rows[h]] = l[h] > 0.f ? m[h] * kLn2 + logf(l[h]) : -INFINITY;
  }
  __syncthreads();

  constexpr int kWarps = kThreads / 32, kBatch = 8;  // rows per round trip (more would spill)
  const int warp = threadIdx.x / 32;
#pragma unroll 1
  for (int first = warp; first < kBlockM; first += kBatch * kWarps) {
    // Rows first, first + kWarps, ...: their earlier lse and this lane's four values of their output.
    float previous[kBatch];
    uint2 old[kBatch];
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      const int r = first + k * kWarps;
      const int32_t i = s.meta.rows[r];
      previous[k] = -INFINITY;
      if (reads_state && i >= 0 && s.row_lse[r] != -INFINITY) {
        // Read before it is known whether an earlier pass wrote the row: stale values are never used.
        previous[k] = p.lse_state[static_cast<int64_t>(head) * p.n + i];
        const T* earlier = static_cast<const T*>(p.out) + (static_cast<int64_t>(i) * p.q_heads + head) * kD;
        old[k] = __ldcg(reinterpret_cast<const uint2*>(earlier) + lane);
      }
    }
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      const int r = first + k * kWarps;
      const int32_t i = s.meta.rows[r];
      const float lse = s.row_lse[r];
      if (i < 0 || lse == -INFINITY) continue;
      const MergeWeights w = merge_weights(previous[k], lse);
      float4 x = reinterpret_cast<const float4*>(stage + r * kStageStride)[lane];
      x.x *= w.new_weight, x.y *= w.new_weight, x.z *= w.new_weight, x.w *= w.new_weight;
      if (previous[k] != -INFINITY) {
        const float2 lo = Mma<T>::unpack(old[k].x), hi = Mma<T>::unpack(old[k].y);
        x.x += lo.x * w.old_weight, x.y += lo.y * w.old_weight;
        x.z += hi.x * w.old_weight, x.w += hi.y * w.old_weight;
      }
      const int64_t at = (static_cast<int64_t>(i) * p.q_heads + head) * kD / 4 + lane;  // in fours
      reinterpret_cast<uint2*>(p.out)[at] = make_uint2(Mma<T>::pack(x.x, x.y), Mma<T>::pack(x.z, x.w));
      if (lane == 0) p.lse_state[static_cast<int64_t>(head) * p.n + i] = w.lse;
    }
  }
}

// __grid_constant__: the TMA unit reads p's tensor maps where they are, in parameter space. kSkipIdle:
// a warpgroup skips the chunks its rows keep nothing of (TileMeta::idle; compact Vertical-Slash passes).
// The branch costs every pattern registers (spills 36 -> 56 bytes, 4-6% slower), so only the launches
// with such passes take it.
template <typename T, bool kSkipIdle>
__global__ void __launch_bounds__(kThreads, 2)
    sparse_attention_sm90_kernel(const __grid_constant__ SparseAttentionParams p) {
#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __trap();  // built for a GPU without wgmma: the host side only launches this kernel on sm_90
#else
  extern __shared__ unsigned char smem_raw[];
  Sm90Storage<T>& s = *reinterpret_cast<Sm90Storage<T>*>(align_1024(smem_raw));
  TileMeta& meta = s.meta;
  const DeviceTile tile = tile_of(p);
  const DevicePass& pass = p.passes[tile.pass];
  const int tid = threadIdx.x, group = tid / 128, warp = (tid % 128) / 32, lane = tid % 32;

  if (tid == 0) {
    mbarrier_init(&s.tma_full[0], 1);
    mbarrier_init(&s.tma_full[1], 1);
    mbarrier_init(&s.q_full, 1);
    fence_barrier_init();  // start_tile's barrier then publishes them
  }
  bool have_chunk = start_tile<kThreads, kD, Swizzled<kBlockM>, Swizzled<kBlockN>, true>(
      p, tile, pass, meta, s.q, s.k[0], s.v[0], s.tma_full, &s.q_full);
  if (!have_chunk) return;  // nothing to add to these rows
  if (kSkipIdle && tid == kThreads / 2 + 64) find_idle_warpgroups(p, meta, 0);  // the loop's barrier publishes it
  bool q_pending = meta.q_tma != 0;  // Q's TMA loads, waited for before the first Q K^T
  const T* k_base = static_cast<const T*>(p.k);
  const T* v_base = static_cast<const T*>(p.v);
  const bool rows_valid = (tile.tile + 1) * kBlockM <= pass.num_rows;
  const int rule_kind = pass.rule_kind;

  // This thread's rows (h = 0, 1) within the tile, as in every m64 wgmma accumulator.
  auto row_of = [&](int h) { return group * kGroupRows + warp * 16 + h * 8 + lane / 4; };
  // Q rows of this warpgroup: K-major, 8-row groups 1024 bytes apart; k-step kk reads 32 bytes of a half.
  const T* q_group = s.q + group * kGroupRows * 64;
  const float scale_log2 = p.softmax_scale * kLog2e;
  float o[16][4];  // as the m64n128 accumulator: o[n][2h + e] is row row_of(h), column n * 8 + (lane % 4) * 2 + e
#pragma unroll
  for (int n = 0; n < 16; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

  // Who does a chunk's serial work: thread 0 describes the next chunk (after P V is issued, as the cursor's
  // advance), one thread issues its TMA loads (at the chunk's start, before Q K^T), and in Vertical-Slash
  // launches one finds its idle warpgroups. A warpgroup's wgmma waits for its slowest warp, so the work
  // is spread across the two warpgroups so that each carries as little as it can: the advance beside
  // the description in the first, the loads in the second; with idle warpgroups to find (the longest
  // task) in the second, the loads and the advance stay as they were.
  constexpr int kTmaThread = kSkipIdle ? 0 : kThreads / 2;
  constexpr int kAdvanceThread = kSkipIdle ? kThreads / 2 : 32;
  uint32_t tma_phase = 0;  // bit b: the parity of buffer b's next TMA completion
  for (int buf = 0; have_chunk; buf ^= 1) {
    // One barrier per chunk: it makes the chunk in `buf` visible, and it frees the other buffer (every
    // warp is done with the chunk before), which the next chunk's loads then fill while this one computes.
    // A chunk that TMA loads (consecutive keys) is waited for on its buffer's barrier after that.
    cp_async_wait<0>();
    fence_async_proxy();
    __syncthreads();
    if (meta.tma[buf]) {
      mbarrier_wait(&s.tma_full[buf], (tma_phase >> buf) & 1u);
      tma_phase ^= 1u << buf;
    }
    // The next chunk's loads: by one warp where they go through TMA and need nothing else gathered
    // (TileMeta::light), the other warps going straight on to this chunk's Q K^T.
    const bool more = !meta.cursor[buf ^ 1].done();
    if (more && meta.light[buf ^ 1]) {
      if (tid / 32 == kTmaThread / 32) {
        fetch_tma_chunk(p, pass, meta, s.k[buf ^ 1], s.v[buf ^ 1], buf ^ 1, s.tma_full, lane, tid == kTmaThread);
      }
    } else if (more) {
      fetch_chunk<kThreads, kD, Swizzled<kBlockN>, true, false, kTmaThread>(p, pass, meta, s.k[buf ^ 1], s.v[buf ^ 1],
                                                                            buf ^ 1, k_base, v_base, s.tma_full);
    }
    cp_async_commit();
    const int mask = meta.mask[buf];
    // Keep bits with a closed form are cheap enough for each thread to take its own rows' (no barrier);
    // other rule-tested chunks are evaluated once per element into shared keep bits.
    const bool own_bits = mask == 2 && closed_form_rule(rule_kind, meta.step[buf], meta.line[buf]);
    if (mask == 2 && !own_bits) {
      if (tid < kBlockM) evaluate_rule(p, meta, buf, rule_kind);
      __syncthreads();
    }

    // A warpgroup whose rows keep no key of the chunk skips it (TileMeta::idle).
    const bool busy = !kSkipIdle || !((meta.idle[buf] >> group) & 1);
    if (busy) {
      if (q_pending) {
        mbarrier_wait(&s.q_full, 0);
        q_pending = false;
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
      // A rule-tested chunk's keep bits (their loads among them) while the tensor cores compute S.
      const bool plain = mask == 0 && rows_valid && meta.len[buf] == kBlockN;
      const int rows[2] = {row_of(0), row_of(1)};
      uint64_t bits[2] = {0, 0};
#pragma unroll
      for (int h = 0; h < 2 && mask == 2; ++h) {
        bits[h] = own_bits ? closed_form_bits(p.words, meta.rule, rule_kind, meta.rows[rows[h]],
                                              meta.row_phase[rows[h]], meta.cols[buf][0], meta.step[buf],
                                              meta.len[buf], meta.line[buf])
                           : stored_keep_bits(meta, buf, rows[h]);
      }
      wgmma_wait_all();
      fence_registers(flat<32>(sc));
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
    }
    // The next chunk's description and the cursor's advance, each a serial chain of loads on one thread,
    // run while the tensor cores compute P V: at the fetch they held up their warpgroups' next wgmma.
    if (more && tid == 0) describe_chunk(p, pass, meta, buf ^ 1);
    if (more && tid == kAdvanceThread) advance_cursor<true>(p, pass, meta, buf ^ 1);
    if (kSkipIdle && more && tid == kThreads / 2 + 64) find_idle_warpgroups(p, meta, buf ^ 1);
    wgmma_wait_all();
    fence_registers(flat<64>(o));
    have_chunk = more;
  }
  if (q_pending) mbarrier_wait(&s.q_full, 0);  // a warpgroup that skipped every chunk: the epilogue reuses Q

  // The pass's fields go to the epilogue as values: read through the reference, they would be loaded
  // again after every global store (which the compiler cannot tell from a write to the pass), a round
  // trip to L2 per row.
  const int rows[2] = {row_of(0), row_of(1)};
  const int head = pass.head;
  const bool reads_state = pass.reads_state != 0;
  if (p.out_map != nullptr && meta.row_start >= 0 && rows_valid && !reads_state) {
    store_tile<T>(p, head, s, rows, m, l, o, lane);
  } else {
    merge_tile<T>(p, head, reads_state, s, rows, m, l, o, lane);
  }
#endif
}

template <typename T, bool kSkipIdle>
cudaError_t launch(const SparseAttentionParams& params, cudaStream_t stream) {
  if (params.num_tiles == 0) return cudaSuccess;
  const size_t bytes = sizeof(Sm90Storage<T>) + 1024;
  auto kernel = sparse_attention_sm90_kernel<T, kSkipIdle>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (err != cudaSuccess) return err;
  kernel<<<params.num_tiles, kThreads, bytes, stream>>>(params);
  return cudaGetLastError();
}

}  // namespace mmi::cuda::sm90

namespace mmi::cuda {

cudaError_t launch_sparse_attention_sm90(const SparseAttentionParams& params, DType dtype, bool skip_idle,
                                         cudaStream_t stream) {
  if (dtype == DType::kBFloat16) {
    return skip_idle ? sm90::launch<__nv_bfloat16, true>(params, stream)
                     : sm90::launch<__nv_bfloat16, false>(params, stream);
  }
  return skip_idle ? sm90::launch<__half, true>(params, stream) : sm90::launch<__half, false>(params, stream);
}

}  // namespace mmi::cuda
