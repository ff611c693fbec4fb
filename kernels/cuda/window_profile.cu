// Fused last-query profile (see window_profile.cuh). One CTA of 128 threads per block of 128 keys, one
// key per thread; the window rows go 64 at a time through shared memory, transposed so that a thread
// reads four rows' values of one dimension with one broadcast load while its key stays in a column of
// shared memory. fp32 scores (as the LibTorch path computes them), fp64 sums across CTAs.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>

#include "kernels/cuda/window_profile.cuh"

namespace mmi::cuda {
namespace {

constexpr int kThreads = kProfileKeys;
constexpr int kWarps = kThreads / 32;

__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(float x) { return x; }

size_t shared_bytes(int head_dim) { return sizeof(float) * head_dim * (kProfileRows + kProfileKeys); }

// Scores of this thread's key against window rows [r0, r0 + kProfileRows) (already loaded, scaled, into
// q_s), or -inf where the key is not causal for the row (or past the window's end).
__device__ __forceinline__ void row_scores(const float* q_s, const float* k_s, int head_dim, int64_t key,
                                           int64_t first_row, int rows, int32_t end, float (&s)[kProfileRows]) {
#pragma unroll
  for (int r = 0; r < kProfileRows; ++r) s[r] = 0.f;
  for (int d = 0; d < head_dim; ++d) {
    const float kv = k_s[d * kProfileKeys + threadIdx.x];
    const float4* qv = reinterpret_cast<const float4*>(q_s + d * kProfileRows);
#pragma unroll
    for (int r4 = 0; r4 < kProfileRows / 4; ++r4) {
      const float4 x = qv[r4];
      s[4 * r4] += x.x * kv;
      s[4 * r4 + 1] += x.y * kv;
      s[4 * r4 + 2] += x.z * kv;
      s[4 * r4 + 3] += x.w * kv;
    }
  }
#pragma unroll
  for (int r = 0; r < kProfileRows; ++r) {
    if (r >= rows || key >= end || key > first_row + r) s[r] = -INFINITY;
  }
}

template <typename T>
__device__ void load_keys(const WindowProfileParams& p, float* k_s, int64_t key0) {
  const T* k = static_cast<const T*>(p.k);
  for (int idx = threadIdx.x; idx < kProfileKeys * p.head_dim; idx += kThreads) {
    const int key = idx / p.head_dim, d = idx % p.head_dim;
    const int64_t j = key0 + key;
    k_s[d * kProfileKeys + key] = j < p.end ? to_float(k[j * p.k_row_stride + d]) : 0.f;
  }
}

template <typename T>
__device__ void load_rows(const WindowProfileParams& p, float* q_s, int64_t first_row, int rows) {
  const T* q = static_cast<const T*>(p.q);
  for (int idx = threadIdx.x; idx < kProfileRows * p.head_dim; idx += kThreads) {
    const int r = idx / p.head_dim, d = idx % p.head_dim;
    q_s[d * kProfileRows + r] = r < rows ? to_float(q[(first_row + r) * p.q_row_stride + d]) * p.scale : 0.f;
  }
}

// Reduces v[r] over the CTA's threads (max or sum) into out[r], for every row r.
template <bool kMax>
__device__ void reduce_rows(float (&v)[kProfileRows], float (*partial)[kProfileRows], float* out) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int r = 0; r < kProfileRows; ++r) {
    float x = v[r];
    for (int offset = 16; offset > 0; offset /= 2) {
      const float y = __shfl_xor_sync(0xffffffffu, x, offset);
      x = kMax ? fmaxf(x, y) : x + y;
    }
    if (lane == 0) partial[warp][r] = x;
  }
  __syncthreads();
  if (threadIdx.x < kProfileRows) {
    float x = partial[0][threadIdx.x];
    for (int w = 1; w < kWarps; ++w) x = kMax ? fmaxf(x, partial[w][threadIdx.x]) : x + partial[w][threadIdx.x];
    out[threadIdx.x] = x;
  }
  __syncthreads();
}

