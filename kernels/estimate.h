// Online index estimation from the last queries (SPEC §2–3), without materialising N×N: vertical and
// slash top-k for Vertical-Slash heads, stride and phase for grid heads, per modality for Q-/2D-
// boundary heads. Works on CPU or CUDA tensors; the results are host vectors.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

#include "kernels/layout.h"
#include "kernels/pattern.h"

namespace mmi {

// The last `count` queries ending (exclusively) at `end`; they see keys [0, end).
struct QueryWindow {
  int64_t end = 0;
  int64_t count = 0;
};

// The window a pattern for rows of modality `rows` estimates from: the last `last_q` rows of the
// sequence, or with Q- and 2D-boundaries, of the modality's last span.
QueryWindow window_for(const SequenceLayout& layout, BoundaryKind boundary, Modality rows, int64_t last_q);
// A profile's key filter for the keys of one modality: 1 at its positions, 0 elsewhere ([N]).
std::vector<uint8_t> modality_filter(const SequenceLayout& layout, int key_modality);

// Softmax attention of the window's queries, summed per key column and per distance i - j. fp64, on
// the device of the inputs (estimation never leaves the GPU until the chosen indices are known).
struct AttentionProfile {
  at::Tensor column;    // [end] ([H, end] for several heads): sum over window rows of A[i, j]
  at::Tensor distance;  // [end] ([H, end]): sum over window rows of A[i, i - d]; undefined unless requested
};

// q: [N, Hq, D], k: [N, Hkv, D]; query head `head` reads KV head head / (Hq / Hkv).
// key_filter (optional, [N], nonzero = counted) restricts the sums to some keys (2D-boundary quadrants);
// the softmax itself always runs over every causal key. Keys are processed in chunks: memory O(N).
// On the GPU two fused kernels compute it (kernels/cuda/window_profile.cuh: fp32 scores, on tensor cores
// for bf16/fp16 with D a multiple of 16; fp64 sums).
AttentionProfile last_query_profile(const at::Tensor& q, const at::Tensor& k, int64_t head,
                                    const QueryWindow& window,
                                    const std::vector<uint8_t>* key_filter = nullptr, bool distances = true);
// The profiles of several query heads over one window: row x of column and distance ([H, end] each)
// belongs to heads[x]. On the GPU all heads share two launches, and the heads of one KV head read its
// keys from L2 rather than memory.
AttentionProfile last_query_profiles(const at::Tensor& q, const at::Tensor& k, const std::vector<int64_t>& heads,
                                     const QueryWindow& window,
                                     const std::vector<uint8_t>* key_filter = nullptr, bool distances = true);
// The same as last_query_profile with ATen operations on the inputs' device, in key chunks: the CPU
// path, and on the GPU the reference the fused kernels are tested and benchmarked against.
AttentionProfile last_query_profile_aten(const at::Tensor& q, const at::Tensor& k, int64_t head,
                                         const QueryWindow& window,
                                         const std::vector<uint8_t>* key_filter = nullptr, bool distances = true);

// Indices of the `k` largest positive scores ([n] tensor, any device), always including [0, forced)
// (which count toward k), ascending. Ties go to the lower index, so the result is deterministic.
std::vector<int64_t> top_k_forced(const at::Tensor& scores, int64_t k, int64_t forced);

struct GridEstimate {
  int64_t stride = 0;
  int64_t phase = 0;
  double lift = 0.0;  // mass at the chosen phase relative to a uniform spread over the stride's phases
};

// Folds the column mass of the visual positions modulo each candidate stride (0 = tokens per frame),
// over whole periods of every visual span, with phases relative to the span start. The best phase of a
// stride is the one holding the most mass; strides are compared by that mass times the stride (the lift
// over a uniform spread), because raw mass always favours the smallest stride, which simply has more
// lines. Ties go to the smaller stride.
// column_mass: [end] (any device), the column profile of the estimation window.
GridEstimate estimate_grid(const SequenceLayout& layout, const at::Tensor& column_mass,
                           const std::vector<int64_t>& candidate_strides);

// A layer's online estimation (last-query profiles, Vertical-Slash top-k, grid stride and phase)
// gathered across its heads and made together: profiles of one window and key set are computed for all
// their heads in one pair of launches, top-k requests of one shape are stacked into one batched
// selection, the grid folds of the heads sharing a profile launch are reduced together on the device,
// and everything comes to the host in one copy per shape, instead of several launches and host
// synchronisations per head.
class EstimateBatch {
 public:
  // Which sums of a scheduled profile a selection reads.
  struct ProfileSums {
    int profile;    // an id from add_profile
    bool distance;  // the distance sums (else the column sums)
  };

  // Schedules last_query_profile(q, k, head, window) with its sums restricted to the keys of modality
  // `key_modality` (every key if < 0); returns its id. An identical request returns the same id.
  // `layout`, q and k must stay valid until run().
  int add_profile(const SequenceLayout& layout, const at::Tensor& q, const at::Tensor& k, int64_t head,
                  const QueryWindow& window, int key_modality, bool distances);
  // Schedules *out = top_k_forced(scores, k, forced); `out` must stay valid until run().
  void add_top_k(const at::Tensor& scores, int64_t k, int64_t forced, std::vector<int64_t>* out);
  void add_top_k(ProfileSums scores, int64_t k, int64_t forced, std::vector<int64_t>* out);
  // Schedules out->stride, out->phase = estimate_grid(layout, column_mass, candidate_strides); `layout`
  // and `out` must stay valid until run().
  void add_grid(const SequenceLayout& layout, const at::Tensor& column_mass,
                const std::vector<int64_t>& candidate_strides, PatternIndex* out);
  // The same over a scheduled profile's column sums.
  void add_grid(const SequenceLayout& layout, int profile, const std::vector<int64_t>& candidate_strides,
                PatternIndex* out);
  void run();  // fills every scheduled output and clears the batch

  struct TopK {
    at::Tensor scores;  // undefined while `sums` names a profile not yet computed
    int64_t k, forced;
    std::vector<int64_t>* out;
    ProfileSums sums{-1, false};
  };

 private:
  struct Profile {
    const SequenceLayout* layout;
    at::Tensor q, k;
    int64_t head;
    QueryWindow window;
    int key_modality;
    bool distances;
    size_t launch = 0;  // set by run(): the batched profile holding this head, at row `row`
    int64_t row = 0;
  };
  struct Grid {
    const SequenceLayout* layout;
    std::vector<int64_t> candidates;
    at::Tensor mass;  // [end], or undefined when `profile` names a scheduled profile
    int profile;
    PatternIndex* out;
  };

  void run_profiles();
  void run_top_k();
  void run_grids();
  std::vector<Profile> profiles_;
  std::vector<AttentionProfile> launches_;  // [H, end] sums of each batched profile
  std::vector<TopK> top_k_;
  std::vector<Grid> grids_;
};

// Resolves every pattern a head uses: static patterns get their block lengths, Vertical-Slash and grid
// patterns their online index. q, k as in last_query_profile.
ResolvedHead resolve_head(const SequenceLayout& layout, const HeadConfig& config, const at::Tensor& q,
                          const at::Tensor& k, int64_t head);
// The same into `out`, with the Vertical-Slash and grid selections scheduled on `batch` (out's indices
// are filled by batch.run()).
void resolve_head(const SequenceLayout& layout, const HeadConfig& config, const at::Tensor& q,
                  const at::Tensor& k, int64_t head, EstimateBatch& batch, ResolvedHead& out);

}  // namespace mmi
