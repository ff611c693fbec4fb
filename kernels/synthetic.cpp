#include "kernels/synthetic.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <stdexcept>

namespace mmi {
namespace {

// Scale a shared direction in q and k by so that it adds `logit` to the scaled score q·k/sqrt(d).
double shared_scale(double logit, int64_t d) { return std::sqrt(logit * std::sqrt(double(d))); }

at::Tensor unit(const at::Generator& gen, int64_t d) {
  at::Tensor x = at::randn({d}, gen);
  return x / x.norm();
}

// Adds a distance-decaying similarity: sum over frequencies of cos(w (i - j)), `logit` at distance 0.
void add_local_bias(at::Tensor& q, at::Tensor& k, double logit, const at::Generator& gen) {
  const int64_t n = q.size(0), d = q.size(2), half = d / 2;
  const at::Tensor freq = (at::rand({half}, gen) * (M_PI / 48.0)).to(q.device());
  const at::Tensor angle = at::arange(n, q.options()).unsqueeze(1) * freq.unsqueeze(0);  // [N, d/2]
  const double c = std::sqrt(logit * std::sqrt(double(d)) / half);
  const at::Tensor pos = at::cat({at::cos(angle), at::sin(angle)}, 1) * c;             // [N, 2*(d/2)]
  q.narrow(2, 0, 2 * half).add_(pos.unsqueeze(1));
  k.narrow(2, 0, 2 * half).add_(pos.unsqueeze(1));
}

}  // namespace

QKV make_qkv(const SequenceLayout& layout, const SyntheticOptions& o) {
  if (o.heads <= 0 || o.kv_heads <= 0 || o.heads % o.kv_heads != 0) {
    throw std::invalid_argument("synthetic inputs: heads (" + std::to_string(o.heads) +
                                ") must be a positive multiple of kv_heads (" + std::to_string(o.kv_heads) + ")");
  }
  if (o.head_dim <= 0) throw std::invalid_argument("synthetic inputs: head_dim must be positive");
  const int64_t n = layout.length(), d = o.head_dim, group = o.heads / o.kv_heads;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);  // small draws, always on the host
  auto noise = [&](int64_t heads) {
    if (o.device.is_cpu()) return at::randn({n, heads, d}, gen);
    return at::randn({n, heads, d}, at::TensorOptions().device(o.device));
  };
  if (!o.device.is_cpu()) at::manual_seed(o.seed);
  // Unstructured logits have a standard deviation of 0.5 (q, k entries ~ N(0, 0.5^(1/2))).
  at::Tensor q = noise(o.heads) * std::sqrt(0.5);
  at::Tensor k = noise(o.kv_heads) * std::sqrt(0.5);
  at::Tensor v = noise(o.kv_heads);
  if (o.structured) {
    add_local_bias(q, k, 3.0, gen);
    const int64_t stride = layout.frame_stride();
    for (int64_t g = 0; g < o.kv_heads; ++g) {
      at::Tensor kg = k.select(1, g);                 // [N, D]
      at::Tensor qg = q.narrow(1, g * group, group);  // [N, G, D]
      // Per query head of the group, how strongly it follows each structure.
      const at::Tensor follow = (at::rand({3, group}, gen) * 0.4 + 0.6).to(o.device);
      auto plant = [&](const at::Tensor& rows_host, double logit, int which) {
        const at::Tensor key_rows = rows_host.to(o.device);
        const at::Tensor dir = (unit(gen, d) * shared_scale(logit, d)).to(o.device);
        kg.index_put_({key_rows}, kg.index({key_rows}) + dir);
        qg.add_(follow[which].unsqueeze(1) * dir.unsqueeze(0).unsqueeze(0));
      };
      plant(at::arange(0, std::min<int64_t>(4, n), at::kLong), 6.0, 0);  // attention sinks
      if (stride > 0) {                                                   // grid columns
        std::vector<int64_t> rows;
        const int64_t phase = (7 * g + 3) % stride;
        for (const Span& s : layout.spans()) {
          if (!is_visual(s.modality)) continue;
          for (int64_t x = s.start + phase; x < s.end(); x += stride) rows.push_back(x);
        }
        if (!rows.empty()) plant(at::tensor(rows, at::kLong), 5.0, 1);
      }
      plant(at::randint(n, {4}, gen, at::kLong), 4.0, 2);  // a few hot columns
    }
  }
  return {q.to(o.dtype), k.to(o.dtype), v.to(o.dtype)};
}

}  // namespace mmi
