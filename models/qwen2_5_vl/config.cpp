#include "models/qwen2_5_vl/config.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "models/json_fields.h"
#include "tasks/files.h"

namespace mmi {

void Qwen25VisionConfig::validate() const {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("invalid Qwen2.5-VL vision config: " + what);
  };
  require(depth > 0 && hidden_size > 0 && intermediate_size > 0 && out_hidden_size > 0,
          "sizes must be positive");
  require(num_heads > 0 && hidden_size % num_heads == 0 && head_dim() % 4 == 0,
          "hidden_size / num_heads must be a multiple of 4 (2D RoPE)");
  require(patch_size > 0 && temporal_patch_size > 0 && spatial_merge_size > 0, "patch sizes must be positive");
  require(window_units() > 0, "window_size must be at least patch_size x spatial_merge_size");
  for (int64_t b : fullatt_block_indexes) require(b >= 0 && b < depth, "fullatt_block_indexes out of range");
}

Qwen25VLConfig load_qwen2_5_vl_config(const std::string& path) {
  if (!file_exists(path)) throw std::runtime_error(path + ": no such model folder or config file");
  const bool is_json = path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  const std::string file = is_json ? path : join_path(path, "config.json");
  if (!file_exists(file)) throw std::runtime_error(path + ": no config.json in the model folder");
  const nlohmann::json root = read_json_file(file);
  JsonFields top(root, file);
  const std::string type = top.string("model_type", "");
  if (type != "qwen2_5_vl")
    throw std::runtime_error(file + ": model_type '" + type + "' is not qwen2_5_vl");
  Qwen25VLConfig c;
  c.text = parse_qwen2_config(root, file);
  c.image_token_id = top.integer("image_token_id", c.image_token_id);
  c.video_token_id = top.integer("video_token_id", c.video_token_id);
  c.vision_start_token_id = top.integer("vision_start_token_id", c.vision_start_token_id);
  c.vision_end_token_id = top.integer("vision_end_token_id", c.vision_end_token_id);
  if (!root.contains("vision_config")) throw std::runtime_error(file + ": missing 'vision_config'");
  JsonFields v(root.at("vision_config"), file + ": vision_config");
  Qwen25VisionConfig& vc = c.vision;
  vc.depth = v.integer("depth", vc.depth);
  vc.hidden_size = v.integer("hidden_size", vc.hidden_size);
  vc.intermediate_size = v.integer("intermediate_size", vc.intermediate_size);
  vc.num_heads = v.integer("num_heads", vc.num_heads);
  vc.patch_size = v.integer("patch_size", vc.patch_size);
  vc.temporal_patch_size = v.integer("temporal_patch_size", vc.temporal_patch_size);
  vc.spatial_merge_size = v.integer("spatial_merge_size", vc.spatial_merge_size);
  vc.window_size = v.integer("window_size", vc.window_size);
  vc.out_hidden_size = v.integer("out_hidden_size", vc.out_hidden_size);
  if (v.has("fullatt_block_indexes")) vc.fullatt_block_indexes = v.integers("fullatt_block_indexes");
  vc.tokens_per_second = v.number("tokens_per_second", 4);  // the class default when a file omits it
  if (root.at("vision_config").contains("rope_parameters"))
    vc.rope_theta = JsonFields(root.at("vision_config").at("rope_parameters"), file)
                        .number("rope_theta", vc.rope_theta);
  try {
    vc.validate();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(file + ": " + e.what());
  }
  if (vc.out_hidden_size != c.text.hidden_size)
    throw std::invalid_argument(file + ": vision out_hidden_size " + std::to_string(vc.out_hidden_size) +
                                " differs from the text hidden_size " + std::to_string(c.text.hidden_size));
  return c;
}

namespace {

Qwen2Config qwen2_text(int64_t hidden, int64_t layers, int64_t heads, int64_t kv_heads,
                       int64_t ffn, int64_t vocab, bool tied) {
  Qwen2Config t;
  t.vocab_size = vocab;
  t.hidden_size = hidden;
  t.intermediate_size = ffn;
  t.num_layers = layers;
  t.num_heads = heads;
  t.num_kv_heads = kv_heads;
  t.head_dim = hidden / heads;
  t.rms_norm_eps = 1e-6;
  t.rope_theta = 1e6;
  t.mrope_section = {16, 24, 24};
  t.tie_word_embeddings = tied;
  t.eos_token_id = 151645;
  return t;
}

}  // namespace

std::vector<std::string> named_qwen2_5_vl_configs() { return {"qwen2.5-vl-7b", "qwen2.5-vl-3b"}; }

Qwen25VLConfig named_qwen2_5_vl_config(const std::string& name) {
  Qwen25VLConfig c;
  if (name == "qwen2.5-vl-7b") {
    c.text = qwen2_text(3584, 28, 28, 4, 18944, 152064, false);
  } else if (name == "qwen2.5-vl-3b") {
    c.text = qwen2_text(2048, 36, 16, 2, 11008, 151936, true);
  } else {
    std::string known;
    for (const auto& n : named_qwen2_5_vl_configs()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown model config '" + name + "' (known: " + known + ")");
  }
  c.vision.out_hidden_size = c.text.hidden_size;
  c.vision.tokens_per_second = 2;
  return c;
}

}  // namespace mmi
