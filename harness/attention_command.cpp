// `mmi attention`: plan and run attention methods on a synthetic layout and compare them with dense
// attention: density, computed-tile FLOPs, recall, output error, plan and run time.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>

#include "harness/cli.h"
#include "harness/commands.h"
#include "kernels/cpu/executor.h"
#include "kernels/method.h"
#include "kernels/metrics.h"
#include "kernels/synthetic.h"

namespace mmi {
namespace {

constexpr const char* kDefaultLayout = "text:128,video:16x8x16,text:64";

struct Row {
  std::string method, description, error;
  double density = 0, flops = 0, recall = NAN, error_vs_dense = NAN, plan_ms = 0, run_ms = NAN;
  double estimate_ms = 0, build_ms = 0;
};

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Every method with parameters scaled to the sequence, so the comparison means something at any size.
std::vector<std::unique_ptr<AttentionMethod>> default_methods(const SequenceLayout& layout, int64_t heads) {
  const int64_t n = layout.length();
  const std::string local = std::to_string(round_up(std::max<int64_t>(n / 16, 64), 64));
  const std::string budget = std::to_string(std::max<int64_t>(n / 16, 64));
  std::vector<std::unique_ptr<AttentionMethod>> out;
  for (const std::string& spec : {std::string("dense"), "a_shape:sink=64,local=" + local,
                                  "tri_shape:sink=64,local=" + local + ",last_rows=64", std::string("sf_fixed"),
                                  std::string("sf_strided"),
                                  "vertical_slash:n_vertical=" + budget + ",n_slash=" + budget,
                                  "grid:lines=vs,local=" + local}) {
    out.push_back(make_method_from_spec(spec));
  }
  // MMInference with a mixed table: grid, Q-boundary Vertical-Slash and A-shape heads in turn.
  YAML::Node table;
  for (int64_t h = 0; h < heads; ++h) {
    YAML::Node entry;
    switch (h % 3) {
      case 0: entry["pattern"] = "grid"; entry["lines"] = "vs"; entry["local"] = local; break;
      case 1:
        entry["pattern"] = "vertical_slash"; entry["n_vertical"] = budget; entry["n_slash"] = budget;
        entry["boundary"] = "q";
        break;
      default: entry["pattern"] = "a_shape"; entry["sink"] = 64; entry["local"] = local; break;
    }
    table["layers"]["0"][std::to_string(h)] = entry;
  }
  table["default"]["pattern"] = "a_shape";
  table["default"]["local"] = local;
  out.push_back(make_method("mminference", table));
  return out;
}

std::unique_ptr<AttentionMethod> method_from_yaml(const YAML::Node& node) {
  if (node.IsScalar()) return make_method_from_spec(node.as<std::string>());
  if (!node.IsMap() || !node["name"]) {
    throw std::invalid_argument("config: each entry of 'methods' is NAME, NAME:k=v,... or a map with 'name:'" +
                                std::string(" (line ") + std::to_string(node.Mark().line + 1) + ")");
  }
  YAML::Node params(YAML::NodeType::Map);
  for (const auto& entry : node) {
    if (entry.first.as<std::string>() != "name") params[entry.first] = entry.second;
  }
  return make_method(node["name"].as<std::string>(), params);
}

void print_table(const std::vector<Row>& rows, const SequenceLayout& layout, const SyntheticOptions& o) {
  std::printf("layout %s: %lld tokens, %lld query heads / %lld KV heads, head_dim %lld\n",
              layout.describe().c_str(), (long long)layout.length(), (long long)o.heads, (long long)o.kv_heads,
              (long long)o.head_dim);
  std::printf("%-16s %8s %8s %8s %10s %9s %9s  %s\n", "method", "density", "FLOPs", "recall", "err/dense",
              "plan ms", "run ms", "configuration");
  for (const Row& r : rows) {
    if (!r.error.empty()) {
      std::printf("%-16s error: %s\n", r.method.c_str(), r.error.c_str());
      continue;
    }
    std::printf("%-16s %7.2f%% %7.2f%% %8.4f %10.2e %9.1f %9.1f  %s\n", r.method.c_str(), 100 * r.density,
                100 * r.flops, r.recall, r.error_vs_dense, r.plan_ms, r.run_ms, r.description.c_str());
    if (std::isnan(r.run_ms)) {
      std::printf("%-16s plan: %.1f ms estimating the index, %.1f ms building the plan\n", "", r.estimate_ms, r.build_ms);
    }
  }
  std::printf("density: kept / causal elements; FLOPs: computed-tile FLOPs / dense causal FLOPs (2*N^2*d);\n"
              "recall: share of dense softmax mass kept; err/dense: relative Frobenius error of the output.\n");
}

void write_json(const std::string& path, const std::vector<Row>& rows, const SequenceLayout& layout,
                const SyntheticOptions& o) {
  nlohmann::json j;
  j["layout"] = layout.describe();
  j["tokens"] = layout.length();
  j["heads"] = o.heads;
  j["kv_heads"] = o.kv_heads;
  j["head_dim"] = o.head_dim;
  for (const Row& r : rows) {
    nlohmann::json m = {{"method", r.method}, {"configuration", r.description}};
    if (r.error.empty()) {
      m.update({{"density", r.density}, {"flops_ratio", r.flops}, {"plan_ms", r.plan_ms},
                {"plan_estimate_ms", r.estimate_ms}, {"plan_build_ms", r.build_ms}});
      if (!std::isnan(r.run_ms)) {
        m.update({{"recall", r.recall}, {"relative_error", r.error_vs_dense}, {"run_ms", r.run_ms}});
      }
    } else {
      m["error"] = r.error;
    }
    j["methods"].push_back(m);
  }
  std::ofstream file(path);
  if (!file) throw std::runtime_error("cannot write " + path);
  file << j.dump(2) << "\n";
}

}  // namespace

int attention_command(int argc, char** argv) {
  ArgParser args("attention",
                 "Plans and runs attention methods on synthetic q, k, v over a sequence layout and compares\n"
                 "each with dense attention. Without --method or a config, every method is run with\n"
                 "parameters scaled to the sequence.");
  args.option("layout", "SPEC", "spans, e.g. text:128,video:16x8x16,text:64 (video:FxHxW or FxT, image:HxW)",
              kDefaultLayout)
      .option("heads", "N", "query heads", "4")
      .option("kv-heads", "N", "KV heads (GQA)", "2")
      .option("head-dim", "D", "head dimension", "64")
      .option("dtype", "T", "fp32, bf16 or fp16", "fp32")
      .option("inputs", "KIND", "structured (sinks, local, grid columns) or random", "structured")
      .option("seed", "N", "random seed", "0")
      .repeated("method", "SPEC", "NAME or NAME:key=value,... e.g. a_shape:sink=64,local=512")
      .option("config", "FILE", "YAML with layout/heads/kv_heads/head_dim/dtype/inputs/seed/methods")
      .option("json", "FILE", "also write the results as JSON")
      .flag("plan-only", "only build the plans: density, FLOPs and plan time (estimate/build split), no run");
  if (!args.parse(argc, argv, 2)) {
    std::printf("%s\nmethods: ", args.help().c_str());
    for (const auto& name : method_names()) std::printf("%s ", name.c_str());
    std::printf("\n");
    return 0;
  }
  YAML::Node config;
  if (args.has("config")) {
    try {
      config = YAML::LoadFile(args.get("config"));
    } catch (const YAML::Exception& e) {
      throw std::invalid_argument(args.get("config") + ": " + e.what());
    }
  }
  // The command line wins over the config file, which wins over the defaults.
  auto setting = [&](const char* flag, const char* key) {
    if (!args.has(flag) && config && config[key]) return config[key].as<std::string>();
    return args.get(flag);
  };
  auto int_setting = [&](const char* flag, const char* key) {
    const std::string text = setting(flag, key);
    int64_t value = 0;
    if (!parse_int64(text, value)) throw UsageError(std::string("--") + flag + " must be an integer, got '" + text + "'");
    return value;
  };
  const SequenceLayout layout = SequenceLayout::parse(setting("layout", "layout"));
  SyntheticOptions o;
  o.heads = int_setting("heads", "heads");
  o.kv_heads = int_setting("kv-heads", "kv_heads");
  o.head_dim = int_setting("head-dim", "head_dim");
  o.dtype = parse_dtype(setting("dtype", "dtype"));
  const std::string inputs = setting("inputs", "inputs");
  if (inputs != "structured" && inputs != "random") throw UsageError("--inputs must be structured or random");
  o.structured = inputs == "structured";
  o.seed = int_setting("seed", "seed");

  std::vector<std::unique_ptr<AttentionMethod>> methods;
  for (const std::string& spec : args.get_all("method")) methods.push_back(make_method_from_spec(spec));
  if (methods.empty() && config && config["methods"]) {
    for (const auto& node : config["methods"]) methods.push_back(method_from_yaml(node));
  }
  if (methods.empty()) methods = default_methods(layout, o.heads);

  const QKV x = make_qkv(layout, o);
  const bool plan_only = args.has("plan-only");
  const AttentionOutput dense = plan_only ? AttentionOutput{} : dense_attention_cpu(x.q, x.k, x.v);
  const AttentionContext ctx{&layout, 0};
  std::vector<Row> rows;
  for (const auto& method : methods) {
    Row row;
    row.method = method->name();
    row.description = method->describe();
    try {
      auto t0 = std::chrono::steady_clock::now();
      const SparsePlan plan = method->plan(ctx, x.q, x.k);
      row.plan_ms = ms_since(t0);
      row.estimate_ms = plan.estimate_ms;
      row.build_ms = plan.build_ms;
      const PlanStats stats = plan_stats(plan);
      row.density = stats.density();
      row.flops = stats.flops_ratio(layout.length());
      if (method->name() == "mminference" || method->name() == "grid") row.description += " " + plan.heads[0].description;
      if (plan_only) {
        rows.push_back(row);
        continue;
      }
      t0 = std::chrono::steady_clock::now();
      const AttentionOutput out = method->run(plan, x.q, x.k, x.v);
      row.run_ms = ms_since(t0);
      row.recall = attention_recall(out.lse, dense.lse);
      row.error_vs_dense = relative_error(out.out, dense.out);
    } catch (const std::exception& e) {
      row.error = e.what();
    }
    rows.push_back(row);
  }
  print_table(rows, layout, o);
  if (args.has("json")) write_json(args.get("json"), rows, layout, o);
  for (const Row& r : rows) {
    if (!r.error.empty()) return 1;
  }
  return 0;
}

}  // namespace mmi
