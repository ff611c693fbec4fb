// AttentionMethod: the seam where dense attention is swapped for a sparse method. A method first
// plans (estimates each head's index online and builds the SparsePlan), then runs the plan; the two
// are timed separately and the plan can be inspected. Methods are built by name from YAML through one
// registry; an unknown name is an error that lists the known ones.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/executor.h"
#include "kernels/layout.h"
#include "kernels/pattern.h"
#include "kernels/plan.h"
#include "kernels/plan_builder.h"

namespace YAML {
class Node;
}

namespace mmi {

// What a method knows about the call besides q, k, v.
struct AttentionContext {
  const SequenceLayout* layout = nullptr;
  int layer = 0;
};

class AttentionMethod {
 public:
  virtual ~AttentionMethod() = default;
  const std::string& name() const { return name_; }
  virtual std::string describe() const = 0;  // name and parameters, e.g. "a_shape(sink=128,local=4096)"

  // q: [N, Hq, D], k: [N, Hkv, D] (fp32/bf16/fp16). Resolves every head and builds the plan.
  virtual SparsePlan plan(const AttentionContext& ctx, const at::Tensor& q, const at::Tensor& k) const;
  // q: [N, Hq, D], k, v: [N, Hkv, D]. Returns out: [N, Hq, D] in q's dtype and lse: [Hq, N] fp32.
  virtual AttentionOutput run(const SparsePlan& plan, const at::Tensor& q, const at::Tensor& k,
                              const at::Tensor& v) const;

  // The configured patterns of query head `head` in layer ctx.layer.
  virtual HeadConfig head_config(const AttentionContext& ctx, int head) const = 0;
  // The resolved patterns of every query head (online estimation happens here).
  std::vector<ResolvedHead> resolve(const AttentionContext& ctx, const at::Tensor& q, const at::Tensor& k) const;

  PlanOptions plan_options;

 protected:
  explicit AttentionMethod(std::string name) : name_(std::move(name)) {}

 private:
  std::string name_;
};

// The registered method names, in a stable order.
std::vector<std::string> method_names();

// Builds a method from its name and a YAML map of parameters (may be null/empty for defaults).
// Unknown names, unknown parameters and bad values throw std::invalid_argument naming them.
std::unique_ptr<AttentionMethod> make_method(const std::string& name, const YAML::Node& params);
std::unique_ptr<AttentionMethod> make_method(const std::string& name);

// Parses "name" or "name:key=value,key=value" (values as YAML scalars; lists as a|b|c).
std::unique_ptr<AttentionMethod> make_method_from_spec(const std::string& spec);

}  // namespace mmi
