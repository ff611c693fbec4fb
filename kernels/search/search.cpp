#include "kernels/search/search.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "kernels/cpu/executor.h"
#include "kernels/cuda/cuda_executor.h"
#include "kernels/estimate.h"
#include "kernels/plan.h"
#include "kernels/plan_builder.h"

namespace mmi {
namespace {

constexpr int kAll = -1;  // a region's rows or keys of every modality

// The search space of paper Table 4, at size factor 1.
constexpr int64_t kAShapeSink = 128;
constexpr int64_t kAShapeLocals[] = {1024, 2048, 4096};
constexpr std::pair<int64_t, int64_t> kVerticalSlashSizes[] = {
    {1000, 1024}, {1000, 2048}, {2000, 2048}, {1000, 3096}, {2000, 3096},
    {1000, 4096}, {2000, 4096}, {3500, 200},  {1000, 2500}};
constexpr int64_t kGridLocal = 1024;

// The search for a candidate's size factor stops when its bracket is this tight (relative), or
// below kMinFactor (sizes that round to zero), or after kMaxSecantSteps steps.
constexpr double kFactorPrecision = 0.02;
constexpr double kMinFactor = 1e-4;
constexpr int kMaxSecantSteps = 16;
// The searched stride needs this many whole periods; multiples of a stride score the same as it up
// to noise, so the best stride is reduced to its smallest divisor scoring within this fraction.
constexpr size_t kMinPeriods = 4;
constexpr int64_t kCandidatePhases = 4;
constexpr double kDivisorSlack = 0.25;

// What a cost or an error covers: rows of one modality attending to keys of one modality (a
// quadrant), or the whole head.
struct Region {
  int rows = kAll;
  int keys = kAll;
  bool whole() const { return rows == kAll; }
  std::string key() const { return std::to_string(rows) + ">" + std::to_string(keys); }
};

PatternParams a_shape(int64_t sink, int64_t local) {
  PatternParams p;
  p.kind = PatternKind::kAShape;
  p.sink = sink;
  p.local = local;
  return p;
}

PatternParams dense() { return PatternParams{}; }

std::vector<PatternParams> candidate_patterns(int64_t searched_stride, int64_t last_q) {
  std::vector<PatternParams> out;
  for (int64_t local : kAShapeLocals) out.push_back(a_shape(kAShapeSink, local));
  std::vector<int64_t> strides = {0};  // 0: the tokens per frame of whatever input runs the table
  if (searched_stride > 0) strides.push_back(searched_stride);
  for (int64_t stride : strides) {
    for (int lines = 1; lines < 8; ++lines) {  // bit 0: vertical, 1: horizontal, 2: slash
      PatternParams p;
      p.kind = PatternKind::kGrid;
      p.strides = {stride};
      p.vline = lines & 1;
      p.hline = lines & 2;
      p.slash = lines & 4;
      p.grid_local = kGridLocal;
      p.last_q = last_q;
      out.push_back(p);
    }
  }
  for (const auto& [n_vertical, n_slash] : kVerticalSlashSizes) {
    PatternParams p;
    p.kind = PatternKind::kVerticalSlash;
    p.n_vertical = n_vertical;
    p.n_slash = n_slash;
    p.last_q = last_q;
    out.push_back(p);
  }
  return out;
}

// A pattern's size parameters times x, rounded, at most n (sizes beyond the input change nothing;
// windows keep the diagonal).
PatternParams scale_pattern(PatternParams p, double x, int64_t n) {
  auto times = [x, n](int64_t size, int64_t floor) {
    return std::clamp<int64_t>(std::llround(static_cast<double>(size) * x), floor, n);
  };
  switch (p.kind) {
    case PatternKind::kAShape:
      p.sink = times(p.sink, 0);
      p.local = times(p.local, 1);
      break;
    case PatternKind::kVerticalSlash:
      p.n_vertical = times(p.n_vertical, 0);
      p.n_slash = times(p.n_slash, 0);
      break;
    case PatternKind::kGrid:
      p.grid_local = times(p.grid_local, 1);
      break;
    default:
      break;  // dense has no size; the search space has no other kind
  }
  return p;
}

// The factor beyond which scaling `p` changes nothing on n tokens (every size reaches n).
double pattern_saturation(const PatternParams& p, int64_t n) {
  auto cover = [n](int64_t size) { return size > 0 ? static_cast<double>(n) / size : 0.0; };
  switch (p.kind) {
    case PatternKind::kAShape:
      return cover(p.local);
    case PatternKind::kVerticalSlash:
      return std::max(cover(p.n_vertical), cover(p.n_slash));
    case PatternKind::kGrid:
      return cover(p.grid_local);
    default:
      return 0.0;
  }
}

std::string config_key(const HeadConfig& config) {
  std::string key = boundary_name(config.boundary);
  for (const auto& row : config.patterns) {
    for (const PatternParams& p : row) key += "|" + p.describe();
  }
  return key;
}

bool has_vertical_slash(const HeadConfig& config) {
  for (const auto& row : config.patterns) {
    for (const PatternParams& p : row) {
      if (p.kind == PatternKind::kVerticalSlash) return true;
    }
  }
  return false;
}

// How strongly one phase of `stride` stands out in (at least) three quarters of its periods: per
// whole period of each visual span, the mass at the phase relative to the period's mean, and the
// lower quartile of that over periods, for the best of the kCandidatePhases phases holding the most
// mass overall (a phase that stands out in most periods is among them). A few hot columns, which
// lift a plain fold the more the larger the stride, move only a few periods; a divisor of the true
// stride has the line in at most half of its periods. 0 with fewer than kMinPeriods periods.
// mass: [available] host column mass of the estimation window.
double stride_score(const SequenceLayout& layout, const std::vector<double>& mass, int64_t stride) {
  const int64_t available = static_cast<int64_t>(mass.size());
  std::vector<const double*> periods;
  std::vector<double> sums, fold(stride, 0.0);
  for (const Span& span : layout.spans()) {
    if (!is_visual(span.modality)) continue;
    const int64_t length = std::min(span.length, std::max<int64_t>(0, available - span.start));
    for (int64_t o = 0; o + stride <= length; o += stride) {
      const double* period = mass.data() + span.start + o;
      double sum = 0.0;
      for (int64_t p = 0; p < stride; ++p) {
        fold[p] += period[p];
        sum += period[p];
      }
      if (sum <= 0.0) continue;
      periods.push_back(period);
      sums.push_back(sum);
    }
  }
  if (periods.size() < kMinPeriods) return 0.0;
  std::vector<int64_t> phases(stride);
  std::iota(phases.begin(), phases.end(), 0);
  const int64_t top = std::min<int64_t>(kCandidatePhases, stride);
  std::partial_sort(phases.begin(), phases.begin() + top, phases.end(), [&](int64_t a, int64_t b) {
    return fold[a] > fold[b] || (fold[a] == fold[b] && a < b);
  });
  std::vector<double> ratios(periods.size());
  double score = 0.0;
  for (int64_t t = 0; t < top; ++t) {
    for (size_t k = 0; k < periods.size(); ++k) {
      ratios[k] = periods[k][phases[t]] * stride / sums[k];
    }
    std::nth_element(ratios.begin(), ratios.begin() + ratios.size() / 4, ratios.end());
    score = std::max(score, ratios[ratios.size() / 4]);
  }
  return score;
}

// The searched grid stride in [2, max_stride]: the best scoring, reduced to its smallest divisor
// within kDivisorSlack of its score. 0 when no stride has enough periods, or when the result is the
// frame stride (a candidate already).
int64_t periodic_stride(const SequenceLayout& layout, const std::vector<double>& mass,
                        int64_t max_stride) {
  std::vector<double> scores(max_stride + 1, 0.0);
  int64_t best = 0;
  for (int64_t s = 2; s <= max_stride; ++s) {
    scores[s] = stride_score(layout, mass, s);
    if (scores[s] > 0.0 && (best == 0 || scores[s] > scores[best])) best = s;
  }
  if (best == 0) return 0;
  for (int64_t d = 2; d < best; ++d) {
    if (best % d == 0 && scores[d] >= (1.0 - kDivisorSlack) * scores[best]) {
      best = d;
      break;
    }
  }
  return best == layout.frame_stride() ? 0 : best;
}

// The search of one query head. q: [N, 1, D], k, v: [N, 1, D] (its KV head).
class HeadSearch {
 public:
  HeadSearch(const SequenceLayout& layout, const at::Tensor& q, const at::Tensor& k,
             const at::Tensor& v, const SearchOptions& options,
             std::map<std::string, int64_t>& cost_memo)
      : layout_(layout), q_(q), k_(k), options_(options), cost_memo_(cost_memo) {
    const auto dtype = q.scalar_type();
    const bool half = dtype == at::kBFloat16 || dtype == at::kHalf;
    const int64_t d = q.size(2);
    use_cuda_ = q.is_cuda() && half && (d == 64 || d == 80 || d == 128);
    exec_q_ = use_cuda_ ? q.contiguous() : q.cpu();
    exec_k_ = use_cuda_ ? k.contiguous() : k.cpu();
    exec_v_ = use_cuda_ ? v.contiguous() : v.cpu();
    tie_margin_ = options.tie_margin >= 0 ? options.tie_margin : half ? 1e-3 : 1e-6;
  }

