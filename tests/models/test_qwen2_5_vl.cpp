// Parity with Hugging Face transformers on the tiny Qwen2.5-VL fixture (scripts/make_qwen2_5_vl_fixture.py):
// prompt ids, canonical positions, processor pixels, vision embeddings, every decoder layer and the
// logits, for a text prompt, an image and a multi-frame video with non-square frames.
#include <ATen/ATen.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kernels/method.h"
#include "models/qwen2_5_vl/model.h"
#include "models/safetensors.h"
#include "models/weights.h"
#include "tasks/files.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

#ifndef MMI_FIXTURES_DIR
#define MMI_FIXTURES_DIR "tests/fixtures"
#endif

using namespace mmi;

namespace {

const std::string kFixture = std::string(MMI_FIXTURES_DIR) + "/qwen2_5_vl_tiny";

// max |a - b| / max |b|: the tolerance is relative to the reference's scale.
double relative_difference(const at::Tensor& a, const at::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  const at::Tensor fa = a.to(at::kFloat), fb = b.to(at::kFloat);
  return (fa - fb).abs().max().item<double>() / std::max(fb.abs().max().item<double>(), 1e-30);
}

struct Case {
  SafetensorsFile file;
  explicit Case(const std::string& name) : file(kFixture + "/" + name + ".safetensors") {}
  at::Tensor operator[](const std::string& tensor) const { return tensor_from_view(file.get(tensor)); }
  bool has(const std::string& tensor) const { return file.find(tensor) != nullptr; }
};

std::vector<VideoFrame> fixture_frames(const at::Tensor& frames, double fps) {
  std::vector<VideoFrame> out;
  for (int64_t i = 0; i < frames.size(0); ++i) {
    VideoFrame f;
    f.timestamp_s = i / fps;
    f.height = static_cast<int>(frames.size(1));
    f.width = static_cast<int>(frames.size(2));
    f.rgb.resize(f.height * f.width * 3);
    std::memcpy(f.rgb.data(), frames[i].contiguous().data_ptr(), f.rgb.size());
    out.push_back(std::move(f));
  }
  return out;
}

// The prompts the fixture script built, as segments.
std::vector<PromptSegment> fixture_prompt(const std::string& name, const Case& c) {
  auto text = [](const std::string& s) {
    PromptSegment p;
    p.text = s;
    return p;
  };
  if (name == "text") return {text("What colour is the square? (A) red (B) blue")};
  PromptSegment visual;
  if (name == "image") {
    visual.kind = PromptSegment::Kind::kImage;
    visual.frames = fixture_frames(c["frames"], 1.0);
    return {visual, text("Which shape appears?")};
  }
  visual.kind = PromptSegment::Kind::kVideo;
  visual.frames = fixture_frames(c["frames"], 3.0);  // the script's fps: 2/3 s per temporal group
  return {visual, text("Describe the video in one sentence.")};
}

PrepareOptions fixture_budget() {
  PrepareOptions options;
  options.budget.min_pixels = 28 * 28;
  options.budget.max_pixels = 28 * 28 * 64;
  return options;
}

}  // namespace

