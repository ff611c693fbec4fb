#include "models/config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "models/json_fields.h"

namespace mmi {

void Qwen2Config::validate() const {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("invalid Qwen2 config: " + what);
  };
  require(vocab_size > 0 && hidden_size > 0 && intermediate_size > 0 && num_layers > 0,
          "sizes must be positive");
  require(num_heads > 0 && num_kv_heads > 0 && num_heads % num_kv_heads == 0,
          "num_attention_heads must be a multiple of num_key_value_heads");
  require(head_dim > 0 && head_dim % 2 == 0, "head_dim must be even");
  if (!mrope_section.empty()) {
    int64_t sum = 0;
    for (int64_t s : mrope_section) sum += s;
    require(mrope_section.size() == 3 && sum == head_dim / 2,
            "mrope_section must have 3 entries summing to head_dim / 2 (" +
                std::to_string(head_dim / 2) + ")");
  }
}

std::string Qwen2Config::describe() const {
  std::ostringstream s;
  s << num_layers << " layers, hidden " << hidden_size << ", " << num_heads << "/" << num_kv_heads
    << " heads x " << head_dim << ", FFN " << intermediate_size << ", vocab " << vocab_size
    << (mrope_section.empty() ? ", 1D RoPE" : ", M-RoPE");
  return s.str();
}

Qwen2Config parse_qwen2_config(const nlohmann::json& root, const std::string& source) {
  const nlohmann::json& j = root.contains("text_config") ? root.at("text_config") : root;
  JsonFields f(j, source);
  Qwen2Config c;
  c.vocab_size = f.integer("vocab_size");
  c.hidden_size = f.integer("hidden_size");
  c.intermediate_size = f.integer("intermediate_size");
  c.num_layers = f.integer("num_hidden_layers");
  c.num_heads = f.integer("num_attention_heads");
  c.num_kv_heads = f.integer("num_key_value_heads", c.num_heads);
  c.head_dim = f.integer("head_dim", c.num_heads > 0 ? c.hidden_size / c.num_heads : 0);
  c.rms_norm_eps = f.number("rms_norm_eps", 1e-6);
  c.rope_theta = f.number("rope_theta", 1e4);
  c.tie_word_embeddings =
      f.boolean("tie_word_embeddings", JsonFields(root, source).boolean("tie_word_embeddings", false));
  c.eos_token_id = f.integer("eos_token_id", JsonFields(root, source).integer("eos_token_id", -1));
  // Rope settings moved between keys across transformers versions; read whichever is present.
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    if (!j.contains(key) || j.at(key).is_null()) continue;
    JsonFields rope(j.at(key), source + ": " + key);
    c.rope_theta = rope.number("rope_theta", c.rope_theta);
    if (j.at(key).contains("mrope_section")) c.mrope_section = rope.integers("mrope_section");
    const std::string type = rope.string("rope_type", rope.string("type", "default"));
    if (type == "linear") c.rope_linear_factor = rope.number("factor");
  }
  try {
    c.validate();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(source + ": " + e.what());
  }
  return c;
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not valid JSON (" + e.what() + ")");
  }
}

}  // namespace mmi