  HeadChoice run();

 private:
  struct Scored {
    HeadConfig config;
    double error = 0.0;
    int64_t cost = 0;
  };

  // ---- the online index, exactly as resolve_head() computes it, with the profiles cached -------

  // The column and distance profile of a window (keys of one modality, or all), computed where q
  // and k live and kept on the host. Thread-safe: candidates are scaled in parallel.
  const AttentionProfile& profile(const QueryWindow& w, int keys) {
    const std::lock_guard<std::mutex> lock(profiles_mutex_);
    const auto key = std::make_tuple(w.end, w.count, keys);
    auto it = profiles_.find(key);
    if (it != profiles_.end()) return it->second;
    const std::vector<uint8_t> filter = keys == kAll ? std::vector<uint8_t>() : modality_filter(layout_, keys);
    AttentionProfile a = last_query_profile(q_, k_, 0, w, keys == kAll ? nullptr : &filter);
    // On the host, the many top-k and fold calls of the scaling run in parallel without GPU syncs;
    // they select exactly what they would on the device (deterministic ties, the same values).
    a.column = a.column.cpu();
    a.distance = a.distance.cpu();
    return profiles_[key] = std::move(a);
  }

  ResolvedPattern resolve(const PatternParams& p, BoundaryKind boundary, Modality rows, int keys) {
    ResolvedPattern r{p, {}};
    if (p.kind == PatternKind::kVerticalSlash) {
      const AttentionProfile& a = profile(window_for(layout_, boundary, rows, p.last_q), keys);
      r.index.verticals = top_k_forced(a.column, p.n_vertical, kForcedColumns);
      r.index.slashes = top_k_forced(a.distance, p.n_slash, kForcedDistances);
    } else if (p.kind == PatternKind::kGrid && layout_.has_visual()) {
      const GridEstimate g =
          estimate_grid(layout_, profile(window_for(layout_, boundary, rows, p.last_q), keys).column, p.strides);
      r.index.stride = g.stride;
      r.index.phase = g.phase;
    }
    return r;
  }

