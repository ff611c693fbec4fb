#include "kernels/estimate.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>
#include <tuple>

namespace mmi {
namespace {

constexpr int64_t kKeyChunk = 16384;

int64_t resolve_block(const SequenceLayout& layout, const PatternParams& p) {
  if (p.block > 0) return p.block;
  const int64_t stride = layout.frame_stride();
  if (stride <= 0) {
    throw std::invalid_argument(std::string(pattern_name(p.kind)) +
                                ": block=0 means tokens per frame, but the layout has no visual span; "
                                "set block explicitly");
  }
  return stride;
}

// The window a pattern for rows of modality `rows` estimates from.
QueryWindow window_for(const SequenceLayout& layout, BoundaryKind boundary, Modality rows, int64_t last_q) {
  if (boundary == BoundaryKind::kQ || boundary == BoundaryKind::k2D) {
    const Span& last = layout.span(layout.spans_of(rows).back());
    return QueryWindow{last.end(), std::min(last_q, last.length)};
  }
  return QueryWindow{layout.length(), std::min(last_q, layout.length())};
}

}  // namespace

AttentionProfile last_query_profile(const at::Tensor& q, const at::Tensor& k, int64_t head,
                                    const QueryWindow& window, const std::vector<uint8_t>* key_filter) {
  const int64_t end = window.end, count = window.count;
  if (count <= 0 || count > end || end > q.size(0)) {
    throw std::invalid_argument("last_query_profile: bad window (end " + std::to_string(end) + ", count " +
                                std::to_string(count) + ") for " + std::to_string(q.size(0)) + " tokens");
  }
  const int64_t group = q.size(1) / k.size(1);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(2)));
  const at::Tensor queries = q.select(1, head).narrow(0, end - count, count).to(at::kFloat);  // [L, D]
  const at::Tensor keys = k.select(1, head / group);                                         // [N, D]
  const at::Tensor rows = at::arange(end - count, end, queries.options().dtype(at::kLong)).unsqueeze(1);

  auto chunk_scores = [&](int64_t c0, int64_t c1) {  // [L, c1 - c0] fp32, causal positions masked
    at::Tensor s = at::matmul(queries, keys.narrow(0, c0, c1 - c0).to(at::kFloat).t()) * scale;
    const at::Tensor cols = at::arange(c0, c1, rows.options()).unsqueeze(0);
    return s.masked_fill(cols > rows, -std::numeric_limits<float>::infinity());
  };
  // Pass 1: row maxima and normalisers, online over key chunks.
  at::Tensor m = at::full({count}, -std::numeric_limits<float>::infinity(), queries.options());
  at::Tensor l = at::zeros({count}, queries.options());
  for (int64_t c0 = 0; c0 < end; c0 += kKeyChunk) {
    const at::Tensor s = chunk_scores(c0, std::min(end, c0 + kKeyChunk));
    const at::Tensor m_new = at::maximum(m, std::get<0>(s.max(1)));
    l = l * at::exp(m - m_new) + at::exp(s - m_new.unsqueeze(1)).sum(1);
    m = m_new;
  }
  // Pass 2: probabilities, summed per column and per distance where the tensors live. The distance sums
  // use a skew: with the rows reversed and each row shifted by its index, a diagonal i - j = const of
  // the chunk becomes a column of a [L, C + L - 1] view, so one reduction sums every diagonal.
  const auto f64 = queries.options().dtype(at::kDouble);
  at::Tensor column = at::zeros({end}, f64), distance = at::zeros({end}, f64);
  at::Tensor filter;
  if (key_filter) filter = at::tensor(std::vector<double>(key_filter->begin(), key_filter->begin() + end)).to(f64.device());
  for (int64_t c0 = 0; c0 < end; c0 += kKeyChunk) {
    const int64_t c1 = std::min(end, c0 + kKeyChunk), width = c1 - c0;
    at::Tensor p = (at::exp(chunk_scores(c0, c1) - m.unsqueeze(1)) / l.unsqueeze(1)).to(at::kDouble);  // [L, C]
    if (key_filter) p = p * filter.narrow(0, c0, width).unsqueeze(0);
    column.narrow(0, c0, width).add_(p.sum(0));
    const at::Tensor skewed = at::constant_pad_nd(p.flip(0), {0, count}).reshape({-1})
                                  .narrow(0, 0, count * (width + count - 1)).reshape({count, width + count - 1});
    // Column x of `skewed` holds the diagonal j - r = x - (L - 1): distance end - 1 - c0 - x.
    const at::Tensor sums = skewed.sum(0).flip(0);  // index y = width + L - 2 - x
    const int64_t d_lo = end - 1 - c0 - (width + count - 2);  // distance of y = 0
    const int64_t lo = std::max<int64_t>(0, d_lo), hi = std::min(end, end - c0);  // valid distances [lo, hi)
    if (lo < hi) distance.narrow(0, lo, hi - lo).add_(sums.narrow(0, lo - d_lo, hi - lo));
  }
  const at::Tensor column_host = column.cpu(), distance_host = distance.cpu();
  AttentionProfile profile;
  profile.column.assign(column_host.data_ptr<double>(), column_host.data_ptr<double>() + end);
  profile.distance.assign(distance_host.data_ptr<double>(), distance_host.data_ptr<double>() + end);
  return profile;
}

