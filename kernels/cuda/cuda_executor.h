// The CUDA side at the LibTorch boundary: the SparsePlan executor and the dense baselines.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

#include "kernels/cpu/executor.h"
#include "kernels/plan.h"

namespace mmi {

// True when this build has the CUDA kernels and a GPU is visible.
bool cuda_available();

// Uploads `plan` for GPU execution with query heads grouped `group` per KV head; stored in plan.device.
// Optional: execute_plan_cuda uploads on the fly when it is missing.
void prepare_plan_cuda(SparsePlan& plan, int64_t group, const at::Device& device);

// Which tensor-core kernel executes a plan: kAuto takes wgmma (sm_90, D = 128) wherever it can run,
// mma.sync otherwise; naming one that cannot run these inputs is an error.
enum class SparseKernel { kAuto, kMmaSync, kWgmma };
inline const char* sparse_kernel_name(SparseKernel kernel) {
  switch (kernel) {
    case SparseKernel::kAuto: return "auto";
    case SparseKernel::kMmaSync: return "mma.sync";
    case SparseKernel::kWgmma: return "wgmma";
  }
  return "unknown";
}

// The kernel kAuto picks for this head dimension on the current GPU (kWgmma or kMmaSync).
SparseKernel auto_sparse_kernel(int64_t head_dim);

// What a kernel computes of a plan's chunks (plan_stats): the wgmma kernel skips idle row halves.
inline ChunkCompute chunk_compute(SparseKernel kernel) {
  return kernel == SparseKernel::kWgmma ? ChunkCompute::kSkipIdleHalves : ChunkCompute::kWhole;
}

// Executes `plan` on the GPU. q: [N, Hq, D], k, v: [N, Hkv, D], CUDA, bf16 or fp16, D in {64, 80, 128};
// plan tiles must be 128x64 (the PlanOptions defaults). Returns out [N, Hq, D] (q's dtype) and lse
// [Hq, N] fp32. Query head h reads KV head h / (Hq / Hkv) directly; permutations are applied through
// index loads.
AttentionOutput execute_plan_cuda(const SparsePlan& plan, const at::Tensor& q, const at::Tensor& k,
                                  const at::Tensor& v, SparseKernel kernel = SparseKernel::kAuto);

// Whether window_profile_cuda takes these q, k: CUDA, D <= 128 contiguous values that fill whole
// 16-byte pieces, every head's rows on 16-byte boundaries (contiguous [N, H, 64|80|128] tensors do).
bool window_profile_accepts(const at::Tensor& q, const at::Tensor& k);
// The last-query profiles of kernels/estimate.h by fused kernels, for q, k that window_profile_accepts
// (bf16, fp16 or fp32), of every query head in `heads` together (head h reads KV head h / (Hq / Hkv)):
// window rows [end - count, end), keys [0, end). key_filter: [end] fp64 on the device, or undefined.
// Returns column [H, end] fp64 and, when `distances`, distance [H, end] fp64 (else undefined), row x
// for heads[x].
std::pair<at::Tensor, at::Tensor> window_profile_cuda(const at::Tensor& q, const at::Tensor& k,
                                                      const std::vector<int64_t>& heads, int64_t end, int64_t count,
                                                      const at::Tensor& key_filter, bool distances);

// Median milliseconds of `fn` on the current CUDA stream over `repeats` runs after `warmup` runs,
// timed with CUDA events.
double time_cuda_ms(const std::function<void()>& fn, int warmup, int repeats);
void cuda_synchronize();
void cuda_release_cached_memory();  // returns the caching allocator's free blocks to the driver
void cuda_reset_peak_memory();
int64_t cuda_peak_memory_bytes();   // peak bytes allocated by LibTorch since the last reset
// "NVIDIA H100 80GB HBM3, driver 580.x, CUDA 13.0", or a message saying there is no GPU.
std::string cuda_device_description();

// Dense causal attention through PyTorch's SDPA backends on the GPU.
enum class DenseBackend { kCudnn, kFlash, kEfficient };
inline const char* dense_backend_name(DenseBackend backend) {
  switch (backend) {
    case DenseBackend::kCudnn: return "cudnn_sdpa";
    case DenseBackend::kFlash: return "flash_sdpa";
    case DenseBackend::kEfficient: return "efficient_sdpa";
  }
  return "unknown";
}

// The SDPA views of q, k, v: [1, Hq, N, D], with KV heads repeated for the backends that need it.
// Prepare once outside a timed region.
struct DenseInputs {
  at::Tensor q, k, v;
};
DenseInputs prepare_dense_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
// Returns out [N, Hq, D]. Throws naming the backend when it cannot run these inputs.
at::Tensor run_dense_cuda(const DenseInputs& inputs, DenseBackend backend);

}  // namespace mmi