  ResolvedHead resolve(const HeadConfig& config) {
    ResolvedHead out;
    out.boundary = config.boundary;
    const std::vector<Modality> present = layout_.modalities();
    switch (config.boundary) {
      case BoundaryKind::kNone:
      case BoundaryKind::kK:
        out.patterns[0][0] = resolve(config.patterns[0][0], config.boundary, Modality::kText, kAll);
        break;
      case BoundaryKind::kQ:
        for (Modality m : present) {
          out.patterns[int(m)][0] = resolve(config.patterns[int(m)][0], config.boundary, m, kAll);
        }
        break;
      case BoundaryKind::k2D:
        for (Modality m : present) {
          for (Modality n : present) {
            out.patterns[int(m)][int(n)] =
                resolve(config.patterns[int(m)][int(n)], config.boundary, m, int(n));
          }
        }
        break;
    }
    return out;
  }

  // ---- regions, plans and costs ----------------------------------------------------------------

  // `p` over the region; elsewhere the cheapest pattern (the diagonal), whose passes are dropped.
  static HeadConfig in_region(const PatternParams& p, Region r) {
    if (r.whole()) return uniform_head(p);
    HeadConfig config = uniform_head(a_shape(0, 1), BoundaryKind::k2D);
    config.patterns[r.rows][r.keys] = p;
    return config;
  }

  // The passes of a 2D-boundary plan cover one quadrant each (rows of one modality, keys of one
  // modality), so a quadrant's plan is the passes whose first row and first key are in it.
  bool in_region(const Pass& pass, Region r) const {
    return int(layout_.modality_at(pass.rows.to_orig(0))) == r.rows &&
           int(layout_.modality_at(pass.cols.to_orig(0))) == r.keys;
  }

