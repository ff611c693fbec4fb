// Offline modality-aware pattern search (SPEC §4, MMInference Algorithm 4): for every head of a
// layer, the pattern and boundary kind that best preserve the attention output of a calibration
// sample at a fixed cost, written as a PatternTable (configs/patterns/*.yaml) for `mminference`.
//
// Per head, three stages, each scored by the relative Frobenius error of the head's output (V
// included) against dense, computed by the real executors over the candidates' plans (tile by
// tile, never an N x N matrix):
//  (a) intra-modality: for each modality m, the best candidate for rows of m attending to keys
//      of m (attention restricted to that quadrant, causality on original positions);
//  (b) cross-modality: for each ordered pair (m, n), m != n, the best candidate for rows of m
//      attending to keys of n;
//  (c) inter-modality: the boundary kind of least whole-head error, in the order none, q, 2d (a
//      later kind must win by SearchOptions::boundary_margin): none is the best single pattern of
//      its own sweep over the whole head, q gives rows of m (a)'s winner for m, 2d gives quadrant
//      (m, n) the winner of (a) or (b). A K-boundary head runs exactly the plan of a no-boundary
//      head with the same pattern, so it is no distinct candidate; the search writes `none`.
// Candidates (paper Table 4): A-shape (sink, local) in {(128,1024), (128,2048), (128,4096)}; grid
// with the frame stride and with a stride searched per head (<= max_stride), each with every
// non-empty combination of vertical, horizontal and slash lines; Vertical-Slash with the nine
// (n_v, n_s) pairs. Each candidate is first scaled to the budget: its size parameters (A-shape sink
// and local together, Vertical-Slash n_v and n_s together, the grid's local window) are multiplied
// by one factor, searched so that the computed-tile FLOPs of its plan over the scored region come
// within `tolerance` of the budget (A-shape(budget_sink, budget_local) over the same region, or
// dense when that is cheaper); (c)'s compositions are scaled as wholes over the whole head. A
// candidate that exceeds the band even at its smallest sizes is dropped.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/layout.h"
#include "kernels/pattern.h"

namespace mmi {

// One head's outcome.
struct HeadChoice {
  HeadConfig config;         // the boundary kind and pattern(s), as PatternTable stores them
  double error = 0.0;        // relative Frobenius error of the head's output against dense
  double flops_ratio = 0.0;  // computed-tile FLOPs of the plan / dense causal FLOPs (2 N^2 d)
  std::string describe;      // the resolved pattern(s) on the calibration sample
};

struct SearchOptions {
  // The budget: computed-tile FLOPs of A-shape(budget_sink, budget_local) over each scored region.
  int64_t budget_sink = 1024;
  int64_t budget_local = 4096;
  double tolerance = 0.10;    // a scaled candidate's cost lies in [1 - tol, 1 + tol] x budget
  int64_t max_stride = 1024;  // the searched grid stride is in [2, max_stride]
  int64_t last_q = 64;        // estimation window of the Vertical-Slash and grid candidates
  int64_t max_batch = 16;     // candidates executed together (as the query heads of one plan)
  // Stage (c) keeps the simpler kind (none before q before 2d) unless a later one reduces the error
  // by more than this fraction: Q- and 2D-boundary heads estimate an index per modality (quadrant),
  // a cost the computed-tile FLOPs do not count, for gains that are otherwise within noise.
  double boundary_margin = 0.01;
  // Errors closer than this count as ties (the earlier candidate wins); < 0: by dtype, 1e-3 for
  // bf16/fp16 inputs (their outputs are rounded to 8-11 bits) and 1e-6 otherwise.
  double tie_margin = -1.0;
  // Called after each head of search_layer with the head index and its choice (progress).
  std::function<void(int64_t head, const HeadChoice& choice)> on_head;
};

// Searches every query head of one layer. q: [N, Hq, D], k, v: [N, Hkv, D] (post-RoPE, one float
// dtype, one device; N = layout.length()); query head h reads KV head h / (Hq / Hkv), never
// expanded. On a GPU with bf16/fp16 inputs the candidates run on the CUDA executor, otherwise on
// the CPU executor. Deterministic for identical inputs. Returns one choice per query head.
std::vector<HeadChoice> search_layer(const SequenceLayout& layout, const at::Tensor& q,
                                     const at::Tensor& k, const at::Tensor& v,
                                     const SearchOptions& options);

// Writes the PatternTable YAML of a search: provenance (model, calibration, budget), a `default:`
// for heads not searched (the budget's A-shape), and per layer and head the pattern, its
// parameters, the boundary kind and `score: {error, flops}`. layers[l] holds layer l's heads; empty
// layers are left out. PatternTable::load of the file gives back the same HeadConfigs. The folder
// must exist. Throws std::runtime_error when the file cannot be written.
void write_pattern_table(const std::string& path, const std::string& model,
                         const std::string& calibration, const SearchOptions& options,
                         const std::vector<std::vector<HeadChoice>>& layers);

}  // namespace mmi
