// `mmi ask`: one video (or a generated one) and a question through Qwen2.5-VL with any attention
// method. Prints the answer, the token counts and the timings (vision, pre-fill, attention, index);
// `--latency` pre-fills only, without a KV cache, to measure long inputs.
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "harness/cli.h"
#include "harness/commands.h"
#include "harness/run_info.h"
#include "harness/command_inputs.h"
#include "kernels/cuda/cuda_executor.h"
#include "kernels/method.h"
#include "models/qwen2_5_vl/model.h"

namespace mmi {
namespace {

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(i, ",");
  return s;
}

}  // namespace

int ask_command(int argc, char** argv) {
  ArgParser args("ask", "answer a question about a video with Qwen2.5-VL");
  add_model_options(args);
  add_prompt_options(args, "the video to ask about", "");
  args.option("method", "SPEC", "attention method, e.g. dense, vertical_slash:n_vertical=1000", "dense")
      .option("max-new-tokens", "N", "greedy decoding stops after N tokens", "64")
      .option("json", "FILE", "also write the result as JSON")
      .flag("latency", "pre-fill only: no KV cache and no decoding (long inputs)");
  if (!args.parse(argc, argv, 2)) {
    std::printf("%s", args.help().c_str());
    return 0;
  }
  if (!args.has("question")) throw UsageError("--question is required");
  const auto method = make_method_from_spec(args.get("method"));
  const bool latency = args.has("latency");
  at::InferenceMode inference;

  using Clock = std::chrono::steady_clock;
  const CommandModel loaded = load_command_model(args);
  const Qwen25VLModel* model = loaded.model.get();
  const bool gpu = loaded.gpu;
  int64_t frames = 0;
  const ModelInputs inputs = command_inputs(*model, args, &frames);
  const VisualBlock& block = inputs.blocks.at(0);
  std::printf("input: %s tokens (%s video in %lld groups of %lldx%lld from %zu frames, %s text); layout %s\n",
              with_commas(inputs.length()).c_str(), with_commas(inputs.visual_tokens()).c_str(),
              (long long)block.groups, (long long)block.rows, (long long)block.cols, (size_t)frames,
              with_commas(inputs.length() - inputs.visual_tokens()).c_str(), inputs.layout.describe().c_str());

  if (gpu) cuda_reset_peak_memory();
  double vision_ms = 0;
  const at::Tensor embeds = model->embed(inputs, &vision_ms);
  PrefillOptions options;
  options.method = method.get();
  options.keep_kv_cache = !latency;
  options.decode_capacity = latency ? 0 : args.get_int("max-new-tokens");
  const bool tty = isatty(fileno(stderr));
  options.on_layer = [&](int64_t layer, int64_t layers) {
    if (tty) std::fprintf(stderr, "\rpre-fill: layer %lld/%lld", (long long)layer, (long long)layers);
    if (tty && layer == layers) std::fprintf(stderr, "\r%30s\r", "");
  };
  PrefillResult result = model->prefill(inputs, embeds, options);
  std::vector<int64_t> answer;
  double decode_ms = 0;
  if (!latency) {
    const auto t0 = Clock::now();
    answer = model->decoder().greedy(result.logits[0], result.cache, args.get_int("max-new-tokens"),
                                     {model->config().text.eos_token_id});
    if (gpu) cuda_synchronize();
    decode_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }
  const double peak_gb = gpu ? cuda_peak_memory_bytes() / 1e9 : 0.0;
  std::printf("method: %s\n", method->describe().c_str());
  std::printf("timings: vision %.1f ms, pre-fill %.1f ms (attention %.1f ms, index %.1f ms), decode %.1f ms for %zu tokens\n",
              vision_ms, result.total_ms, result.attention_ms, result.index_ms, decode_ms, answer.size());
  if (!method->name().empty() && method->name() != "dense")
    std::printf("attention FLOPs: %.3f of dense (computed tiles)\n", result.flops_ratio);
  if (gpu) std::printf("peak GPU memory: %.2f GB (%s)\n", peak_gb, cuda_device_description().c_str());
  const std::string text = model->decode(answer);
  if (!latency) std::printf("answer: %s\n", text.c_str());

  if (args.has("json")) {
    nlohmann::json j = {{"model", model->describe()}, {"method", method->describe()},
                        {"tokens", inputs.length()}, {"visual_tokens", inputs.visual_tokens()},
                        {"frames", frames}, {"layout", inputs.layout.describe()},
                        {"vision_ms", vision_ms}, {"prefill_ms", result.total_ms},
                        {"attention_ms", result.attention_ms}, {"index_ms", result.index_ms},
                        {"decode_ms", decode_ms}, {"flops_ratio", result.flops_ratio},
                        {"peak_gpu_gb", peak_gb}, {"answer", text}, {"latency_mode", latency},
                        {"device", gpu ? cuda_device_description() : "cpu"}, {"commit", git_commit()},
                        {"timestamp", utc_timestamp()}};
    std::ofstream(args.get("json")) << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace mmi