  SparsePlan region_plan(const std::vector<ResolvedHead>& heads, Region r) const {
    SparsePlan plan = build_plan(layout_, heads);
    if (r.whole()) return plan;
    for (HeadPlan& head : plan.heads) {
      auto& passes = head.passes;
      passes.erase(std::remove_if(passes.begin(), passes.end(),
                                  [&](const Pass& pass) { return !in_region(pass, r); }),
                   passes.end());
    }
    return plan;
  }

  // Computed elements (tiles x 128 x 64) of the config's plan over the region.
  int64_t cost(const HeadConfig& config, Region r) {
    const ResolvedHead resolved = resolve(config);
    // Vertical-Slash indices are not spelled out by describe_resolved (and depend on the head);
    // every other resolved pattern is, so its cost depends on the description and layout alone.
    const std::string key =
        has_vertical_slash(config) ? "" : r.key() + "|" + describe_resolved(resolved, layout_);
    if (!key.empty()) {
      const std::lock_guard<std::mutex> lock(cost_memo_mutex_);
      auto it = cost_memo_.find(key);
      if (it != cost_memo_.end()) return it->second;
    }
    const int64_t c = plan_stats(region_plan({resolved}, r), false).computed_elements;
    if (!key.empty()) {
      const std::lock_guard<std::mutex> lock(cost_memo_mutex_);
      cost_memo_[key] = c;
    }
    return c;
  }

  // The budget of a region: the budget's A-shape over it, or dense when that is cheaper.
  double target_cost(Region r) {
    const PatternParams budget = a_shape(options_.budget_sink, options_.budget_local);
    return static_cast<double>(
        std::min(cost(in_region(budget, r), r), cost(in_region(dense(), r), r)));
  }

  // `config` with the sizes of the region's pattern (a quadrant's, or every cell of a whole-head
  // config) times x.
  HeadConfig scaled(HeadConfig config, Region r, double x) const {
    const int64_t n = layout_.length();
    if (!r.whole()) {
      PatternParams& p = config.patterns[r.rows][r.keys];
      p = scale_pattern(p, x, n);
      return config;
    }
    for (auto& row : config.patterns) {
      for (PatternParams& p : row) p = scale_pattern(p, x, n);
    }
    return config;
  }

  double saturation(const HeadConfig& config, Region r) const {
    const int64_t n = layout_.length();
    if (!r.whole()) return pattern_saturation(config.patterns[r.rows][r.keys], n);
    double x = 0.0;
    for (const auto& row : config.patterns) {
      for (const PatternParams& p : row) x = std::max(x, pattern_saturation(p, n));
    }
    return x;
  }

  struct Probe {
    double x;  // size factor
    HeadConfig config;
    int64_t cost;
  };

  Probe probe(const HeadConfig& base, Region r, double x) {
    HeadConfig config = scaled(base, r, x);
    const int64_t c = cost(config, r);
    return Probe{x, std::move(config), c};
  }

  // Scales every size of `base` by one factor x so that its cost over the region matches the
  // budget: the largest x (to kFactorPrecision) whose cost is not above the budget, or the next
  // size up when a tile step leaves that below the band and the next size is within it. Empty when
  // even the smallest sizes cost more than the band allows.
  std::optional<Scored> equalise(const HeadConfig& base, Region r) {
    const double target = target_cost(r);
    const double upper = (1.0 + options_.tolerance) * target;
    const double lower = (1.0 - options_.tolerance) * target;
    Probe hi = probe(base, r, saturation(base, r));
    if (hi.cost <= target) return Scored{hi.config, 0.0, hi.cost};  // it cannot grow further
    Probe lo = probe(base, r, 0.0);
    if (lo.cost > upper) return std::nullopt;
    if (lo.cost > target) return Scored{lo.config, 0.0, lo.cost};
    narrow(base, r, target, lo, hi);
    const Probe& best = lo.cost < lower && hi.cost <= upper ? hi : lo;
    return Scored{best.config, 0.0, best.cost};
  }

