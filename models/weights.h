// Where a model's parameters come from: a Hugging Face checkpoint folder (memory-mapped
// safetensors, sharded or not), or seeded random values of the right shapes for latency runs
// without a checkpoint. Names are given in the layout the Hub uses
// ("model.layers.0.mlp.up_proj.weight", "visual.blocks.0..."); checkpoints saved with the
// transformers >= 4.52 in-memory names ("model.language_model.*", "model.visual.*") are found too.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mmi {

struct TensorView;

// A CPU copy of a safetensors tensor in its stored dtype (through an aligned buffer: files need not
// align their data).
at::Tensor tensor_from_view(const TensorView& view);

enum class WeightInit { kNormal, kOnes };  // what random weights use for this tensor

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // The tensor `name` with exactly `shape`, converted to the source's dtype and device. Throws
  // std::runtime_error naming the file and the tensor when it is missing or its shape differs.
  virtual at::Tensor load(const std::string& name, const std::vector<int64_t>& shape,
                          WeightInit init) = 0;
  virtual bool contains(const std::string& name) const = 0;
  virtual std::string describe() const = 0;  // the folder, or "random weights (seed 0)"

  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }

 protected:
  WeightSource(at::ScalarType dtype, at::Device device) : dtype_(dtype), device_(device) {}

 private:
  at::ScalarType dtype_;
  at::Device device_;
};

std::unique_ptr<WeightSource> checkpoint_weights(const std::string& folder, at::ScalarType dtype,
                                                 at::Device device);
// Normal(0, 0.02) for matrices and biases, ones for norm weights; the same seed gives the same
// values.
std::unique_ptr<WeightSource> random_weights(uint64_t seed, at::ScalarType dtype,
                                             at::Device device);

}  // namespace mmi
