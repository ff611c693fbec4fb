// The last-query attention profile (kernels/estimate.h) in two fused passes on the GPU, so that the
// window's [L, N] probabilities never exist in memory: pass 1 finds each window row's maximum score and
// normaliser per block of keys, pass 2 recomputes the scores and sums the probabilities per key column
// and per distance i - j. Raw pointers only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace mmi::cuda {

constexpr int kProfileKeys = 128;  // keys per CTA (one per thread)
constexpr int kProfileRows = 64;   // window rows per step

enum class ProfileDType { kBFloat16, kFloat16, kFloat32 };

struct WindowProfileParams {
  // Rows start on 16-byte boundaries and D is a multiple of 16 bytes (window_profile_accepts).
  const void* q;             // query head's rows: q + t * q_row_stride (elements), D contiguous
  const void* k;             // its KV head's rows: k + t * k_row_stride
  int64_t q_row_stride, k_row_stride;
  int32_t head_dim;          // D <= 128
  int32_t end, count;        // window rows [end - count, end); keys [0, end)
  float scale;               // 1/sqrt(D)
  const double* key_filter;  // [end] multiplies the sums (nullptr: all ones)
  // Pass 1 writes, per key block b and window row r, the block's row maximum and normaliser:
  float* block_max;          // [blocks, count]
  float* block_sum;          // [blocks, count]
  // Pass 2 reads the rows' overall maximum and normaliser and adds into the sums:
  const float* row_max;      // [count]
  const float* row_sum;      // [count]
  double* column;            // [end], written (each key by one thread)
  double* distance;          // [end], accumulated (zero it first); nullptr: not wanted
};

// Whether rows of `element_size`-byte values at `base` (bytes), `row_stride` elements apart, D values
// long, suit the kernels' 16-byte loads.
bool window_profile_accepts(uintptr_t base, int64_t row_stride, int head_dim, int element_size);
int32_t profile_blocks(int32_t end);
cudaError_t launch_window_row_stats(const WindowProfileParams& p, ProfileDType dtype, cudaStream_t stream);
cudaError_t launch_window_profile(const WindowProfileParams& p, ProfileDType dtype, cudaStream_t stream);

}  // namespace mmi::cuda