  // Shrinks the bracket lo.cost <= target < hi.cost around the budget. Costs are nearly affine in
  // x, so secant steps find the budget in a few plans; each is followed by a step of the precision
  // toward the other end of the bracket, which closes it when the secant landed close. Bisection
  // steps in between (geometric once away from 0) guarantee progress where the cost is flat (tile
  // steps, forced Vertical-Slash indices).
  void narrow(const HeadConfig& base, Region r, double target, Probe& lo, Probe& hi) {
    auto step_to = [&](double x) {  // false when x is outside the open bracket
      if (!(x > lo.x && x < hi.x)) return false;
      const std::string key = config_key(scaled(base, r, x));
      if (key == config_key(lo.config)) {
        lo.x = x;  // the same sizes: nothing new to measure
      } else if (key == config_key(hi.config)) {
        hi.x = x;
      } else {
        Probe p = probe(base, r, x);
        (p.cost > target ? hi : lo) = std::move(p);
      }
      return true;
    };
    const double grow = 1.0 + kFactorPrecision;
    for (int step = 0; step < kMaxSecantSteps && hi.x > std::max(lo.x * grow, kMinFactor); ++step) {
      const bool bisect = step % 2 == 1;
      double x;
      if (step == 0 && lo.x < 1.0 && hi.x > 1.0) {
        x = 1.0;  // the table's own sizes first
      } else if (bisect) {
        x = lo.x > 0 ? std::sqrt(lo.x * hi.x) : hi.x / 8;
      } else {
        const double secant =
            lo.x + (target - lo.cost) * (hi.x - lo.x) / static_cast<double>(hi.cost - lo.cost);
        x = std::min(std::max(secant, lo.x * grow), hi.x / grow);
      }
      if (step_to(x) && !bisect) step_to(lo.x == x ? x * grow : x / grow);
    }
  }

  // ---- errors against dense -------------------------------------------------------------------

  // out: [N, heads, D] for a plan whose query heads all read this head's q, k, v.
  at::Tensor execute(const SparsePlan& plan) const {
    const int64_t heads = static_cast<int64_t>(plan.heads.size());
    const at::Tensor q = exec_q_.expand({exec_q_.size(0), heads, exec_q_.size(2)});
    return use_cuda_ ? execute_plan_cuda(plan, q, exec_k_, exec_v_).out
                     : execute_plan_cpu(plan, q, exec_k_, exec_v_).out;
  }

  // The region's rows of out: [N, H, D] -> [R, H, D] fp32.
  at::Tensor region_rows(const at::Tensor& out, Region r) const {
    if (r.whole()) return out.to(at::kFloat);
    std::vector<int64_t> rows;
    for (int s : layout_.spans_of(static_cast<Modality>(r.rows))) {
      for (int64_t i = layout_.span(s).start; i < layout_.span(s).end(); ++i) rows.push_back(i);
    }
    const at::Tensor index = at::tensor(rows, at::kLong).to(out.device());
    return out.index_select(0, index).to(at::kFloat);
  }

  // Dense attention restricted to the region: [R, 1, D] fp32, by the same executor.
  const at::Tensor& reference(Region r) {
    auto it = references_.find(r.key());
    if (it != references_.end()) return it->second;
    const SparsePlan plan = region_plan({resolve(in_region(dense(), r))}, r);
    return references_[r.key()] = region_rows(execute(plan), r);
  }

  // Relative Frobenius errors of each config's output over the region against dense.
  std::vector<double> errors(const std::vector<HeadConfig>& configs, Region r) {
    const at::Tensor& ref = reference(r);
    const double ref_norm = std::max(ref.square().sum(at::kDouble).sqrt().item<double>(), 1e-30);
    std::vector<double> out;
    const size_t batch = static_cast<size_t>(std::max<int64_t>(1, options_.max_batch));
    for (size_t b = 0; b < configs.size(); b += batch) {
      std::vector<ResolvedHead> heads;
      for (size_t c = b; c < std::min(configs.size(), b + batch); ++c) {
        heads.push_back(resolve(configs[c]));
      }
      const at::Tensor o = region_rows(execute(region_plan(heads, r)), r);  // [R, C, D]
      const at::Tensor norms =
          (o - ref).square().sum(at::IntArrayRef{0, 2}, false, at::kDouble).sqrt().cpu();
      for (int64_t c = 0; c < norms.size(0); ++c) out.push_back(norms[c].item<double>() / ref_norm);
    }
    return out;
  }

