// The CUDA entry points in a build without the CUDA kernels (MMI_CUDA=OFF or no nvcc): they report
// that clearly instead of failing to link.
#include <stdexcept>

#include "kernels/cuda/cuda_executor.h"

namespace mmi {
namespace {

[[noreturn]] void no_cuda(const char* what) {
  throw std::runtime_error(std::string(what) +
                           ": this build has no CUDA kernels (configure with `cmake --preset cuda` or "
                           "`PRESET=cuda make`)");
}

}  // namespace

bool cuda_available() { return false; }

void prepare_plan_cuda(SparsePlan&, int64_t, const at::Device&) { no_cuda("prepare_plan_cuda"); }

AttentionOutput execute_plan_cuda(const SparsePlan&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                  SparseKernel) {
  no_cuda("execute_plan_cuda");
}

bool window_profile_accepts(const at::Tensor&, const at::Tensor&) { return false; }

std::pair<at::Tensor, at::Tensor> window_profile_cuda(const at::Tensor&, const at::Tensor&, const std::vector<int64_t>&,
                                                      int64_t, int64_t, const at::Tensor&, bool) {
  no_cuda("window_profile_cuda");
}

double time_cuda_ms(const std::function<void()>&, int, int) { no_cuda("time_cuda_ms"); }

void cuda_synchronize() { no_cuda("cuda_synchronize"); }

void cuda_release_cached_memory() {}

void cuda_reset_peak_memory() {}

int64_t cuda_peak_memory_bytes() { return 0; }

SparseKernel auto_sparse_kernel(int64_t) { no_cuda("auto_sparse_kernel"); }

std::string cuda_device_description() { return "no CUDA kernels in this build"; }

DenseInputs prepare_dense_inputs(const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  no_cuda("dense attention on the GPU");
}

at::Tensor run_dense_cuda(const DenseInputs&, DenseBackend) { no_cuda("dense attention on the GPU"); }

}  // namespace mmi
