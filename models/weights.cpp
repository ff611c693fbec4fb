#include "models/weights.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstring>
#include <sstream>
#include <stdexcept>

#include "models/safetensors.h"

namespace mmi {
namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  return s.str() + "]";
}

at::ScalarType scalar_type_of(DType dtype) {
  switch (dtype) {
    case DType::F64: return at::kDouble;
    case DType::F32: return at::kFloat;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::I64: return at::kLong;
    case DType::I32: return at::kInt;
    case DType::I16: return at::kShort;
    case DType::I8: return at::kChar;
    case DType::U8: return at::kByte;
    case DType::BOOL: return at::kBool;
    case DType::F8_E4M3: return at::kFloat8_e4m3fn;
    case DType::F8_E5M2: return at::kFloat8_e5m2;
  }
  throw std::logic_error("unhandled dtype");
}

// The names a tensor may carry: the Hub layout first, then transformers' in-memory layout.
std::vector<std::string> candidate_names(const std::string& name) {
  std::vector<std::string> names{name};
  const std::string model = "model.", visual = "visual.";
  if (name.compare(0, visual.size(), visual) == 0) names.push_back("model." + name);
  else if (name.compare(0, model.size(), model) == 0) names.push_back("model.language_model." + name.substr(model.size()));
  return names;
}

class CheckpointWeights : public WeightSource {
 public:
  CheckpointWeights(const std::string& folder, at::ScalarType dtype, at::Device device)
      : WeightSource(dtype, device), checkpoint_(folder) {}

  at::Tensor load(const std::string& name, const std::vector<int64_t>& shape, WeightInit) override {
    const TensorView* view = find(name);
    if (view == nullptr)
      throw std::runtime_error(checkpoint_.folder() + ": tensor '" + name + "' is missing from the checkpoint");
    if (view->shape != shape)
      throw std::runtime_error(checkpoint_.folder() + ": tensor '" + view->name + "' has shape " +
                               shape_string(view->shape) + ", the config implies " + shape_string(shape));
    const at::ScalarType stored = scalar_type_of(view->dtype);
    if (!at::isFloatingType(stored))
      throw std::runtime_error(checkpoint_.folder() + ": tensor '" + view->name + "' has dtype " +
                               dtype_name(view->dtype) + ", expected a floating-point type");
    return tensor_from_view(*view).to(device(), dtype());
  }

  bool contains(const std::string& name) const override { return find(name) != nullptr; }
  std::string describe() const override { return checkpoint_.folder(); }

 private:
  const TensorView* find(const std::string& name) const {
    for (const std::string& candidate : candidate_names(name))
      if (const TensorView* view = checkpoint_.find(candidate)) return view;
    return nullptr;
  }

  Checkpoint checkpoint_;
};

class RandomWeights : public WeightSource {
 public:
  RandomWeights(uint64_t seed, at::ScalarType dtype, at::Device device)
      : WeightSource(dtype, device), seed_(seed), generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {
    if (device.is_cuda()) at::manual_seed(seed);
  }

  at::Tensor load(const std::string&, const std::vector<int64_t>& shape, WeightInit init) override {
    const auto opts = at::TensorOptions().dtype(dtype()).device(device());
    if (init == WeightInit::kOnes) return at::ones(shape, opts);
    at::Tensor out = at::empty(shape, opts);
    // On the GPU the device generator (seeded once) is fast enough for 8B parameters; on the CPU one
    // seeded generator fills bounded fp32 slices in load order.
    if (out.is_cuda()) return out.normal_(0.0, 0.02);
    at::Tensor flat = out.view({-1});
    const int64_t slice = int64_t(1) << 24;
    for (int64_t s = 0; s < flat.numel(); s += slice) {
      const int64_t n = std::min(slice, flat.numel() - s);
      flat.narrow(0, s, n).copy_(at::normal(0.0, 0.02, {n}, generator_));
    }
    return out;
  }

  bool contains(const std::string&) const override { return true; }
  std::string describe() const override { return "random weights (seed " + std::to_string(seed_) + ")"; }

 private:
  uint64_t seed_;
  at::Generator generator_;
};

}  // namespace

at::Tensor tensor_from_view(const TensorView& view) {
  at::Tensor host = at::empty(view.shape, at::TensorOptions().dtype(scalar_type_of(view.dtype)));
  if (view.nbytes > 0) std::memcpy(host.data_ptr(), view.data, view.nbytes);
  return host;
}

std::unique_ptr<WeightSource> checkpoint_weights(const std::string& folder, at::ScalarType dtype, at::Device device) {
  return std::make_unique<CheckpointWeights>(folder, dtype, device);
}

std::unique_ptr<WeightSource> random_weights(uint64_t seed, at::ScalarType dtype, at::Device device) {
  return std::make_unique<RandomWeights>(seed, dtype, device);
}

}  // namespace mmi
