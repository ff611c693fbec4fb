#include "kernels/method.h"

#include <ATen/ATen.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <stdexcept>

#include "kernels/cpu/executor.h"
#include "kernels/cuda/cuda_executor.h"
#include "kernels/estimate.h"
#include "kernels/method_config.h"

namespace mmi {
namespace {

// A method that applies one configured pattern (and boundary kind) to every head of every layer.
class PatternMethod : public AttentionMethod {
 public:
  PatternMethod(std::string name, HeadConfig config) : AttentionMethod(std::move(name)), config_(config) {}
  std::string describe() const override {
    std::string text = config_.patterns[0][0].describe();
    if (config_.boundary != BoundaryKind::kNone) text += "[boundary=" + std::string(boundary_name(config_.boundary)) + "]";
    return text;
  }
  HeadConfig head_config(const AttentionContext&, int) const override { return config_; }

 private:
  HeadConfig config_;
};

// Dense attention: its plan is the full causal mask (for statistics); it runs the dense kernel.
class DenseMethod : public PatternMethod {
 public:
  DenseMethod() : PatternMethod("dense", uniform_head(PatternParams{})) {}
  AttentionOutput run(const SparsePlan& plan, const at::Tensor& q, const at::Tensor& k,
                      const at::Tensor& v) const override {
    if (!q.is_cuda()) return dense_attention_cpu(q, k, v);
    return AttentionMethod::run(plan, q, k, v);  // our kernel on the full causal plan
  }
};

// MMInference: every (layer, head) has its own pattern and boundary kind from a searched table.
class MMInferenceMethod : public AttentionMethod {
 public:
  explicit MMInferenceMethod(PatternTable table) : AttentionMethod("mminference"), table_(std::move(table)) {}
  std::string describe() const override { return "mminference(table=" + table_.source() + ")"; }
  HeadConfig head_config(const AttentionContext& ctx, int head) const override { return table_.head(ctx.layer, head); }

 private:
  PatternTable table_;
};

struct Registration {
  const char* name;
  const char* summary;
};
constexpr Registration kMethods[] = {
    {"dense", "causal softmax attention over every key"},
    {"a_shape", "sink + local window (StreamingLLM)"},
    {"tri_shape", "A-shape plus dense last rows (the question sees everything)"},
    {"sf_fixed", "Sparse Transformer fixed: own block + block-head columns"},
    {"sf_strided", "Sparse Transformer strided: local window + strided diagonals"},
    {"vertical_slash", "MInference: top verticals and slashes from the last queries"},
    {"grid", "MMInference grid head: stride/phase lines, permuted"},
    {"mminference", "per-layer, per-head table of patterns and boundary kinds"},
};

std::string known_methods() {
  std::string out;
  for (const auto& m : kMethods) out += (out.empty() ? "" : ", ") + std::string(m.name);
  return out;
}

std::unique_ptr<AttentionMethod> make_mminference(const YAML::Node& params) {
  const std::string where = "method mminference";
  for (const auto& entry : params) {
    const std::string key = entry.first.as<std::string>();
    if (key != "table" && key != "default" && key != "layers") {
      throw std::invalid_argument(where + ": unknown parameter '" + key + "' (known: table, default, layers)");
    }
  }
  if (!params["table"] && !params["default"] && !params["layers"]) {
    throw std::invalid_argument(where + ": needs 'table: FILE' (a per-head table written by `mmi search`, "
                                "see configs/patterns/) or an inline 'default:'/'layers:'");
  }
  if (!params["table"]) return std::make_unique<MMInferenceMethod>(PatternTable::parse(params, "inline table"));
  PatternTable table = PatternTable::load(params["table"].as<std::string>());
  if (params["default"] || params["layers"]) {
    throw std::invalid_argument(where + ": give either 'table:' or inline 'default:'/'layers:', not both");
  }
  return std::make_unique<MMInferenceMethod>(std::move(table));
}

}  // namespace

SparsePlan AttentionMethod::plan(const AttentionContext& ctx, const at::Tensor& q, const at::Tensor& k) const {
  using Clock = std::chrono::steady_clock;
  auto since = [](Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); };
  auto t = Clock::now();
  const std::vector<ResolvedHead> heads = resolve(ctx, q, k);  // ends with index copies to the host
  const double estimate_ms = since(t);
  t = Clock::now();
  SparsePlan plan = build_plan(*ctx.layout, heads, plan_options);
  plan.estimate_ms = estimate_ms;
  plan.build_ms = since(t);
  if (q.is_cuda()) {  // the upload is part of the index build
    t = Clock::now();
    prepare_plan_cuda(plan, q.size(1) / k.size(1), q.device());
    cuda_synchronize();
    plan.upload_ms = since(t);
  }
  return plan;
}

