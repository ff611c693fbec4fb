// The last-query attention profile (kernels/estimate.h) in two fused passes on the GPU, so that the
// window's [L, N] probabilities never exist in memory: pass 1 finds each window row's maximum score and
// normaliser per block of keys, pass 2 recomputes the scores and sums the probabilities per key column
// and per distance i - j. One launch serves every query head that shares the window. Raw pointers only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace mmi::cuda {

constexpr int kProfileRows = 64;  // window rows per step

enum class ProfileDType { kBFloat16, kFloat16, kFloat32 };

constexpr int kMaxProfileHeads = 128;  // query heads per launch (their indices travel in the parameters)
constexpr int kMaxTeamHeads = 8;       // query heads one CTA takes for its block of keys

// Several query heads' profiles over one window in one launch. Position x profiles query head heads[x]
// into output row slots[x]; a team, positions [team_first[t], team_first[t + 1]), reads one KV head.
// CTA c takes key block c / num_teams for team c % num_teams: it loads those keys once and runs the
// team's heads over them one after the other, the next head's rows loading while one computes.
struct WindowProfileParams {
  // Rows start on 16-byte boundaries and D is a multiple of 16 bytes (window_profile_accepts).
  const void* q;             // query head h's rows: q + h * q_head_stride + t * q_row_stride (elements)
  const void* k;             // KV head g's rows: k + g * k_head_stride + t * k_row_stride
  int64_t q_row_stride, q_head_stride, k_row_stride, k_head_stride;
  int32_t heads[kMaxProfileHeads];  // position x reads KV head heads[x] / group
  int32_t slots[kMaxProfileHeads];
  int32_t team_first[kMaxProfileHeads + 1];
  int32_t num_teams, group;
  int32_t head_dim;          // D <= 128
  int32_t end, count;        // window rows [end - count, end); keys [0, end)
  float scale;               // 1/sqrt(D)
  const double* key_filter;  // [end] multiplies the sums (nullptr: all ones)
  // Pass 1 writes, per output row s, key block b and window row r, the block's row maximum and normaliser:
  float* block_max;          // [rows, blocks, count]
  float* block_sum;          // [rows, blocks, count]
  // Pass 2 reads the rows' overall maximum and normaliser and adds into the sums:
  const float* row_max;      // [rows, count]
  const float* row_sum;      // [rows, count]
  double* column;            // [rows, end], written (each key by one thread)
  double* distance;          // [rows, end], accumulated (zero it first); nullptr: not wanted
};

// Whether rows of `element_size`-byte values at `base` (bytes), `row_stride` elements apart, D values
// long, suit the kernels' 16-byte loads.
bool window_profile_accepts(uintptr_t base, int64_t row_stride, int head_dim, int element_size);
// Key blocks (CTAs per team) of the kernels that take inputs of this type and D: the sizes of the row
// statistics' block dimension.
int32_t profile_blocks(int32_t end, ProfileDType dtype, int head_dim);
cudaError_t launch_window_row_stats(const WindowProfileParams& p, ProfileDType dtype, cudaStream_t stream);
cudaError_t launch_window_profile(const WindowProfileParams& p, ProfileDType dtype, cudaStream_t stream);
// Between the passes: each row's overall maximum and normaliser ([slots, count] each) from pass 1's block
// statistics ([slots, blocks, count] each).
cudaError_t launch_window_row_reduce(const float* block_max, const float* block_sum, int32_t slots, int32_t blocks,
                                     int32_t count, float* row_max, float* row_sum, cudaStream_t stream);

}  // namespace mmi::cuda
