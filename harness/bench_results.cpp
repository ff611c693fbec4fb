#include "harness/bench_results.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <stdexcept>

#include "tasks/files.h"

namespace mmi {
namespace {

// The numbers of a case under their JSON keys (the names the README's tables and scripts read).
using NumberField = std::pair<const char*, double KernelBenchRecord::*>;
const std::vector<NumberField>& number_fields() {
  static const std::vector<NumberField> fields = {
      {"plan_ms", &KernelBenchRecord::plan_ms},
      {"plan_estimate_ms", &KernelBenchRecord::estimate_ms},
      {"plan_build_ms", &KernelBenchRecord::build_ms},
      {"plan_upload_ms", &KernelBenchRecord::upload_ms},
      {"peak_gpu_gb", &KernelBenchRecord::peak_memory_gb},
      {"run_ms", &KernelBenchRecord::run_ms},
      {"density", &KernelBenchRecord::density},
      {"flops_ratio", &KernelBenchRecord::flops_ratio},
      {"achieved_tflops", &KernelBenchRecord::achieved_tflops},
      {"effective_tflops", &KernelBenchRecord::effective_tflops},
      {"speedup_vs_cudnn", &KernelBenchRecord::speedup},
      {"speedup_with_plan_vs_cudnn", &KernelBenchRecord::speedup_with_plan}};
  return fields;
}

}  // namespace

nlohmann::json bench_document(const BenchContext& context, const std::vector<KernelBenchRecord>& cases) {
  nlohmann::json document;
  document["context"] = {{"command", "mmi bench attention"}, {"device", context.device},
                         {"kernel", context.kernel},         {"commit", context.commit},
                         {"libtorch", context.libtorch},     {"time", context.time},
                         {"heads", context.heads},           {"kv_heads", context.kv_heads},
                         {"head_dim", context.head_dim},     {"dtype", context.dtype},
                         {"tokens_per_frame", context.tokens_per_frame},
                         {"repeats", context.repeats},       {"inputs", context.inputs},
                         {"seed", context.seed}};
  document["cases"] = nlohmann::json::array();
  for (const KernelBenchRecord& c : cases) {
    nlohmann::json row = {{"tokens", c.tokens}, {"method", c.method}, {"configuration", c.configuration}};
    for (const auto& [key, field] : number_fields()) {
      if (!std::isnan(c.*field)) row[key] = c.*field;
    }
    if (c.status != "ok") row["error"] = c.error.empty() ? c.status : c.error;
    document["cases"].push_back(row);
  }
  return document;
}

BenchDocument read_bench_document(const std::string& path) {
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not JSON (" + e.what() + ")");
  }
  if (!document.is_object() || !document.contains("context") || !document["context"].is_object() ||
      !document.contains("cases") || !document["cases"].is_array()) {
    throw std::runtime_error(path + ": not an `mmi bench attention --json` file (it has no \"context\" and \"cases\")");
  }
  const nlohmann::json& ctx = document["context"];
  auto text = [&](const char* key) { return ctx.contains(key) && ctx[key].is_string() ? ctx[key].get<std::string>() : ""; };
  auto integer = [&](const char* key) { return ctx.contains(key) && ctx[key].is_number_integer() ? ctx[key].get<int64_t>() : 0; };
  BenchDocument out;
  BenchContext& c = out.context;
  c.device = text("device");
  c.kernel = text("kernel");
  c.commit = text("commit");
  c.libtorch = text("libtorch");
  c.time = text("time");
  c.dtype = text("dtype");
  c.inputs = text("inputs");
  c.heads = integer("heads");
  c.kv_heads = integer("kv_heads");
  c.head_dim = integer("head_dim");
  c.tokens_per_frame = integer("tokens_per_frame");
  c.repeats = integer("repeats");
  c.seed = integer("seed");
  for (size_t i = 0; i < document["cases"].size(); ++i) {
    const nlohmann::json& row = document["cases"][i];
    const std::string where = path + ": case " + std::to_string(i + 1);
    if (!row.is_object() || !row.contains("tokens") || !row["tokens"].is_number_integer() ||
        !row.contains("method") || !row["method"].is_string()) {
      throw std::runtime_error(where + " has no \"tokens\" (an integer) and \"method\" (a string)");
    }
    KernelBenchRecord r;
    r.tokens = row["tokens"].get<int64_t>();
    r.method = row["method"].get<std::string>();
    if (row.contains("configuration") && row["configuration"].is_string()) r.configuration = row["configuration"];
    for (const auto& [key, field] : number_fields()) {
      if (!row.contains(key)) continue;
      if (!row[key].is_number()) throw std::runtime_error(where + ": \"" + key + "\" is not a number");
      r.*field = row[key].get<double>();
    }
    if (row.contains("error")) {
      r.status = "failed";
      r.error = row["error"].is_string() ? row["error"].get<std::string>() : row["error"].dump();
    }
    r.heads = c.heads;
    r.kv_heads = c.kv_heads;
    r.head_dim = c.head_dim;
    r.dtype = c.dtype;
    r.inputs = c.inputs;
    out.cases.push_back(std::move(r));
  }
  return out;
}

void write_json_file(const std::string& path, const nlohmann::json& document) {
  make_directories(parent_directory(path));
  const std::string temporary = path + ".partial";
  {
    std::ofstream file(temporary);
    file << document.dump(2) << "\n";
    if (!file) throw std::runtime_error(path + ": cannot write (" + temporary + ")");
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw std::runtime_error(path + ": cannot replace it with " + temporary);
  }
}

KernelBenchRecord failed_bench_case(int64_t tokens, const std::string& method, const std::string& error) {
  KernelBenchRecord c;
  c.tokens = tokens;
  c.method = method;
  c.status = "failed";
  c.error = error;
  return c;
}

std::string method_label(const KernelBenchRecord& c) {
  const bool described = c.configuration.find('(') != std::string::npos;
  return described ? c.configuration.substr(0, c.configuration.find(' ')) : c.method;
}

std::vector<Crossover> crossovers(const std::vector<KernelBenchRecord>& cases) {
  std::vector<Crossover> out;
  constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  for (const KernelBenchRecord& c : cases) {
    if (c.status != "ok" || std::isnan(c.speedup) || c.method.find("_sdpa") != std::string::npos) continue;
    const std::string label = method_label(c);
    auto it = std::find_if(out.begin(), out.end(), [&](const Crossover& x) { return x.label == label; });
    if (it == out.end()) it = out.insert(out.end(), Crossover{label, kNever, kNever});
    if (c.speedup > 1.0) it->kernel_tokens = std::min(it->kernel_tokens, c.tokens);
    if (c.speedup_with_plan > 1.0) it->with_plan_tokens = std::min(it->with_plan_tokens, c.tokens);
  }
  for (Crossover& x : out) {
    if (x.kernel_tokens == kNever) x.kernel_tokens = 0;
    if (x.with_plan_tokens == kNever) x.with_plan_tokens = 0;
  }
  return out;
}

std::string length_label(int64_t tokens) {
  constexpr int64_t kK = 1024, kM = 1024 * 1024;
  if (tokens > 0 && tokens % kM == 0) return std::to_string(tokens / kM) + "M";
  if (tokens > 0 && tokens % kK == 0) return std::to_string(tokens / kK) + "K";
  return std::to_string(tokens);
}

}  // namespace mmi