template <typename T>
__global__ void __launch_bounds__(kThreads) row_stats_kernel(WindowProfileParams p) {
  extern __shared__ float shared[];
  float* q_s = shared;
  float* k_s = shared + p.head_dim * kProfileRows;
  __shared__ float partial[kWarps][kProfileRows];
  __shared__ float block_max[kProfileRows];
  __shared__ float block_sum[kProfileRows];
  const int64_t key0 = static_cast<int64_t>(blockIdx.x) * kProfileKeys, key = key0 + threadIdx.x;
  load_keys<T>(p, k_s, key0);
  for (int r0 = 0; r0 < p.count; r0 += kProfileRows) {
    const int rows = min(kProfileRows, p.count - r0);
    const int64_t first_row = static_cast<int64_t>(p.end) - p.count + r0;
    __syncthreads();
    load_rows<T>(p, q_s, first_row, rows);
    __syncthreads();
    float s[kProfileRows];
    row_scores(q_s, k_s, p.head_dim, key, first_row, rows, p.end, s);
    float v[kProfileRows];
#pragma unroll
    for (int r = 0; r < kProfileRows; ++r) v[r] = s[r];
    reduce_rows<true>(v, partial, block_max);
#pragma unroll
    for (int r = 0; r < kProfileRows; ++r) {
      const float m = block_max[r];
      v[r] = s[r] == -INFINITY ? 0.f : __expf(s[r] - m);
    }
    reduce_rows<false>(v, partial, block_sum);
    if (threadIdx.x < rows) {
      const int64_t at = static_cast<int64_t>(blockIdx.x) * p.count + r0 + threadIdx.x;
      p.block_max[at] = block_max[threadIdx.x];
      p.block_sum[at] = block_sum[threadIdx.x];
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) profile_kernel(WindowProfileParams p) {
  extern __shared__ float shared[];
  float* q_s = shared;
  float* k_s = shared + p.head_dim * kProfileRows;
  // Distances of this CTA's keys and the current rows: d = first_row + r - key, indexed by
  // r + (kProfileKeys - 1 - thread), i.e. d - (first_row - key0 - (kProfileKeys - 1)).
  __shared__ float by_distance[kProfileKeys + kProfileRows - 1];
  const int64_t key0 = static_cast<int64_t>(blockIdx.x) * kProfileKeys, key = key0 + threadIdx.x;
  const float filter = p.key_filter && key < p.end ? static_cast<float>(p.key_filter[key]) : 1.f;
  load_keys<T>(p, k_s, key0);
  double column = 0;
  for (int r0 = 0; r0 < p.count; r0 += kProfileRows) {
    const int rows = min(kProfileRows, p.count - r0);
    const int64_t first_row = static_cast<int64_t>(p.end) - p.count + r0;
    __syncthreads();
    load_rows<T>(p, q_s, first_row, rows);
    for (int i = threadIdx.x; i < kProfileKeys + kProfileRows - 1; i += kThreads) by_distance[i] = 0.f;
    __syncthreads();
    float s[kProfileRows];
    row_scores(q_s, k_s, p.head_dim, key, first_row, rows, p.end, s);
    float sum = 0.f;
#pragma unroll
    for (int r = 0; r < kProfileRows; ++r) {
      if (s[r] == -INFINITY) continue;
      const float prob = __expf(s[r] - p.row_max[r0 + r]) / p.row_sum[r0 + r] * filter;
      sum += prob;
      if (p.distance) atomicAdd(&by_distance[r + kProfileKeys - 1 - threadIdx.x], prob);
    }
    column += sum;
    __syncthreads();
    if (p.distance) {
      const int64_t lowest = first_row - key0 - (kProfileKeys - 1);
      for (int i = threadIdx.x; i < kProfileKeys + kProfileRows - 1; i += kThreads) {
        const int64_t d = lowest + i;
        if (d >= 0 && d < p.end && by_distance[i] != 0.f) atomicAdd(&p.distance[d], static_cast<double>(by_distance[i]));
      }
    }
  }
  if (key < p.end) p.column[key] = column;
}

template <typename T>
cudaError_t launch(const WindowProfileParams& p, bool stats, cudaStream_t stream) {
  const size_t bytes = shared_bytes(p.head_dim);
  auto kernel = stats ? row_stats_kernel<T> : profile_kernel<T>;
  const cudaError_t set = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (set != cudaSuccess) return set;
  kernel<<<profile_blocks(p.end), kThreads, bytes, stream>>>(p);
  return cudaGetLastError();
}

cudaError_t dispatch(const WindowProfileParams& p, ProfileDType dtype, bool stats, cudaStream_t stream) {
  if (p.head_dim < 1 || p.head_dim > 128 || p.count < 1 || p.end < p.count) return cudaErrorInvalidValue;
  switch (dtype) {
    case ProfileDType::kBFloat16: return launch<__nv_bfloat16>(p, stats, stream);
    case ProfileDType::kFloat16: return launch<__half>(p, stats, stream);
    case ProfileDType::kFloat32: return launch<float>(p, stats, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

int32_t profile_blocks(int32_t end) { return (end + kProfileKeys - 1) / kProfileKeys; }

cudaError_t launch_window_row_stats(const WindowProfileParams& p, ProfileDType dtype, cudaStream_t stream) {
  return dispatch(p, dtype, true, stream);
}

cudaError_t launch_window_profile(const WindowProfileParams& p, ProfileDType dtype, cudaStream_t stream) {
  return dispatch(p, dtype, false, stream);
}

}  // namespace mmi::cuda
