// Hugging Face config.json for the Qwen2 decoder that all the paper's VLMs share, and the small
// JSON helpers the family configs use. Torch-free.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace mmi {

struct Qwen2Config {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;     // query heads
  int64_t num_kv_heads = 0;  // query head i reads KV head i / (num_heads / num_kv_heads)
  int64_t head_dim = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 1e6;
  double rope_linear_factor = 1.0;  // positions are divided by this ("linear" rope scaling)
  // Frequency counts per (time, height, width) axis; empty for 1D RoPE.
  std::vector<int64_t> mrope_section;
  bool tie_word_embeddings = false;
  int64_t eos_token_id = -1;

  // Throws std::invalid_argument naming the field when the geometry is inconsistent.
  void validate() const;
  // "28 layers, hidden 3584, 28/4 heads x 128, FFN 18944, vocab 152064, M-RoPE"
  std::string describe() const;
};

// Reads a text config from a config.json object: either a nested "text_config" (transformers 5.x)
// or the top level (4.x and plain Qwen2 checkpoints). Accepts rope settings under "rope_scaling" or
// "rope_parameters". `source` names the file in errors.
Qwen2Config parse_qwen2_config(const nlohmann::json& config, const std::string& source);

// Parses a JSON file; throws std::runtime_error naming it when it is missing or malformed.
nlohmann::json read_json_file(const std::string& path);

}  // namespace mmi