TEST_CASE("Qwen2.5-VL matches Hugging Face layer by layer", "[models][parity]") {
  at::InferenceMode guard;
  const auto model = Qwen25VLModel::load(kFixture, at::kFloat, at::kCPU);
  REQUIRE(model->config().text.mrope_section == std::vector<int64_t>{2, 3, 3});
  for (const std::string name : {"text", "image", "video"}) {
    INFO("case " << name);
    const Case c(name);
    const ModelInputs in = model->prepare(fixture_prompt(name, c), fixture_budget());
    REQUIRE(at::equal(in.ids, c["input_ids"]));
    REQUIRE(at::equal(in.positions, c["position_ids"]));
    if (c.has("pixel_values")) {
      REQUIRE(in.visuals.size() == 1);
      REQUIRE(relative_difference(in.visuals[0].pixels, c["pixel_values"]) < 1e-5);
      const at::Tensor grid = c["grid_thw"];
      REQUIRE(in.visuals[0].groups == grid[0].item<int64_t>());
      REQUIRE(in.visuals[0].grid_h == grid[1].item<int64_t>());
      REQUIRE(in.visuals[0].grid_w == grid[2].item<int64_t>());
    }
    const at::Tensor embeds = model->embed(in);
    CHECK(relative_difference(embeds, c["inputs_embeds"]) < 1e-4);

    PrefillOptions options;
    options.keep_hidden_states = true;
    options.chunk_tokens = 7;  // several chunks, one of them partial
    for (int64_t i = 0; i < in.length(); ++i) options.logit_positions.push_back(i);
    const PrefillResult out = model->prefill(in, embeds, options);
    for (size_t layer = 0; layer < out.hidden.size(); ++layer) {
      INFO("layer " << layer);
      CHECK(relative_difference(out.hidden[layer], c["layer_" + std::to_string(layer)]) < 1e-4);
    }
    CHECK(relative_difference(out.final_hidden, c["final_norm"]) < 1e-4);
    CHECK(relative_difference(out.logits, c["logits"]) < 1e-4);
  }
}

TEST_CASE("Qwen2.5-VL vision tower matches on the reference pixels", "[models][parity]") {
  at::InferenceMode guard;
  const auto model = Qwen25VLModel::load(kFixture, at::kFloat, at::kCPU);
  for (const std::string name : {"image", "video"}) {
    INFO("case " << name);
    const Case c(name);
    const at::Tensor grid = c["grid_thw"];
    PatchedFrames patched{c["pixel_values"], grid[0].item<int64_t>(), grid[1].item<int64_t>(), grid[2].item<int64_t>()};
    ModelInputs in;
    in.ids = c["input_ids"];
    const int64_t start = (in.ids == model->config().video_token_id).logical_or(in.ids == model->config().image_token_id)
                              .nonzero()[0].item<int64_t>();
    in.blocks.push_back({start, patched.groups, patched.grid_h / 2, patched.grid_w / 2, 0.0, name == "video"});
    in.visuals.push_back(patched);
    const at::Tensor embeds = model->embed(in);
    CHECK(relative_difference(embeds.narrow(0, start, in.blocks[0].tokens()), c["visual_embeds"]) < 1e-4);
  }
}

TEST_CASE("smart_resize matches the reference processor", "[models][processor]") {
  std::ifstream in(kFixture + "/processor_cases.json");
  REQUIRE(in);
  const nlohmann::json cases = nlohmann::json::parse(in);
  REQUIRE(cases.size() > 10);
  for (const auto& c : cases) {
    const auto [h, w] = smart_resize(c["height"], c["width"], 28, c["min_pixels"], c["max_pixels"]);
    INFO(c.dump());
    CHECK(h == c["target"][0].get<int64_t>());
    CHECK(w == c["target"][1].get<int64_t>());
  }
  REQUIRE_THROWS_WITH(smart_resize(10, 2100, 28, 0, 1 << 20), Contains("aspect ratio"));
}

TEST_CASE("resized frames match the reference processor's pixels", "[models][processor]") {
  const Case c("resize");
  const PatchedFrames p = patchify_frames(c["frames"], load_qwen2_5_vl_config(kFixture).vision, {28 * 28 * 6, 28 * 28 * 6});
  REQUIRE(p.grid_h * 14 == 56);
  REQUIRE(p.grid_w * 14 == 84);
  const at::Tensor expected = c["pixel_values"];
  CHECK(relative_difference(p.pixels, expected) < 1e-5);
}

