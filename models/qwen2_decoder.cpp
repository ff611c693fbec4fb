#include "models/qwen2_decoder.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <stdexcept>

#include "kernels/cuda/cuda_executor.h"
#include "kernels/method.h"
#include "models/layers.h"
#include "models/weights.h"

namespace mmi {
namespace {

using Clock = std::chrono::steady_clock;

// Milliseconds since `start`, after the GPU has finished what was queued (when there is one).
double elapsed_ms(Clock::time_point start, bool on_gpu) {
  if (on_gpu) cuda_synchronize();
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// x: [L, H, D]; cos, sin: [L, D].
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  return x * cos.unsqueeze(1) + rotate_half(x) * sin.unsqueeze(1);
}

// Dense causal attention: cuDNN SDPA on the GPU, the chunked exact kernel on the CPU.
at::Tensor dense_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  if (q.is_cuda()) return run_dense_cuda(prepare_dense_inputs(q, k, v), DenseBackend::kCudnn);
  return dense_attention_cpu(q, k, v).out;
}

}  // namespace

Qwen2Decoder::Qwen2Decoder(const Qwen2Config& config, WeightSource& w) : config_(config) {
  config_.validate();
  const int64_t h = config.hidden_size, qd = config.num_heads * config.head_dim,
                kvd = config.num_kv_heads * config.head_dim, ffn = config.intermediate_size;
  embed_tokens_ = w.load("model.embed_tokens.weight", {config.vocab_size, h}, WeightInit::kNormal);
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Layer l;
    l.input_norm = w.load(p + "input_layernorm.weight", {h}, WeightInit::kOnes);
    l.q_w = w.load(p + "self_attn.q_proj.weight", {qd, h}, WeightInit::kNormal);
    l.q_b = w.load(p + "self_attn.q_proj.bias", {qd}, WeightInit::kNormal);
    l.k_w = w.load(p + "self_attn.k_proj.weight", {kvd, h}, WeightInit::kNormal);
    l.k_b = w.load(p + "self_attn.k_proj.bias", {kvd}, WeightInit::kNormal);
    l.v_w = w.load(p + "self_attn.v_proj.weight", {kvd, h}, WeightInit::kNormal);
    l.v_b = w.load(p + "self_attn.v_proj.bias", {kvd}, WeightInit::kNormal);
    l.o_w = w.load(p + "self_attn.o_proj.weight", {h, qd}, WeightInit::kNormal);
    l.post_norm = w.load(p + "post_attention_layernorm.weight", {h}, WeightInit::kOnes);
    l.gate_w = w.load(p + "mlp.gate_proj.weight", {ffn, h}, WeightInit::kNormal);
    l.up_w = w.load(p + "mlp.up_proj.weight", {ffn, h}, WeightInit::kNormal);
    l.down_w = w.load(p + "mlp.down_proj.weight", {h, ffn}, WeightInit::kNormal);
    layers_.push_back(std::move(l));
  }
  final_norm_ = w.load("model.norm.weight", {h}, WeightInit::kOnes);
  // Tied checkpoints (the 3B) may still carry a copy of lm_head; prefer it when present.
  lm_head_ = config.tie_word_embeddings && !w.contains("lm_head.weight")
                 ? embed_tokens_
                 : w.load("lm_head.weight", {config.vocab_size, h}, WeightInit::kNormal);
}

at::Tensor Qwen2Decoder::embed(const at::Tensor& ids) const {
  if (ids.numel() > 0 && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= config_.vocab_size))
    throw std::invalid_argument("token id out of range [0, " + std::to_string(config_.vocab_size) + ")");
  return embed_tokens_.index_select(0, ids.to(embed_tokens_.device(), at::kLong).reshape({-1}));
}

at::Tensor Qwen2Decoder::rms_norm(const at::Tensor& x, const at::Tensor& weight) const {
  return mmi::rms_norm(x, weight, config_.rms_norm_eps);
}

at::Tensor Qwen2Decoder::mlp(const Layer& l, const at::Tensor& x) const {
  return at::linear(at::silu(at::linear(x, l.gate_w)) * at::linear(x, l.up_w), l.down_w);
}