  // Fills in the errors of scored candidates over the region.
  void score(std::vector<Scored>& scored, Region r) {
    std::vector<HeadConfig> configs;
    for (const Scored& s : scored) configs.push_back(s.config);
    const std::vector<double> errs = errors(configs, r);
    for (size_t c = 0; c < scored.size(); ++c) scored[c].error = errs[c];
  }

  // The first of the least error: a later candidate must beat it by more than the tie margin and
  // the relative margin.
  size_t pick(const std::vector<Scored>& scored, double relative_margin = 0.0) const {
    size_t best = 0;
    for (size_t c = 1; c < scored.size(); ++c) {
      if (scored[c].error < scored[best].error * (1.0 - relative_margin) - tie_margin_) best = c;
    }
    return best;
  }

  // Every candidate scaled to the region's budget, duplicates (same resolved plan) dropped, scored.
  std::optional<Scored> sweep(Region r) {
    const std::vector<PatternParams> patterns =
        candidate_patterns(searched_stride(r), options_.last_q);
    // Scaling builds several plans per candidate on the host, candidates in parallel. Workers take
    // the next candidate as they finish (costs differ widely) and inherit the caller's inference
    // mode (thread-local).
    const int64_t count = static_cast<int64_t>(patterns.size());
    std::vector<std::optional<Scored>> equalised(count);
    std::atomic<int64_t> next{0};
    const bool inference = at::InferenceMode::is_enabled();
    at::parallel_for(0, std::min<int64_t>(count, at::get_num_threads()), 1, [&](int64_t, int64_t) {
      const at::InferenceMode mode(inference);
      for (int64_t c = next++; c < count; c = next++) {
        equalised[c] = equalise(in_region(patterns[c], r), r);
      }
    });
    std::vector<Scored> scaled_candidates;
    std::set<std::string> seen;
    for (std::optional<Scored>& s : equalised) {
      if (!s || !seen.insert(describe_resolved(resolve(s->config), layout_)).second) continue;
      scaled_candidates.push_back(std::move(*s));
    }
    if (scaled_candidates.empty()) return std::nullopt;
    score(scaled_candidates, r);
    return scaled_candidates[pick(scaled_candidates)];
  }

  int64_t searched_stride(Region r) {
    if (!layout_.has_visual() || options_.max_stride < 2) return 0;
    const QueryWindow w = r.whole() ? window_for(layout_, BoundaryKind::kNone, Modality::kText, options_.last_q)
                                    : window_for(layout_, BoundaryKind::k2D, Modality(r.rows), options_.last_q);
    const at::Tensor mass = profile(w, r.keys).column.to(at::kDouble).cpu().contiguous();
    const double* data = mass.data_ptr<double>();
    return periodic_stride(layout_, std::vector<double>(data, data + mass.numel()),
                           options_.max_stride);
  }

  // Stage (a) or (b): the winner for one quadrant. A quadrant without causal elements on this input
  // gets the budget's A-shape, so that other inputs that do reach it stay within the budget.
  PatternParams quadrant_winner(Region r) {
    std::optional<Scored> s;
    if (cost(in_region(dense(), r), r) > 0) s = sweep(r);
    return s ? s->config.patterns[r.rows][r.keys]
             : a_shape(options_.budget_sink, options_.budget_local);
  }

  // Stage (c): the Q- and 2D-boundary compositions of the quadrant winners, equalised as a whole.
  std::vector<Scored> compositions() {
    const std::vector<Modality> present = layout_.modalities();
    std::array<std::array<PatternParams, kNumModalities>, kNumModalities> cell;
    for (Modality m : present) {
      for (Modality n : present) cell[int(m)][int(n)] = quadrant_winner(Region{int(m), int(n)});
    }
    const PatternParams& base = cell[int(present[0])][int(present[0])];
    HeadConfig q = uniform_head(base, BoundaryKind::kQ);
    HeadConfig two_d = uniform_head(base, BoundaryKind::k2D);
    for (Modality m : present) {
      q.patterns[int(m)][0] = cell[int(m)][int(m)];
      for (Modality n : present) two_d.patterns[int(m)][int(n)] = cell[int(m)][int(n)];
    }
    std::vector<Scored> out;
    for (const HeadConfig& config : {q, two_d}) {
      if (std::optional<Scored> s = equalise(config, Region{})) out.push_back(std::move(*s));
    }
    return out;
  }

