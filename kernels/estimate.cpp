#include "kernels/estimate.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <tuple>

#include "kernels/cuda/cuda_executor.h"

namespace mmi {
namespace {

// Keys per step of the window's softmax: large on the GPU (few launches), moderate on the CPU.
int64_t key_chunk(const at::Tensor& t) { return t.is_cuda() ? 262144 : 16384; }

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

// Rejects a window that is empty or reaches past q's tokens.
void check_window(const at::Tensor& q, const QueryWindow& window) {
  if (window.count <= 0 || window.count > window.end || window.end > q.size(0)) {
    throw std::invalid_argument("last_query_profile: bad window (end " + std::to_string(window.end) + ", count " +
                                std::to_string(window.count) + ") for " + std::to_string(q.size(0)) + " tokens");
  }
}

}  // namespace

QueryWindow window_for(const SequenceLayout& layout, BoundaryKind boundary, Modality rows, int64_t last_q) {
  if (boundary == BoundaryKind::kQ || boundary == BoundaryKind::k2D) {
    const Span& last = layout.span(layout.spans_of(rows).back());
    return QueryWindow{last.end(), std::min(last_q, last.length)};
  }
  return QueryWindow{layout.length(), std::min(last_q, layout.length())};
}

std::vector<uint8_t> modality_filter(const SequenceLayout& layout, int key_modality) {
  std::vector<uint8_t> filter(layout.length(), 0);
  for (int s : layout.spans_of(static_cast<Modality>(key_modality))) {
    std::fill(filter.begin() + layout.span(s).start, filter.begin() + layout.span(s).end(), 1);
  }
  return filter;
}

AttentionProfile last_query_profile(const at::Tensor& q, const at::Tensor& k, int64_t head,
                                    const QueryWindow& window, const std::vector<uint8_t>* key_filter,
                                    bool distances) {
  if (!window_profile_accepts(q, k)) return last_query_profile_aten(q, k, head, window, key_filter, distances);
  const AttentionProfile both = last_query_profiles(q, k, {head}, window, key_filter, distances);
  return AttentionProfile{both.column[0], distances ? both.distance[0] : at::Tensor()};
}

AttentionProfile last_query_profiles(const at::Tensor& q, const at::Tensor& k, const std::vector<int64_t>& heads,
                                     const QueryWindow& window, const std::vector<uint8_t>* key_filter,
                                     bool distances) {
  check_window(q, window);
  if (heads.empty()) throw std::invalid_argument("last_query_profiles: no heads given");
  if (!window_profile_accepts(q, k)) {
    std::vector<at::Tensor> columns, sums;
    for (int64_t h : heads) {
      const AttentionProfile one = last_query_profile_aten(q, k, h, window, key_filter, distances);
      columns.push_back(one.column);
      if (distances) sums.push_back(one.distance);
    }
    return AttentionProfile{at::stack(columns), distances ? at::stack(sums) : at::Tensor()};
  }
  at::Tensor filter;
  if (key_filter) {
    filter = at::tensor(std::vector<double>(key_filter->begin(), key_filter->begin() + window.end)).to(q.device());
  }
  auto [column, distance] = window_profile_cuda(q, k, heads, window.end, window.count, filter, distances);
  return AttentionProfile{column, distance};
}

AttentionProfile last_query_profile_aten(const at::Tensor& q, const at::Tensor& k, int64_t head,
                                         const QueryWindow& window, const std::vector<uint8_t>* key_filter,
                                         bool distances) {
  check_window(q, window);
  const int64_t end = window.end, count = window.count;
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
  const int64_t chunk = key_chunk(q);
  for (int64_t c0 = 0; c0 < end; c0 += chunk) {
    const at::Tensor s = chunk_scores(c0, std::min(end, c0 + chunk));
    const at::Tensor m_new = at::maximum(m, std::get<0>(s.max(1)));
    l = l * at::exp(m - m_new) + at::exp(s - m_new.unsqueeze(1)).sum(1);
    m = m_new;
  }
  // Pass 2: probabilities, summed per column and per distance where the tensors live. The distance sums
  // use a skew: with the rows reversed and each row shifted by its index, a diagonal i - j = const of
  // the chunk becomes a column of a [L, C + L - 1] view, so one reduction sums every diagonal.
  const auto f64 = queries.options().dtype(at::kDouble);
  AttentionProfile profile;
  profile.column = at::zeros({end}, f64);
  if (distances) profile.distance = at::zeros({end}, f64);
  at::Tensor filter;
  if (key_filter) {
    filter = at::tensor(std::vector<double>(key_filter->begin(), key_filter->begin() + end)).to(f64.device());
  }
  for (int64_t c0 = 0; c0 < end; c0 += chunk) {
    const int64_t c1 = std::min(end, c0 + chunk), width = c1 - c0;
    at::Tensor p = (at::exp(chunk_scores(c0, c1) - m.unsqueeze(1)) / l.unsqueeze(1)).to(at::kDouble);  // [L, C]
    if (key_filter) p = p * filter.narrow(0, c0, width).unsqueeze(0);
    profile.column.narrow(0, c0, width).add_(p.sum(0));
    if (!distances) continue;
    const at::Tensor skewed = at::constant_pad_nd(p.flip(0), {0, count}).reshape({-1})
                                  .narrow(0, 0, count * (width + count - 1)).reshape({count, width + count - 1});
    // Column x of `skewed` holds the diagonal j - r = x - (L - 1): distance end - 1 - c0 - x.
    const at::Tensor sums = skewed.sum(0).flip(0);  // index y = width + L - 2 - x
    const int64_t d_lo = end - 1 - c0 - (width + count - 2);  // distance of y = 0
    const int64_t lo = std::max<int64_t>(0, d_lo), hi = std::min(end, end - c0);  // valid distances [lo, hi)
    if (lo < hi) profile.distance.narrow(0, lo, hi - lo).add_(sums.narrow(0, lo - d_lo, hi - lo));
  }
  return profile;
}

std::vector<int64_t> top_k_forced(const at::Tensor& scores, int64_t k, int64_t forced) {
  std::vector<int64_t> out;
  EstimateBatch batch;
  batch.add_top_k(scores, k, forced, &out);
  batch.run();
  return out;
}

namespace {

// One selection over `group` (requests of equal length, k and forced, on one device): returns the
// chosen (request, index) pairs as a [M, 2] tensor, row-major, so each request's indices ascend.
// Per request, with take = min(max(k, forced), number of positive scores): every score above the
// take-th largest, then the lowest indices among those equal to it.
at::Tensor select_group(const std::vector<const EstimateBatch::TopK*>& group) {
  std::vector<at::Tensor> rows;
  for (const auto* r : group) rows.push_back(r->scores.to(at::kDouble));
  at::Tensor s = at::stack(rows);  // [R, n], a copy
  const int64_t n = s.size(1), forced = group[0]->forced;
  if (forced > 0) s.narrow(1, 0, forced).fill_(std::numeric_limits<double>::infinity());
  const int64_t most = std::min(std::max(group[0]->k, forced), n);
  if (most <= 0) return at::empty({0, 2}, s.options().dtype(at::kLong));
  const at::Tensor take = (s > 0).sum(1).clamp_max(most);                              // [R]
  const at::Tensor top = std::get<0>(at::topk(s, most, 1));                           // [R, most], descending
  const at::Tensor threshold = top.gather(1, (take - 1).clamp_min(0).unsqueeze(1));  // [R, 1]
  const at::Tensor above = s > threshold;
  const at::Tensor tied = s == threshold;
  const at::Tensor need = (take - above.sum(1)).unsqueeze(1);                         // ties still to take
  const at::Tensor chosen = (above | (tied & (tied.cumsum(1) <= need))) & (take > 0).unsqueeze(1);
  return at::nonzero(chosen);
}

// The column mass of the visual positions folded modulo each candidate stride (0 = tokens per frame),
// over whole periods of every visual span, phases relative to the span start. column_mass: [R, end]
// (R rows folded independently); appends [R, s] tensors on the mass's device, for the candidates that
// resolve to a positive stride.
void fold_grid(const SequenceLayout& layout, const at::Tensor& column_mass, const std::vector<int64_t>& candidates,
               std::vector<int64_t>& strides, std::vector<at::Tensor>& folds) {
  const int64_t rows = column_mass.size(0), available = column_mass.size(1);
  for (int64_t candidate : candidates) {
    const int64_t s = candidate > 0 ? candidate : layout.frame_stride();
    if (s <= 0) continue;
    at::Tensor mass;  // the first span's fold, then the sum (one video costs one reduction)
    for (const Span& span : layout.spans()) {
      if (!is_visual(span.modality)) continue;
      const int64_t whole = std::min(span.length, std::max<int64_t>(0, available - span.start)) / s * s;
      if (whole <= 0) continue;
      const at::Tensor periods = column_mass.narrow(1, span.start, whole).view({rows, whole / s, s});
      const at::Tensor fold = periods.sum(1, false, at::kDouble);
      mass = mass.defined() ? mass + fold : fold;
    }
    strides.push_back(s);
    folds.push_back(mass.defined() ? mass : at::zeros({rows, s}, column_mass.options().dtype(at::kDouble)));
  }
}

// The best (stride, phase) from the host copies of the folds: fold x holds strides[x] values from
// masses + offsets[x].
GridEstimate choose_grid(const SequenceLayout& layout, const std::vector<int64_t>& strides, const double* masses,
                         const std::vector<int64_t>& offsets) {
  GridEstimate best;
  for (size_t x = 0; x < strides.size(); ++x) {
    const int64_t s = strides[x];
    if (best.stride == 0) best.stride = s;  // fallback when no span holds a whole period
    const double* m = masses + offsets[x];
    const double total = std::accumulate(m, m + s, 0.0);
    if (total <= 0.0) continue;
    const int64_t phase = std::max_element(m, m + s) - m;
    const double lift = m[phase] * s / total;
    const bool better = lift > best.lift * (1 + 1e-9) || (lift >= best.lift * (1 - 1e-9) && s < best.stride);
    if (best.lift == 0.0 || better) best = GridEstimate{s, phase, lift};
  }
  if (best.stride == 0) best.stride = std::max<int64_t>(1, layout.frame_stride());
  return best;
}

// Every fold ([R, s] each) in one flat tensor, on the host; offsets[x] is where fold x starts.
at::Tensor folds_on_host(const std::vector<at::Tensor>& folds, std::vector<int64_t>& offsets) {
  int64_t total = 0;
  std::vector<at::Tensor> flat;
  for (const at::Tensor& f : folds) offsets.push_back(total), total += f.numel(), flat.push_back(f.reshape({-1}));
  if (folds.empty()) return at::empty({0}, at::kDouble);
  return (flat.size() == 1 ? flat[0] : at::cat(flat)).cpu().contiguous();
}

}  // namespace

GridEstimate estimate_grid(const SequenceLayout& layout, const at::Tensor& column_mass,
                           const std::vector<int64_t>& candidate_strides) {
  std::vector<int64_t> strides, offsets;
  std::vector<at::Tensor> folds;
  fold_grid(layout, column_mass.unsqueeze(0), candidate_strides, strides, folds);
  const at::Tensor host = folds_on_host(folds, offsets);
  return choose_grid(layout, strides, host.data_ptr<double>(), offsets);
}

int EstimateBatch::add_profile(const SequenceLayout& layout, const at::Tensor& q, const at::Tensor& k, int64_t head,
                               const QueryWindow& window, int key_modality, bool distances) {
  for (size_t x = 0; x < profiles_.size(); ++x) {
    Profile& p = profiles_[x];
    if (p.layout == &layout && p.q.is_same(q) && p.k.is_same(k) && p.head == head && p.window.end == window.end &&
        p.window.count == window.count && p.key_modality == key_modality) {
      p.distances = p.distances || distances;
      return static_cast<int>(x);
    }
  }
  profiles_.push_back(Profile{&layout, q, k, head, window, key_modality, distances});
  return static_cast<int>(profiles_.size()) - 1;
}

void EstimateBatch::add_top_k(const at::Tensor& scores, int64_t k, int64_t forced, std::vector<int64_t>* out) {
  top_k_.push_back(TopK{scores, k, std::min(forced, scores.size(0)), out});
}

void EstimateBatch::add_top_k(ProfileSums scores, int64_t k, int64_t forced, std::vector<int64_t>* out) {
  top_k_.push_back(TopK{at::Tensor(), k, forced, out, scores});
}

void EstimateBatch::add_grid(const SequenceLayout& layout, const at::Tensor& column_mass,
                             const std::vector<int64_t>& candidate_strides, PatternIndex* out) {
  grids_.push_back(Grid{&layout, candidate_strides, column_mass, -1, out});
}

void EstimateBatch::add_grid(const SequenceLayout& layout, int profile, const std::vector<int64_t>& candidate_strides,
                             PatternIndex* out) {
  grids_.push_back(Grid{&layout, candidate_strides, at::Tensor(), profile, out});
}

void EstimateBatch::run() {
  run_profiles();
  run_top_k();
  run_grids();
  profiles_.clear();
  launches_.clear();
}

void EstimateBatch::run_profiles() {
  // Requests of one q, k, window and key set, whatever their heads, share a launch.
  using Shared = std::tuple<const void*, const void*, const SequenceLayout*, int64_t, int64_t, int>;
  std::map<Shared, std::vector<size_t>> shared;
  for (size_t x = 0; x < profiles_.size(); ++x) {
    const Profile& p = profiles_[x];
    shared[{p.q.unsafeGetTensorImpl(), p.k.unsafeGetTensorImpl(), p.layout, p.window.end, p.window.count,
            p.key_modality}]
        .push_back(x);
  }
  for (const auto& [key, members] : shared) {
    const Profile& first = profiles_[members.front()];
    std::vector<int64_t> heads;
    bool distances = false;
    for (size_t x : members) {
      profiles_[x].launch = launches_.size();
      profiles_[x].row = static_cast<int64_t>(heads.size());
      heads.push_back(profiles_[x].head);
      distances = distances || profiles_[x].distances;
    }
    const std::vector<uint8_t> filter =
        first.key_modality >= 0 ? modality_filter(*first.layout, first.key_modality) : std::vector<uint8_t>();
    launches_.push_back(last_query_profiles(first.q, first.k, heads, first.window,
                                            first.key_modality >= 0 ? &filter : nullptr, distances));
  }
}

void EstimateBatch::run_top_k() {
  for (TopK& r : top_k_) {
    if (r.scores.defined()) continue;
    const Profile& p = profiles_.at(r.sums.profile);
    const AttentionProfile& sums = launches_[p.launch];
    r.scores = (r.sums.distance ? sums.distance : sums.column)[p.row];
    r.forced = std::min(r.forced, r.scores.size(0));
  }
  std::map<std::tuple<int64_t, int64_t, int64_t, std::string>, std::vector<const TopK*>> groups;
  for (const TopK& r : top_k_) groups[{r.scores.size(0), r.k, r.forced, r.scores.device().str()}].push_back(&r);
  std::vector<std::pair<const std::vector<const TopK*>*, at::Tensor>> chosen;
  for (const auto& [shape, group] : groups) chosen.emplace_back(&group, select_group(group));
  for (auto& [group, pairs] : chosen) {  // the only copies to the host
    const at::Tensor host = pairs.cpu().contiguous();
    const int64_t* x = host.data_ptr<int64_t>();
    for (const TopK* r : *group) r->out->clear();
    for (int64_t m = 0; m < host.size(0); ++m) (*group)[x[2 * m]]->out->push_back(x[2 * m + 1]);
  }
  top_k_.clear();
}

void EstimateBatch::run_grids() {
  // Folds of [R, end] column sums, each row a head: one per explicit mass, one per profile launch,
  // layout and candidate list however many of its heads are grids.
  struct Folded {
    std::vector<int64_t> strides;
    std::vector<at::Tensor> masses;  // [R, s] per stride
  };
  std::vector<Folded> folded;
  std::map<std::tuple<size_t, const SequenceLayout*, std::vector<int64_t>>, size_t> by_launch;
  std::vector<std::pair<size_t, int64_t>> source;  // per grid: its Folded and row
  for (const Grid& g : grids_) {
    auto fold = [&](const at::Tensor& mass) {
      folded.emplace_back();
      fold_grid(*g.layout, mass, g.candidates, folded.back().strides, folded.back().masses);
      return folded.size() - 1;
    };
    if (g.profile < 0) {
      source.emplace_back(fold(g.mass.unsqueeze(0)), 0);
      continue;
    }
    const Profile& p = profiles_.at(g.profile);
    const auto key = std::make_tuple(p.launch, g.layout, g.candidates);
    auto it = by_launch.find(key);
    if (it == by_launch.end()) it = by_launch.emplace(key, fold(launches_[p.launch].column)).first;
    source.emplace_back(it->second, p.row);
  }
  std::vector<at::Tensor> masses;
  for (const Folded& f : folded) masses.insert(masses.end(), f.masses.begin(), f.masses.end());
  std::vector<int64_t> offsets;
  const at::Tensor host = folds_on_host(masses, offsets);  // one copy for every head
  std::vector<size_t> first_mass;  // offsets index of each Folded's first stride
  for (size_t x = 0, at = 0; x < folded.size(); at += folded[x].strides.size(), ++x) first_mass.push_back(at);
  for (size_t x = 0; x < grids_.size(); ++x) {
    const auto [f, row] = source[x];
    const std::vector<int64_t>& strides = folded[f].strides;
    std::vector<int64_t> mine;
    for (size_t c = 0; c < strides.size(); ++c) mine.push_back(offsets[first_mass[f] + c] + row * strides[c]);
    const GridEstimate best = choose_grid(*grids_[x].layout, strides, host.data_ptr<double>(), mine);
    grids_[x].out->stride = best.stride;
    grids_[x].out->phase = best.phase;
  }
  grids_.clear();
}

ResolvedHead resolve_head(const SequenceLayout& layout, const HeadConfig& config, const at::Tensor& q,
                          const at::Tensor& k, int64_t head) {
  ResolvedHead out;
  EstimateBatch batch;
  resolve_head(layout, config, q, k, head, batch, out);
  batch.run();
  return out;
}

void resolve_head(const SequenceLayout& layout, const HeadConfig& config, const at::Tensor& q,
                  const at::Tensor& k, int64_t head, EstimateBatch& batch, ResolvedHead& out) {
  out = ResolvedHead{};
  out.boundary = config.boundary;
  // Fills `r` in place: the batch writes its Vertical-Slash lists and grid stride and phase in run().
  auto resolve = [&](ResolvedPattern& r, const PatternParams& p, Modality rows, int key_modality) {
    p.validate();
    r = ResolvedPattern{p, {}};
    switch (p.kind) {
      case PatternKind::kSfFixed:
      case PatternKind::kSfStrided: r.index.block = resolve_block(layout, p); break;
      case PatternKind::kVerticalSlash: {
        const QueryWindow w = window_for(layout, config.boundary, rows, p.last_q);
        const int a = batch.add_profile(layout, q, k, head, w, key_modality, true);
        batch.add_top_k(EstimateBatch::ProfileSums{a, false}, p.n_vertical, kForcedColumns, &r.index.verticals);
        batch.add_top_k(EstimateBatch::ProfileSums{a, true}, p.n_slash, kForcedDistances, &r.index.slashes);
        break;
      }
      case PatternKind::kGrid: {
        if (!layout.has_visual()) break;
        const QueryWindow w = window_for(layout, config.boundary, rows, p.last_q);
        batch.add_grid(layout, batch.add_profile(layout, q, k, head, w, key_modality, false), p.strides, &r.index);
        break;
      }
      default: break;
    }
  };
  switch (config.boundary) {
    case BoundaryKind::kNone:
    case BoundaryKind::kK:
      resolve(out.patterns[0][0], config.patterns[0][0], Modality::kText, -1);
      break;
    case BoundaryKind::kQ:
      for (Modality m : layout.modalities()) resolve(out.patterns[int(m)][0], config.patterns[int(m)][0], m, -1);
      break;
    case BoundaryKind::k2D:
      for (Modality m : layout.modalities()) {
        for (Modality n : layout.modalities()) {
          resolve(out.patterns[int(m)][int(n)], config.patterns[int(m)][int(n)], m, int(n));
        }
      }
      break;
  }
}

}  // namespace mmi