TEST_CASE("canonical positions follow the released algorithm", "[models][positions]") {
  // The worked example of SPEC.md: [x, x, <vs>, V x 8, <ve>, x, x], grid (2, 2, 2), 1 s per group.
  const std::vector<VisualBlock> blocks{{3, 2, 2, 2, 1.0, true}};
  const at::Tensor p = canonical_position_ids(14, blocks, 2.0);
  auto row = [&](int axis) { return std::vector<int64_t>(p[axis].data_ptr<int64_t>(), p[axis].data_ptr<int64_t>() + 14); };
  // <vs> is text (2); the block starts at 3; the trailing text resumes at the block's maximum + 1.
  CHECK(row(0) == std::vector<int64_t>{0, 1, 2, 3, 3, 3, 3, 5, 5, 5, 5, 6, 7, 8});
  CHECK(row(1) == std::vector<int64_t>{0, 1, 2, 3, 3, 4, 4, 3, 3, 4, 4, 6, 7, 8});
  CHECK(row(2) == std::vector<int64_t>{0, 1, 2, 3, 4, 3, 4, 3, 4, 3, 4, 6, 7, 8});
  const SequenceLayout layout = sequence_layout(14, blocks);
  REQUIRE(layout.describe() == "text:3,video:2x2x2,text:3");
  REQUIRE_THROWS_WITH(canonical_position_ids(8, blocks, 2.0), Contains("runs past"));
}

TEST_CASE("a sparse method that keeps every key reproduces dense pre-fill", "[models]") {
  at::InferenceMode guard;
  const auto model = Qwen25VLModel::load(kFixture, at::kFloat, at::kCPU);
  const Case c("video");
  const ModelInputs in = model->prepare(fixture_prompt("video", c), fixture_budget());
  const at::Tensor embeds = model->embed(in);
  const PrefillResult dense = model->prefill(in, embeds, {});
  const auto wide = make_method_from_spec("a_shape:sink=64,local=4096");
  PrefillOptions options;
  options.method = wide.get();
  const PrefillResult sparse = model->prefill(in, embeds, options);
  CHECK(relative_difference(sparse.logits, dense.logits) < 1e-5);
  const auto narrow = make_method_from_spec("a_shape:sink=4,local=8");
  options.method = narrow.get();
  const PrefillResult cut = model->prefill(in, embeds, options);
  CHECK(relative_difference(cut.logits, dense.logits) > 1e-4);  // a real change in what is attended
}

