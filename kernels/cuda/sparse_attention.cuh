// The CUDA executor for SparsePlans: raw pointers only (no LibTorch), so it compiles fast and the
// binding (cuda_executor.cpp) stays the one place that speaks tensors.
//
// One launch runs one "level" of passes (the p-th pass of every head that has one): each CTA takes one
// query tile (128 logical rows) of one pass, walks its key runs and gathered columns in chunks of 64
// keys with tensor-core MMAs (bf16/fp16 in, fp32 accumulate) and an online softmax, then merges its
// rows into the output by log-sum-exp: a row's normalised result so far lives in `out` itself, in the
// inputs' dtype, beside its fp32 lse (lse_state). A later pass of the head reads both, weighs the old
// result against its own in fp32 and rounds once more. This is how FlashInfer's cascade attention merges
// partial states too: each extra pass of a row costs one rounding of its partial result to the output's
// precision (2^-8 relative in bf16), and in exchange no fp32 copy of the output is written and read back
// (at 128K x 28 heads, 1.9 GB each way; 14.7 GB of memory at 1M). A row's old result is read only where
// an earlier pass wrote it (lse_state finite), and a final launch zeroes the rows no pass kept anything
// of. Rows of one pass are distinct, so no two CTAs of a launch touch a row.
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/block_summary_walk.h"
#include "kernels/mask_rule.h"

