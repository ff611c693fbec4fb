// The Qwen2 decoder shared by every paper model: pre-RMSNorm blocks with grouped-query attention
// (q/k/v biases, no o_proj bias), rotate-half RoPE in 1D or M-RoPE, SwiGLU MLP, final norm and LM
// head. Each layer's attention goes through the AttentionMethod it is given, with the layer index
// and the sequence layout, so dense attention can be swapped for any sparse method.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/layout.h"
#include "models/config.h"

namespace mmi {

class AttentionMethod;
class WeightSource;

// Post-RoPE keys and values of every layer, with room for decoded tokens.
struct KVCache {
  std::vector<at::Tensor> k, v;  // per layer [capacity, Hkv, D]; rows [0, length) are filled
  int64_t length = 0;
  int64_t next_position = 0;  // the position id (all axes) of the next token: prompt max + 1
};

struct PrefillOptions {
  const AttentionMethod* method = nullptr;  // null: dense attention (cuDNN SDPA on the GPU)
  const SequenceLayout* layout = nullptr;   // required by sparse methods; spans of the whole input
  std::vector<int64_t> logit_positions;     // rows whose logits are returned; empty: the last row
  bool keep_kv_cache = false;               // latency runs drop it to save memory
  int64_t decode_capacity = 0;              // extra cache rows reserved for decoding
  bool keep_hidden_states = false;  // every layer's output and the final norm (parity tests)
  int64_t chunk_tokens = 8192;      // rows per chunk for norms, projections and the MLP
  std::function<void(int64_t layer, int64_t layers)> on_layer;  // progress, after each layer
  // Called with each layer's post-RoPE q: [L, Hq, D], k, v: [L, Hkv, D] before its attention runs
  // (offline pattern search and inspection read them here).
  std::function<void(int64_t layer, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v)> on_attention;
};

struct PrefillResult {
  at::Tensor logits;               // [P, vocab] fp32, rows of options.logit_positions
  std::vector<at::Tensor> hidden;  // per layer [L, hidden] when keep_hidden_states
  at::Tensor final_hidden;         // [L, hidden] after the final norm, when keep_hidden_states
  KVCache cache;                   // when keep_kv_cache
  double total_ms = 0;             // the whole pre-fill
  double attention_ms = 0;         // attention kernels (plan execution)
  double index_ms = 0;             // online estimation and plan building (sparse methods)
  double flops_ratio = 1.0;        // computed attention FLOPs / dense causal FLOPs, over all layers
  // kept / causal attention elements over all layers; counted exactly only for small inputs (NaN above).
  double density = 1.0;
};

class Qwen2Decoder {
 public:
  // Loads "model.embed_tokens", "model.layers.*", "model.norm" and "lm_head" (or the tied
  // embedding).
  Qwen2Decoder(const Qwen2Config& config, WeightSource& weights);

  const Qwen2Config& config() const { return config_; }
  // ids: [L] int64 -> [L, hidden] in the weights' dtype.
  at::Tensor embed(const at::Tensor& ids) const;
  // embeds: [L, hidden]; positions: [3, L] (M-RoPE) or [1, L] / [L] (1D) int64.
  PrefillResult prefill(const at::Tensor& embeds, const at::Tensor& positions,
                        const PrefillOptions& options) const;
  // Appends one token to the cache (which needs free capacity) and returns its logits [vocab] fp32.
  at::Tensor decode_step(int64_t token, KVCache& cache) const;
  // Greedy decoding from the pre-fill's last logits until an end token or max_new_tokens.
  std::vector<int64_t> greedy(const at::Tensor& last_logits, KVCache& cache, int64_t max_new_tokens,
                              const std::vector<int64_t>& end_tokens) const;

 private:
  struct Layer {
    at::Tensor input_norm, q_w, q_b, k_w, k_b, v_w, v_b, o_w, post_norm, gate_w, up_w, down_w;
  };

  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight) const;
  at::Tensor mlp(const Layer& layer, const at::Tensor& x) const;
  // cos, sin: [L, D] in the activation dtype for positions [A, L].
  std::pair<at::Tensor, at::Tensor> rope_tables(const at::Tensor& positions) const;

  Qwen2Config config_;
  at::Tensor embed_tokens_, final_norm_, lm_head_;
  std::vector<Layer> layers_;
};

}  // namespace mmi