  const SequenceLayout& layout_;
  at::Tensor q_, k_;                     // estimation inputs, on the caller's device
  at::Tensor exec_q_, exec_k_, exec_v_;  // executor inputs
  bool use_cuda_ = false;
  double tie_margin_ = 0.0;
  const SearchOptions& options_;
  std::map<std::string, int64_t>& cost_memo_;
  std::map<std::tuple<int64_t, int64_t, int>, AttentionProfile> profiles_;
  std::map<std::string, at::Tensor> references_;
  std::mutex profiles_mutex_, cost_memo_mutex_;
};

HeadChoice HeadSearch::run() {
  const Region whole;
  std::optional<Scored> single = sweep(whole);  // never empty: A-shape always fits the budget
  if (!single) throw std::logic_error("search: no candidate fits the budget");
  std::vector<Scored> finalists = {*single};  // in order: none, then q and 2d
  if (layout_.modalities().size() > 1) {
    std::vector<Scored> composed = compositions();
    score(composed, whole);
    finalists.insert(finalists.end(), composed.begin(), composed.end());
  }
  const Scored& best = finalists[pick(finalists, options_.boundary_margin)];
  PlanStats stats;
  stats.causal_elements = layout_.length() * (layout_.length() + 1) / 2;
  stats.computed_elements = best.cost;
  return HeadChoice{best.config, best.error, stats.flops_ratio(layout_.length()),
                    describe_resolved(resolve(best.config), layout_)};
}

void validate(const SearchOptions& o) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("search: " + what);
  };
  require(o.budget_sink >= 0, "budget sink must be >= 0");
  require(o.budget_local >= 1, "budget local window must be >= 1");
  require(o.tolerance > 0 && o.tolerance < 1, "tolerance must be in (0, 1)");
  require(o.last_q >= 1, "last_q must be >= 1");
  require(o.max_batch >= 1, "max_batch must be >= 1");
  require(o.boundary_margin >= 0 && o.boundary_margin < 1, "boundary margin must be in [0, 1)");
}

// ---- the pattern table --------------------------------------------------------------------------

void emit_params(YAML::Emitter& e, const PatternParams& p) {
  e << YAML::Key << "pattern" << YAML::Value << pattern_name(p.kind);
  auto field = [&e](const char* key, int64_t value) {
    e << YAML::Key << key << YAML::Value << value;
  };
  switch (p.kind) {
    case PatternKind::kDense:
      break;
    case PatternKind::kTriShape:
      field("last_rows", p.last_rows);
      [[fallthrough]];
    case PatternKind::kAShape:
      field("sink", p.sink);
      field("local", p.local);
      break;
    case PatternKind::kSfFixed:
      field("block_head", p.block_head);
      [[fallthrough]];
    case PatternKind::kSfStrided:
      field("block", p.block);
      break;
    case PatternKind::kVerticalSlash:
      field("n_vertical", p.n_vertical);
      field("n_slash", p.n_slash);
      field("last_q", p.last_q);
      break;
    case PatternKind::kGrid:
      e << YAML::Key << "strides" << YAML::Value << YAML::Flow << p.strides;
      e << YAML::Key << "lines" << YAML::Value
        << std::string(p.vline ? "v" : "") + (p.hline ? "h" : "") + (p.slash ? "s" : "");
      field("local", p.grid_local);
      field("last_q", p.last_q);
      break;
  }
}

void emit_flow_params(YAML::Emitter& e, const PatternParams& p) {
  e << YAML::Flow << YAML::BeginMap;
  emit_params(e, p);
  e << YAML::EndMap;
}

// The cells a Q- or 2D-boundary head reads that differ from its base pattern (written under
// `patterns:`; the loader fills every other cell with the base), keyed as the loader expects.
std::vector<std::pair<std::string, PatternParams>> distinct_cells(const HeadConfig& config) {
  std::vector<std::pair<std::string, PatternParams>> out;
  const std::string base = config.patterns[0][0].describe();
  for (int m = 0; m < kNumModalities; ++m) {
    const char* rows = modality_name(static_cast<Modality>(m));
    if (config.boundary == BoundaryKind::kQ) {
      if (config.patterns[m][0].describe() != base) out.emplace_back(rows, config.patterns[m][0]);
      continue;
    }
    for (int n = 0; n < kNumModalities; ++n) {
      if (config.patterns[m][n].describe() == base) continue;
      out.emplace_back(std::string(rows) + "->" + modality_name(static_cast<Modality>(n)),
                       config.patterns[m][n]);
    }
  }
  return out;
}

