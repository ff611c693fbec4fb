#include "models/qwen2_5_vl/vision.h"

#include <ATen/ATen.h>

#include <map>
#include <stdexcept>
#include <string>

#include "models/layers.h"
#include "models/weights.h"

namespace mmi {
namespace {

// The window order of one temporal group's merged units: windows of `units` x `units` merged tokens
// in row-major window order, row-major inside a window. Returns the unit permutation and the window
// lengths in units (edge windows are smaller).
std::pair<std::vector<int64_t>, std::vector<int64_t>> window_order(int64_t rows, int64_t cols, int64_t units) {
  std::vector<int64_t> order, lengths;
  for (int64_t wr = 0; wr < rows; wr += units)
    for (int64_t wc = 0; wc < cols; wc += units) {
      const int64_t before = static_cast<int64_t>(order.size());
      for (int64_t r = wr; r < std::min(rows, wr + units); ++r)
        for (int64_t c = wc; c < std::min(cols, wc + units); ++c) order.push_back(r * cols + c);
      lengths.push_back(static_cast<int64_t>(order.size()) - before);
    }
  return {order, lengths};
}

}  // namespace

Qwen25VisionTower::Qwen25VisionTower(const Qwen25VisionConfig& config, WeightSource& w) : config_(config) {
  config_.validate();
  const int64_t h = config.hidden_size, ffn = config.intermediate_size, m2 = config.spatial_merge_size * config.spatial_merge_size;
  patch_w_ = w.load("visual.patch_embed.proj.weight",
                    {h, 3, config.temporal_patch_size, config.patch_size, config.patch_size}, WeightInit::kNormal)
                 .reshape({h, config.patch_dim()});
  for (int64_t i = 0; i < config.depth; ++i) {
    const std::string p = "visual.blocks." + std::to_string(i) + ".";
    Block b;
    b.norm1 = w.load(p + "norm1.weight", {h}, WeightInit::kOnes);
    b.norm2 = w.load(p + "norm2.weight", {h}, WeightInit::kOnes);
    b.qkv_w = w.load(p + "attn.qkv.weight", {3 * h, h}, WeightInit::kNormal);
    b.qkv_b = w.load(p + "attn.qkv.bias", {3 * h}, WeightInit::kNormal);
    b.proj_w = w.load(p + "attn.proj.weight", {h, h}, WeightInit::kNormal);
    b.proj_b = w.load(p + "attn.proj.bias", {h}, WeightInit::kNormal);
    b.gate_w = w.load(p + "mlp.gate_proj.weight", {ffn, h}, WeightInit::kNormal);
    b.gate_b = w.load(p + "mlp.gate_proj.bias", {ffn}, WeightInit::kNormal);
    b.up_w = w.load(p + "mlp.up_proj.weight", {ffn, h}, WeightInit::kNormal);
    b.up_b = w.load(p + "mlp.up_proj.bias", {ffn}, WeightInit::kNormal);
    b.down_w = w.load(p + "mlp.down_proj.weight", {h, ffn}, WeightInit::kNormal);
    b.down_b = w.load(p + "mlp.down_proj.bias", {h}, WeightInit::kNormal);
    blocks_.push_back(std::move(b));
  }
  merger_norm_ = w.load("visual.merger.ln_q.weight", {h}, WeightInit::kOnes);
  merger_w1_ = w.load("visual.merger.mlp.0.weight", {h * m2, h * m2}, WeightInit::kNormal);
  merger_b1_ = w.load("visual.merger.mlp.0.bias", {h * m2}, WeightInit::kNormal);
  merger_w2_ = w.load("visual.merger.mlp.2.weight", {config.out_hidden_size, h * m2}, WeightInit::kNormal);
  merger_b2_ = w.load("visual.merger.mlp.2.bias", {config.out_hidden_size}, WeightInit::kNormal);
}

at::Tensor Qwen25VisionTower::rms_norm(const at::Tensor& x, const at::Tensor& weight) const {
  return mmi::rms_norm(x, weight, 1e-6);  // the vision tower's norms use a fixed eps
}

at::Tensor Qwen25VisionTower::attention(const Block& b, const at::Tensor& x, const at::Tensor& cos,
                                        const at::Tensor& sin, const std::vector<int64_t>& segments) const {
  const int64_t P = x.size(0), heads = config_.num_heads, hd = config_.head_dim();
  const at::Tensor qkv = at::linear(x, b.qkv_w, b.qkv_b).view({P, 3, heads, hd});
  // RoPE in fp32, as the reference does for the vision tower.
  auto rope = [&](const at::Tensor& t) {
    const at::Tensor f = t.to(at::kFloat);
    return (f * cos.unsqueeze(1) + rotate_half(f) * sin.unsqueeze(1)).to(x.scalar_type());
  };
  const at::Tensor q = rope(qkv.select(1, 0)), k = rope(qkv.select(1, 1)), v = qkv.select(1, 2);
  // Segments of equal length attend as one batch: [B, heads, len, hd].
  std::map<int64_t, std::vector<int64_t>> starts_by_length;
  int64_t start = 0;
  for (int64_t len : segments) {
    starts_by_length[len].push_back(start);
    start += len;
  }
  at::Tensor out = at::empty({P, heads, hd}, x.options());
  for (const auto& [len, starts] : starts_by_length) {
    const auto long_opts = at::TensorOptions().dtype(at::kLong).device(x.device());
    const at::Tensor index =
        (at::tensor(starts, at::kLong).to(x.device()).unsqueeze(1) + at::arange(len, long_opts).unsqueeze(0)).reshape({-1});
    const int64_t B = static_cast<int64_t>(starts.size());
    auto gather = [&](const at::Tensor& t) { return t.index_select(0, index).view({B, len, heads, hd}).transpose(1, 2); };
    const at::Tensor o = at::scaled_dot_product_attention(gather(q), gather(k), gather(v));
    out.index_copy_(0, index, o.transpose(1, 2).reshape({B * len, heads, hd}));
  }
  return at::linear(out.view({P, heads * hd}), b.proj_w, b.proj_b);
}

at::Tensor Qwen25VisionTower::forward(const at::Tensor& pixels, int64_t groups, int64_t grid_h, int64_t grid_w,
                                      int64_t groups_per_chunk) const {
  const int64_t m = config_.spatial_merge_size, m2 = m * m, per_group = grid_h * grid_w;
  if (pixels.dim() != 2 || pixels.size(0) != groups * per_group || pixels.size(1) != config_.patch_dim() ||
      grid_h % m != 0 || grid_w % m != 0)
    throw std::invalid_argument("vision tower: pixels must be [groups x grid_h x grid_w, " +
                                std::to_string(config_.patch_dim()) + "] with grid sides divisible by " +
                                std::to_string(m));
  const int64_t rows = grid_h / m, cols = grid_w / m, units = rows * cols;
  const auto [order, window_units] = window_order(rows, cols, config_.window_units());
  const auto dev = patch_w_.device();
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(dev);
  // Patch index of every position in the windowed order of one group (units keep their 2x2 patches).
  const at::Tensor unit_order = at::tensor(order, at::kLong).to(dev);
  const at::Tensor patch_order = (unit_order.unsqueeze(1) * m2 + at::arange(m2, long_opts).unsqueeze(0)).reshape({-1});
  // 2D RoPE angles per patch: row and column (in patches), hd/4 frequencies each, as [h, w, h, w].
  const at::Tensor unit_ids = at::arange(units, long_opts);
  const at::Tensor sub = at::arange(m2, long_opts);
  // (Tensor / int is true division in ATen: integer rows need floor division.)
  const at::Tensor prow = (at::div(unit_ids, cols, "floor") * m).unsqueeze(1) + at::div(sub, m, "floor").unsqueeze(0);
  const at::Tensor pcol = ((unit_ids % cols) * m).unsqueeze(1) + (sub % m).unsqueeze(0);
  const int64_t hd = config_.head_dim();
  const auto f32 = at::TensorOptions().dtype(at::kFloat).device(dev);
  const at::Tensor inv_freq = 1.0 / at::pow(config_.rope_theta, at::arange(0, hd / 2, 2, f32) / double(hd / 2));
  const at::Tensor fh = prow.reshape({-1}).to(at::kFloat).unsqueeze(1) * inv_freq;
  const at::Tensor fw = pcol.reshape({-1}).to(at::kFloat).unsqueeze(1) * inv_freq;
  const at::Tensor angles = at::cat({fh, fw, fh, fw}, 1).index_select(0, patch_order);  // [per_group, hd]
  std::vector<int64_t> window_segments;
  for (int64_t u : window_units) window_segments.push_back(u * m2);

  std::vector<at::Tensor> merged;
  for (int64_t g0 = 0; g0 < groups; g0 += groups_per_chunk) {
    const int64_t G = std::min(groups_per_chunk, groups - g0);
    const at::Tensor chunk_order =
        (at::arange(G, long_opts).unsqueeze(1) * per_group + patch_order.unsqueeze(0)).reshape({-1});
    const at::Tensor chunk_pixels = pixels.narrow(0, g0 * per_group, G * per_group).to(dev, patch_w_.scalar_type());
    at::Tensor x = at::linear(chunk_pixels, patch_w_).index_select(0, chunk_order);
    const at::Tensor rep = angles.repeat({G, 1});
    const at::Tensor cos = rep.cos(), sin = rep.sin();
    std::vector<int64_t> windows, full(G, per_group);
    for (int64_t g = 0; g < G; ++g) windows.insert(windows.end(), window_segments.begin(), window_segments.end());
    for (size_t i = 0; i < blocks_.size(); ++i) {
      const Block& b = blocks_[i];
      const bool full_attention = std::find(config_.fullatt_block_indexes.begin(), config_.fullatt_block_indexes.end(),
                                            static_cast<int64_t>(i)) != config_.fullatt_block_indexes.end();
      x = x + attention(b, rms_norm(x, b.norm1), cos, sin, full_attention ? full : windows);
      const at::Tensor a = rms_norm(x, b.norm2);
      x = x + at::linear(at::silu(at::linear(a, b.gate_w, b.gate_b)) * at::linear(a, b.up_w, b.up_b), b.down_w, b.down_b);
    }
    at::Tensor y = rms_norm(x, merger_norm_).reshape({G * units, m2 * config_.hidden_size});
    y = at::linear(at::gelu(at::linear(y, merger_w1_, merger_b1_)), merger_w2_, merger_b2_);
    // Back from window order to row-major units within each group.
    const at::Tensor inverse = at::argsort(unit_order);
    const at::Tensor chunk_inverse = (at::arange(G, long_opts).unsqueeze(1) * units + inverse.unsqueeze(0)).reshape({-1});
    merged.push_back(y.index_select(0, chunk_inverse));
  }
  return at::cat(merged, 0);
}

}  // namespace mmi
