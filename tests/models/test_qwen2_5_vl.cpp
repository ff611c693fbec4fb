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
  REQUIRE_THROWS_WITH(Qwen25VLModel::load("/no/such/model", at::kFloat, at::kCPU),
                      Contains("/no/such/model: no such model folder"));
  REQUIRE_THROWS_WITH(named_qwen2_5_vl_config("qwen9"), Contains("unknown model config 'qwen9'") && Contains("qwen2.5-vl-7b"));
}