std::pair<at::Tensor, at::Tensor> Qwen2Decoder::rope_tables(const at::Tensor& positions) const {
  const at::Tensor pos = positions.reshape({-1, positions.size(-1)}).to(at::kFloat) / config_.rope_linear_factor;
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(pos.device());
  // Angles in fp32: positions reach 1M and bf16 angles would be useless there.
  const at::Tensor inv_freq =
      1.0 / at::pow(config_.rope_theta, at::arange(0, config_.head_dim, 2, f32) / double(config_.head_dim));
  at::Tensor freqs;  // [L, D/2]
  if (config_.mrope_section.empty()) {
    freqs = pos[0].unsqueeze(1) * inv_freq.unsqueeze(0);
  } else {
    if (pos.size(0) != 3) throw std::invalid_argument("M-RoPE needs 3 position rows (time, height, width)");
    // Frequency j takes its angle from the axis whose section contains it.
    std::vector<at::Tensor> parts;
    int64_t begin = 0;
    for (size_t axis = 0; axis < 3; ++axis) {
      const int64_t n = config_.mrope_section[axis];
      parts.push_back(pos[axis].unsqueeze(1) * inv_freq.narrow(0, begin, n).unsqueeze(0));
      begin += n;
    }
    freqs = at::cat(parts, 1);
  }
  const at::Tensor angles = at::cat({freqs, freqs}, 1);
  const auto dtype = embed_tokens_.scalar_type();
  return {angles.cos().to(dtype), angles.sin().to(dtype)};
}

PrefillResult Qwen2Decoder::prefill(const at::Tensor& embeds, const at::Tensor& positions_in,
                                    const PrefillOptions& options) const {
  const auto start = Clock::now();
  const bool on_gpu = embeds.is_cuda();
  const int64_t L = embeds.size(0), Hq = config_.num_heads, Hkv = config_.num_kv_heads, D = config_.head_dim;
  if (embeds.dim() != 2 || embeds.size(1) != config_.hidden_size)
    throw std::invalid_argument("prefill: embeddings must be [L, " + std::to_string(config_.hidden_size) + "]");
  const at::Tensor positions = positions_in.reshape({-1, L}).to(embeds.device());
  const bool dense = options.method == nullptr || options.method->name() == "dense";
  if (!dense && (options.layout == nullptr || options.layout->length() != L))
    throw std::invalid_argument("prefill: a sparse method needs the sequence layout of all " +
                                std::to_string(L) + " tokens");
  const auto [cos, sin] = rope_tables(positions);
  const int64_t chunk = std::max<int64_t>(1, options.chunk_tokens);

  PrefillResult result;
  double flops_ratio_sum = 0, density_sum = 0;
  // Exact density walks every kept element: affordable only for small inputs.
  const bool count_density = double(L) * L * Hq <= 2e8;
  at::Tensor h = embeds.clone();
  if (options.keep_kv_cache) result.cache.next_position = positions.max().item<int64_t>() + 1;
  for (int64_t li = 0; li < config_.num_layers; ++li) {
    const Layer& l = layers_[li];
    const auto opts = h.options();
    at::Tensor q = at::empty({L, Hq, D}, opts), k = at::empty({L, Hkv, D}, opts), v = at::empty({L, Hkv, D}, opts);
    for (int64_t s = 0; s < L; s += chunk) {  // projections chunk by chunk bound the fp32 norm temporaries
      const int64_t n = std::min(chunk, L - s);
      const at::Tensor a = rms_norm(h.narrow(0, s, n), l.input_norm);
      const at::Tensor c = cos.narrow(0, s, n), sn = sin.narrow(0, s, n);
      q.narrow(0, s, n).copy_(apply_rope(at::linear(a, l.q_w, l.q_b).view({n, Hq, D}), c, sn));
      k.narrow(0, s, n).copy_(apply_rope(at::linear(a, l.k_w, l.k_b).view({n, Hkv, D}), c, sn));
      v.narrow(0, s, n).copy_(at::linear(a, l.v_w, l.v_b).view({n, Hkv, D}));
    }
    if (options.on_attention) options.on_attention(li, q, k, v);
    at::Tensor attn;
    if (on_gpu) cuda_synchronize();  // the projections are not attention time
    auto t = Clock::now();
    if (dense) {
      attn = dense_attention(q, k, v);
      result.attention_ms += elapsed_ms(t, on_gpu);
    } else {
      const AttentionContext ctx{options.layout, static_cast<int>(li)};
      const SparsePlan plan = options.method->plan(ctx, q, k);
      result.index_ms += elapsed_ms(t, on_gpu);
      t = Clock::now();
      attn = options.method->run(plan, q, k, v).out;
      result.attention_ms += elapsed_ms(t, on_gpu);
      flops_ratio_sum += plan_stats(plan, false).flops_ratio(L);
      if (count_density) density_sum += plan_stats(plan, true).density();
    }
    q.reset();
    if (options.keep_kv_cache) {
      const int64_t capacity = L + options.decode_capacity;
      result.cache.k.push_back(at::empty({capacity, Hkv, D}, opts));
      result.cache.v.push_back(at::empty({capacity, Hkv, D}, opts));
      result.cache.k.back().narrow(0, 0, L).copy_(k);
      result.cache.v.back().narrow(0, 0, L).copy_(v);
    }
    k.reset();
    v.reset();
    for (int64_t s = 0; s < L; s += chunk) {
      const int64_t n = std::min(chunk, L - s);
      at::Tensor rows = h.narrow(0, s, n);
      rows.add_(at::linear(attn.narrow(0, s, n).reshape({n, Hq * D}), l.o_w));
      rows.add_(mlp(l, rms_norm(rows, l.post_norm)));
    }
    attn.reset();
    if (options.keep_hidden_states) result.hidden.push_back(h.clone());
    if (options.on_layer) options.on_layer(li + 1, config_.num_layers);
  }
  if (!dense) {
    result.flops_ratio = flops_ratio_sum / config_.num_layers;
    result.density = count_density ? density_sum / config_.num_layers : NAN;
  }
  if (options.keep_kv_cache) result.cache.length = L;

  std::vector<int64_t> rows = options.logit_positions;
  if (rows.empty()) rows.push_back(L - 1);
  for (int64_t r : rows)
    if (r < 0 || r >= L) throw std::invalid_argument("prefill: logit position " + std::to_string(r) + " out of range");
  if (options.keep_hidden_states) result.final_hidden = rms_norm(h, final_norm_);
  const at::Tensor index = at::tensor(rows, at::kLong).to(h.device());
  result.logits = at::linear(rms_norm(h.index_select(0, index), final_norm_), lm_head_).to(at::kFloat);
  result.total_ms = elapsed_ms(start, on_gpu);
  return result;
}