namespace mmi::cuda {

constexpr int kBlockM = 128;  // query rows per tile (must equal SparsePlan::block_m)
constexpr int kBlockN = 64;  // keys per chunk (must equal SparsePlan::block_n)
constexpr int kMaxBlockSummaryPieces = 9;  // a block summary pass's pieces: up to 8 summary phases, the other keys

struct DeviceBand {
  int32_t logical, orig, step, count;
};

struct DeviceRun {
  int32_t begin, end;  // logical key columns of the pass
  int32_t mask;        // ChunkMask
  int32_t band;        // index (into the band array) of the column band holding `begin`
};

struct DeviceSlashGroup {
  int32_t lo, hi;  // consecutive kept distances [lo, hi]
};

struct DevicePass {
  MaskRule rule;
  int32_t rule_kind;                 // 0: general rule; 1: only vertical and slash bitmaps; 2: ranges and
                                     // at most a vertical line; 3: grid lines only (rule_bits.h)
  // How its tiles find their work (PassForm): 0 listed runs and columns (DeviceTile); 1 a compact
  // Vertical-Slash pass (one row band, one column band) whose tiles derive their runs from
  // slash_groups[slash_group_begin, slash_group_end) and gather from verticals[vertical_begin,
  // vertical_end) (kernels/vertical_slash_walk.h); 2 a compact range pass (one row band, one column band)
  // whose tiles derive their runs from the rule (kernels/range_walk.h), then, with line bands
  // [line_band_begin, line_band_end), the line's keys in the runs' gap; 3 a compact grid line pass whose
  // tiles take a run from each grid section they visit (GridTileSections in kernels/grid_line_walk.h),
  // with phase_tables[phase_table, + phases + 1) where each phase's rows start (logical rows) and
  // phase_tables[phase_table + phases + 1, + phases + 1) where its column bands start (band array indices);
  // 4 a compact block summary pass (SF-fixed) whose tiles take a run from each of its `phases` pieces of
  // columns (kernels/block_summary_walk.h), the last one the blocks' other keys, with
  // phase_tables[phase_table, + phases + 1) where each piece's bands start (band array indices); tile t's
  // runs are block_summary_runs[tile_runs + t * phases, + phases), found at upload
  // (launch_block_summary_runs).
  int32_t form;
  int32_t line_band_begin, line_band_end;  // indices into the band array
  int32_t phase_table, phases;
  int32_t tile_runs;
  // Chunks of its column (or line) bands with step strided_step > 1 load through strided_maps[2 x
  // strided_map] (K) and [+ 1] (V) in the wgmma kernel, when their keys are below strided_limit (-1: none).
  int32_t strided_map, strided_step, strided_limit;
  int32_t slash_group_begin, slash_group_end;
  int32_t vertical_begin, vertical_end;
  int32_t head, kv_head;
  int32_t row_bands, num_row_bands;  // offsets into the band array
  int32_t col_bands, num_col_bands;
  int32_t num_rows;                  // logical rows of the pass
  int32_t reads_state;               // 1: an earlier pass of its head may have written its rows' state
  int32_t shares_arrays;             // 1: its bands, lists and tables are an earlier pass's (same offsets)
};

struct DeviceTile {
  int32_t pass;        // index into passes
  int32_t tile;        // tile index within the pass
  int32_t run_begin, run_end;        // into runs (listed passes only)
  int32_t column_begin, column_end;  // into columns (original positions; listed passes only)
};

// Everything a launch reads. Tensors are [N, heads, head_dim] contiguous.
struct SparseAttentionParams {
  // The wgmma kernel's TMA descriptors of K and V, viewed as [N][Hkv][D] in boxes of 64 keys x 64
  // values, 128-byte swizzled: its chunks of consecutive keys load through them (unused elsewhere).
  CUtensorMap k_map, v_map;
  // Its descriptors of Q and the output, [N][Hq][D] in boxes of 128 rows x 64 values, in global memory
  // (nullptr: none; kept out of the parameters, which they would grow): tiles of 128 consecutive rows
  // load Q through the first, and those that write their rows' outputs and merge into nothing store them
  // through the second.
  const CUtensorMap* q_map;
  const CUtensorMap* out_map;
  // Its descriptors of K and V per key step s > 1 (DevicePass::strided_map), in global memory: the keys
  // as [N / s][s][Hkv][D] (positions q s + r at (q, r)), in boxes of 64 q x 64 values, so that a chunk of
  // keys c0 + s c of one band loads with TMA too.
  const CUtensorMap* strided_maps;
  const void* q;          // [N, Hq, D] bf16 or fp16
  const void* k;          // [N, Hkv, D]
  const void* v;          // [N, Hkv, D]
  float* lse_state;       // [Hq, N] fp32, -inf-initialised (natural log)
  void* out;              // [N, Hq, D] q's dtype, uninitialised: row (i, h) is valid once lse_state[h, i] is finite
  const DevicePass* passes;
  const DeviceBand* bands;
  // The tiles of this launch, heaviest first; nullptr for a level of compact passes with equal row
  // counts, whose tiles the block index names (tile_of): passes [level_pass_begin, +level_passes),
  // level_tiles row tiles each.
  const DeviceTile* tiles;
  int32_t num_tiles;
  int32_t level_pass_begin, level_passes, level_tiles;
  const DeviceRun* runs;
  const int32_t* columns;
  const DeviceSlashGroup* slash_groups;  // compact passes' slash groups, ascending per pass
  const int32_t* verticals;              // compact passes' verticals (original positions), ascending per pass
  const int32_t* phase_tables;           // compact grid line passes' phase starts (DevicePass::phase_table)
  const BlockSummaryRun<int32_t>* block_summary_runs;  // block summary passes' tiles' (DevicePass::tile_runs)
  const uint64_t* words;
  const int64_t* visual_starts;
  const int64_t* visual_ends;
  int32_t num_visual_spans;
  int32_t n, q_heads, kv_heads;
  float softmax_scale;    // 1/sqrt(D)
};

enum class DType { kBFloat16, kFloat16 };

// Runs one level with the mma.sync kernel. head_dim must be 64, 80 or 128. Returns the launch error
// (cudaSuccess when fine).
cudaError_t launch_sparse_attention(const SparseAttentionParams& params, int head_dim, DType dtype,
                                    cudaStream_t stream);
// The same with the wgmma kernel (sparse_attention_sm90.cu): head_dim 128, an sm_90 GPU. skip_idle: the
// level has compact Vertical-Slash passes, whose chunks a warpgroup skips where its rows keep nothing.
cudaError_t launch_sparse_attention_sm90(const SparseAttentionParams& params, DType dtype, bool skip_idle,
                                         cudaStream_t stream);

// Every tile's runs of the block summary passes among passes[0, num_passes), into runs at each one's
// DevicePass::tile_runs: one thread per tile and piece, where the kernels' tile starts would otherwise
// search the bands for them (kernels/block_summary_walk.h). `max_tile_pieces`: the largest tiles x
// pieces of those passes.
cudaError_t launch_block_summary_runs(const DevicePass* passes, int32_t num_passes, int32_t max_tile_pieces,
                                      const DeviceBand* bands, const int32_t* phase_tables,
                                      BlockSummaryRun<int32_t>* runs, cudaStream_t stream);

// Zeroes out[i, h, :] where no pass kept a key of row i (lse_state[h, i] = -inf), as softmax over an
// empty row is taken to be. head_dim must be a multiple of 4.
cudaError_t launch_finalize(const SparseAttentionParams& params, int head_dim, cudaStream_t stream);

}  // namespace mmi::cuda