std::vector<int64_t> top_k_forced(const std::vector<double>& scores, int64_t k, int64_t forced) {
  const int64_t n = static_cast<int64_t>(scores.size());
  forced = std::min(forced, n);
  std::vector<int64_t> out(forced);
  std::iota(out.begin(), out.end(), 0);
  std::vector<int64_t> rest;
  for (int64_t j = forced; j < n; ++j) {
    if (scores[j] > 0.0) rest.push_back(j);
  }
  const int64_t take = std::min<int64_t>(std::max<int64_t>(k - forced, 0), rest.size());
  auto better = [&](int64_t a, int64_t b) { return scores[a] != scores[b] ? scores[a] > scores[b] : a < b; };
  std::partial_sort(rest.begin(), rest.begin() + take, rest.end(), better);
  out.insert(out.end(), rest.begin(), rest.begin() + take);
  std::sort(out.begin(), out.end());
  return out;
}

GridEstimate estimate_grid(const SequenceLayout& layout, const std::vector<double>& column_mass,
                           const std::vector<int64_t>& candidate_strides) {
  GridEstimate best;
  for (int64_t candidate : candidate_strides) {
    const int64_t s = candidate > 0 ? candidate : layout.frame_stride();
    if (s <= 0) continue;
    if (best.stride == 0) best.stride = s;  // fallback when no span holds a whole period
    std::vector<double> mass(s, 0.0);
    for (const Span& span : layout.spans()) {
      if (!is_visual(span.modality)) continue;
      const int64_t whole = std::min<int64_t>(span.length / s * s, std::max<int64_t>(0, int64_t(column_mass.size()) - span.start));
      for (int64_t t = 0; t < whole; ++t) mass[t % s] += column_mass[span.start + t];
    }
    const double total = std::accumulate(mass.begin(), mass.end(), 0.0);
    if (total <= 0.0) continue;
    const int64_t phase = std::max_element(mass.begin(), mass.end()) - mass.begin();
    const double lift = mass[phase] * s / total;
    const bool better = lift > best.lift * (1 + 1e-9) || (lift >= best.lift * (1 - 1e-9) && s < best.stride);
    if (best.lift == 0.0 || better) best = GridEstimate{s, phase, lift};
  }
  if (best.stride == 0) best.stride = std::max<int64_t>(1, layout.frame_stride());
  return best;
}

ResolvedHead resolve_head(const SequenceLayout& layout, const HeadConfig& config, const at::Tensor& q,
                          const at::Tensor& k, int64_t head) {
  ResolvedHead out;
  out.boundary = config.boundary;
  std::map<std::tuple<int64_t, int64_t, int>, AttentionProfile> profiles;  // (end, count, key modality)
  auto profile = [&](const QueryWindow& w, int key_modality) -> const AttentionProfile& {
    const auto key = std::make_tuple(w.end, w.count, key_modality);
    auto it = profiles.find(key);
    if (it != profiles.end()) return it->second;
    std::vector<uint8_t> filter;
    if (key_modality >= 0) {
      filter.assign(layout.length(), 0);
      for (int s : layout.spans_of(static_cast<Modality>(key_modality))) {
        std::fill(filter.begin() + layout.span(s).start, filter.begin() + layout.span(s).end(), 1);
      }
    }
    return profiles.emplace(key, last_query_profile(q, k, head, w, key_modality >= 0 ? &filter : nullptr))
        .first->second;
  };
  auto resolve = [&](const PatternParams& p, Modality rows, int key_modality) {
    p.validate();
    ResolvedPattern r{p, {}};
    switch (p.kind) {
      case PatternKind::kSfFixed:
      case PatternKind::kSfStrided: r.index.block = resolve_block(layout, p); break;
      case PatternKind::kVerticalSlash: {
        const AttentionProfile& a = profile(window_for(layout, config.boundary, rows, p.last_q), key_modality);
        r.index.verticals = top_k_forced(a.column, p.n_vertical, kForcedColumns);
        r.index.slashes = top_k_forced(a.distance, p.n_slash, kForcedDistances);
        break;
      }
      case PatternKind::kGrid: {
        if (!layout.has_visual()) break;
        const AttentionProfile& a = profile(window_for(layout, config.boundary, rows, p.last_q), key_modality);
        const GridEstimate g = estimate_grid(layout, a.column, p.strides);
        r.index.stride = g.stride;
        r.index.phase = g.phase;
        break;
      }
      default: break;
    }
    return r;
  };
  switch (config.boundary) {
    case BoundaryKind::kNone:
    case BoundaryKind::kK:
      out.patterns[0][0] = resolve(config.patterns[0][0], Modality::kText, -1);
      break;
    case BoundaryKind::kQ:
      for (Modality m : layout.modalities()) out.patterns[int(m)][0] = resolve(config.patterns[int(m)][0], m, -1);
      break;
    case BoundaryKind::k2D:
      for (Modality m : layout.modalities()) {
        for (Modality n : layout.modalities()) {
          out.patterns[int(m)][int(n)] = resolve(config.patterns[int(m)][int(n)], m, int(n));
        }
      }
      break;
  }
  return out;
}

}  // namespace mmi