at::Tensor Qwen2Decoder::decode_step(int64_t token, KVCache& cache) const {
  if (cache.k.size() != layers_.size()) throw std::logic_error("decode_step: the pre-fill kept no KV cache");
  if (cache.length >= cache.k[0].size(0)) throw std::logic_error("decode_step: the KV cache is full");
  const int64_t Hq = config_.num_heads, Hkv = config_.num_kv_heads, D = config_.head_dim;
  const int64_t rows = config_.mrope_section.empty() ? 1 : 3;
  at::Tensor h = embed(at::tensor({token}, at::kLong));
  const auto [cos, sin] =
      rope_tables(at::full({rows, 1}, cache.next_position, at::TensorOptions().dtype(at::kLong).device(h.device())));
  const int64_t len = cache.length + 1;
  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& l = layers_[li];
    const at::Tensor a = rms_norm(h, l.input_norm);
    const at::Tensor q = apply_rope(at::linear(a, l.q_w, l.q_b).view({1, Hq, D}), cos, sin);
    cache.k[li].narrow(0, cache.length, 1).copy_(apply_rope(at::linear(a, l.k_w, l.k_b).view({1, Hkv, D}), cos, sin));
    cache.v[li].narrow(0, cache.length, 1).copy_(at::linear(a, l.v_w, l.v_b).view({1, Hkv, D}));
    // One query against every cached key, query heads grouped by their KV head: [Hkv, group, len].
    const at::Tensor keys = cache.k[li].narrow(0, 0, len).permute({1, 2, 0});    // [Hkv, D, len]
    const at::Tensor values = cache.v[li].narrow(0, 0, len).permute({1, 0, 2});  // [Hkv, len, D]
    const at::Tensor scores = at::bmm(q.view({Hkv, Hq / Hkv, D}), keys).to(at::kFloat) / std::sqrt(double(D));
    const at::Tensor out = at::bmm(at::softmax(scores, -1).to(h.scalar_type()), values);
    h = h + at::linear(out.reshape({1, Hq * D}), l.o_w);
    h = h + mlp(l, rms_norm(h, l.post_norm));
  }
  cache.length = len;
  cache.next_position += 1;
  return at::linear(rms_norm(h, final_norm_), lm_head_).to(at::kFloat).reshape({-1});
}

std::vector<int64_t> Qwen2Decoder::greedy(const at::Tensor& last_logits, KVCache& cache, int64_t max_new_tokens,
                                          const std::vector<int64_t>& end_tokens) const {
  std::vector<int64_t> out;
  at::Tensor logits = last_logits.reshape({-1});
  while (static_cast<int64_t>(out.size()) < max_new_tokens) {
    const int64_t token = logits.argmax().item<int64_t>();
    out.push_back(token);
    if (std::find(end_tokens.begin(), end_tokens.end(), token) != end_tokens.end()) break;
    if (static_cast<int64_t>(out.size()) == max_new_tokens) break;
    logits = decode_step(token, cache);
  }
  return out;
}

}  // namespace mmi