std::vector<ResolvedHead> AttentionMethod::resolve(const AttentionContext& ctx, const at::Tensor& q,
                                                   const at::Tensor& k) const {
  if (!ctx.layout) throw std::invalid_argument(name() + ": no sequence layout given");
  if (ctx.layout->length() != q.size(0)) {
    throw std::invalid_argument(name() + ": layout has " + std::to_string(ctx.layout->length()) +
                                " tokens but q has " + std::to_string(q.size(0)));
  }
  std::vector<ResolvedHead> heads(q.size(1));  // sized once: the batch writes into their index lists
  EstimateBatch batch;
  for (int h = 0; h < q.size(1); ++h) resolve_head(*ctx.layout, head_config(ctx, h), q, k, h, batch, heads[h]);
  batch.run();
  return heads;
}

AttentionOutput AttentionMethod::run(const SparsePlan& plan, const at::Tensor& q, const at::Tensor& k,
                                     const at::Tensor& v) const {
  return q.is_cuda() ? execute_plan_cuda(plan, q, k, v) : execute_plan_cpu(plan, q, k, v);
}

std::vector<std::string> method_names() {
  std::vector<std::string> out;
  for (const auto& m : kMethods) out.push_back(m.name);
  return out;
}

std::unique_ptr<AttentionMethod> make_method(const std::string& name, const YAML::Node& params) {
  if (params && !params.IsNull() && !params.IsMap()) {
    throw std::invalid_argument("method " + name + ": parameters must be a map");
  }
  if (name == "mminference") return make_mminference(params ? params : YAML::Node(YAML::NodeType::Map));
  PatternKind kind;
  try {
    kind = parse_pattern(name);
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument("unknown attention method '" + name + "' (known: " + known_methods() + ")");
  }
  if (kind == PatternKind::kDense) {
    if (params && params.size() > 0) throw std::invalid_argument("method dense takes no parameters");
    return std::make_unique<DenseMethod>();
  }
  const std::string where = "method " + name;
  const PatternParams p = parse_pattern_params(params, kind, where, {"boundary"});
  BoundaryKind boundary = BoundaryKind::kNone;
  if (params && params["boundary"]) {
    try {
      boundary = parse_boundary(params["boundary"].as<std::string>());
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(where + ": " + e.what());
    }
  }
  return std::make_unique<PatternMethod>(name, uniform_head(p, boundary));
}

std::unique_ptr<AttentionMethod> make_method(const std::string& name) { return make_method(name, YAML::Node()); }

std::unique_ptr<AttentionMethod> make_method_from_spec(const std::string& spec) {
  const size_t colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  YAML::Node params(YAML::NodeType::Map);
  if (colon != std::string::npos) {
    const std::string args = spec.substr(colon + 1);
    size_t start = 0;
    while (start <= args.size()) {
      const size_t comma = std::min(args.find(',', start), args.size());
      const std::string item = args.substr(start, comma - start);
      const size_t eq = item.find('=');
      if (eq == std::string::npos || eq == 0) {
        throw std::invalid_argument("method spec '" + spec + "': expected NAME:key=value,key=value, got '" + item + "'");
      }
      params[item.substr(0, eq)] = item.substr(eq + 1);
      start = comma + 1;
    }
  }
  return make_method(name, params);
}

}  // namespace mmi