TEST_CASE("bad model folders give one clear error", "[models][errors]") {
  using testing::read_file;
  using testing::write_file;
  REQUIRE_THROWS_WITH(Qwen25VLModel::load("/no/such/model", at::kFloat, at::kCPU),
                      Contains("/no/such/model: no such model folder"));
  REQUIRE_THROWS_WITH(named_qwen2_5_vl_config("qwen9"), Contains("unknown model config 'qwen9'") && Contains("qwen2.5-vl-7b"));
  testing::TempDir dir;
  auto copy = [&](const std::string& name) { write_file(dir.file(name), read_file(kFixture + "/" + name)); };
  REQUIRE_THROWS_WITH(Qwen25VLModel::load(dir.path(), at::kFloat, at::kCPU), Contains("no config.json"));
  copy("config.json");
  copy("model.safetensors");
  REQUIRE_THROWS_WITH(Qwen25VLModel::load(dir.path(), at::kFloat, at::kCPU), Contains("no tokenizer.json"));
  copy("tokenizer.json");
  REQUIRE_NOTHROW(Qwen25VLModel::load(dir.path(), at::kFloat, at::kCPU));

  // A config that disagrees with the weights: the tensor and both shapes are named.
  nlohmann::json config = nlohmann::json::parse(read_file(kFixture + "/config.json"));
  config["text_config"]["intermediate_size"] = 96;
  write_file(dir.file("config.json"), config.dump());
  REQUIRE_THROWS_WITH(Qwen25VLModel::load(dir.path(), at::kFloat, at::kCPU),
                      Contains("model.layers.0.mlp.gate_proj.weight' has shape [128, 64], the config implies [96, 64]"));
  config["text_config"]["num_attention_heads"] = 3;
  write_file(dir.file("config.json"), config.dump());
  REQUIRE_THROWS_WITH(Qwen25VLModel::load(dir.path(), at::kFloat, at::kCPU), Contains("config.json: invalid Qwen2 config"));
  write_file(dir.file("config.json"), "{\"model_type\": \"qwen2_5_vl\", \"text_config\": {\"vocab_size\": 10, \"hidden_size\": \"big\"}}");
  REQUIRE_THROWS_WITH(Qwen25VLModel::load(dir.path(), at::kFloat, at::kCPU), Contains("'hidden_size' must be an integer"));
  copy("config.json");

  // A truncated checkpoint and one whose header claims more than the file holds.
  const std::string weights = read_file(kFixture + "/model.safetensors");
  write_file(dir.file("model.safetensors"), weights.substr(0, weights.size() / 2));
  REQUIRE_THROWS_WITH(Qwen25VLModel::load(dir.path(), at::kFloat, at::kCPU), Contains(dir.file("model.safetensors")));
  std::string hostile = weights;
  hostile[6] = '\x7f';
  write_file(dir.file("model.safetensors"), hostile);
  REQUIRE_THROWS_WITH(Qwen25VLModel::load(dir.path(), at::kFloat, at::kCPU), Contains("past the end of the file"));

  // The same checkpoint under transformers' in-memory names ("model.language_model.*", "model.visual.*").
  uint64_t header_length = 0;
  std::memcpy(&header_length, weights.data(), 8);
  const nlohmann::json header = nlohmann::json::parse(weights.substr(8, header_length));
  nlohmann::json renamed;
  for (const auto& [name, entry] : header.items()) {
    std::string n = name;
    if (n.rfind("visual.", 0) == 0) n = "model." + n;
    else if (n.rfind("model.", 0) == 0) n = "model.language_model." + n.substr(6);
    renamed[n] = entry;
  }
  std::string text = renamed.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string length(8, '\0');
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>(static_cast<uint64_t>(text.size()) >> (8 * i));
  write_file(dir.file("model.safetensors"), length + text + weights.substr(8 + header_length));
  at::InferenceMode guard;
  const auto model = Qwen25VLModel::load(dir.path(), at::kFloat, at::kCPU);
  const Case c("text");
  const ModelInputs in = model->prepare(fixture_prompt("text", c), fixture_budget());
  CHECK(relative_difference(model->prefill(in, model->embed(in), {}).logits[0], c["logits"][in.length() - 1]) < 1e-4);
}

TEST_CASE("teacher-forced answers are scored at the right rows", "[models]") {
  at::InferenceMode guard;
  const auto model = Qwen25VLModel::load(kFixture, at::kFloat, at::kCPU);
  const Case c("text");
  PrepareOptions options = fixture_budget();
  options.answer = "The answer is A.";
  const ModelInputs in = model->prepare(fixture_prompt("text", c), options);
  const int64_t prompt = c["input_ids"].size(0);
  REQUIRE(in.length() == prompt + static_cast<int64_t>(in.answer_ids.size()));
  REQUIRE(in.answer_positions.front() == prompt - 1);  // the last prompt row predicts the first answer token
  for (size_t i = 0; i < in.answer_ids.size(); ++i) REQUIRE(in.ids[in.answer_positions[i] + 1].item<int64_t>() == in.answer_ids[i]);
  PrefillOptions prefill;
  prefill.logit_positions = in.answer_positions;
  const PrefillResult out = model->prefill(in, model->embed(in), prefill);
  REQUIRE(out.logits.size(0) == static_cast<int64_t>(in.answer_ids.size()));
  // The prompt's rows are causal: the first answer row equals the reference's last prompt row.
  CHECK(relative_difference(out.logits[0], c["logits"][prompt - 1]) < 1e-4);
}