void emit_head(YAML::Emitter& e, const HeadChoice& choice) {
  const HeadConfig& config = choice.config;
  const bool split = config.boundary == BoundaryKind::kQ || config.boundary == BoundaryKind::k2D;
  const auto cells = split ? distinct_cells(config) : decltype(distinct_cells(config)){};
  if (cells.empty()) e << YAML::Flow;  // one line per head unless it lists patterns
  e << YAML::BeginMap;
  emit_params(e, config.patterns[0][0]);
  e << YAML::Key << "boundary" << YAML::Value << boundary_name(config.boundary);
  if (!cells.empty()) {
    e << YAML::Key << "patterns" << YAML::Value << YAML::BeginMap;
    for (const auto& [key, params] : cells) {
      e << YAML::Key << key << YAML::Value;
      emit_flow_params(e, params);
    }
    e << YAML::EndMap;
  }
  e << YAML::Key << "score" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "error"
    << YAML::Value << choice.error << YAML::Key << "flops" << YAML::Value << choice.flops_ratio
    << YAML::EndMap;
  e << YAML::EndMap;
}

}  // namespace

std::vector<HeadChoice> search_layer(const SequenceLayout& layout, const at::Tensor& q,
                                     const at::Tensor& k, const at::Tensor& v,
                                     const SearchOptions& options) {
  check_attention_inputs(q, k, v, "search_layer");
  if (q.size(0) != layout.length()) {
    throw std::invalid_argument("search_layer: " + std::to_string(q.size(0)) +
                                " tokens but the layout has " + std::to_string(layout.length()));
  }
  validate(options);
  const int64_t group = q.size(1) / k.size(1);
  std::map<std::string, int64_t> cost_memo;  // layout-only costs, shared by the layer's heads
  std::vector<HeadChoice> out;
  for (int64_t h = 0; h < q.size(1); ++h) {
    const int64_t kv = h / group;
    HeadSearch search(layout, q.narrow(1, h, 1), k.narrow(1, kv, 1), v.narrow(1, kv, 1), options,
                      cost_memo);
    out.push_back(search.run());
    if (options.on_head) options.on_head(h, out.back());
  }
  return out;
}

void write_pattern_table(const std::string& path, const std::string& model,
                         const std::string& calibration, const SearchOptions& options,
                         const std::vector<std::vector<HeadChoice>>& layers) {
  YAML::Emitter e;
  e.SetDoublePrecision(4);
  e << YAML::Comment(
      "Written by `mmi search`: per layer and head, the pattern and boundary kind with the least\n"
      "attention-output error against dense on the calibration sample, every candidate scaled to "
      "the\n"
      "budget's computed-tile FLOPs. score.error: relative Frobenius error of the head's output;\n"
      "score.flops: computed-tile FLOPs / dense causal FLOPs. Heads not searched use `default`.");
  e << YAML::BeginMap;
  e << YAML::Key << "model" << YAML::Value << model;
  e << YAML::Key << "calibration" << YAML::Value << calibration;
  e << YAML::Key << "budget" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "sink"
    << YAML::Value << options.budget_sink << YAML::Key << "local" << YAML::Value
    << options.budget_local << YAML::Key << "tolerance" << YAML::Value << options.tolerance
    << YAML::EndMap;
  e << YAML::Key << "default" << YAML::Value;
  emit_flow_params(e, a_shape(options.budget_sink, options.budget_local));
  e << YAML::Key << "layers" << YAML::Value << YAML::BeginMap;
  for (size_t l = 0; l < layers.size(); ++l) {
    if (layers[l].empty()) continue;
    e << YAML::Key << l << YAML::Value << YAML::BeginMap;
    for (size_t h = 0; h < layers[l].size(); ++h) {
      e << YAML::Key << h << YAML::Value;
      emit_head(e, layers[l][h]);
    }
    e << YAML::EndMap;
  }
  e << YAML::EndMap << YAML::EndMap;
  if (!e.good()) throw std::logic_error("write_pattern_table: " + e.GetLastError());
  std::ofstream file(path);
  file << e.c_str() << "\n";
  if (!file) throw std::runtime_error("write_pattern_table: cannot write " + path);
}

}  // namespace mmi
