// Turns resolved per-head patterns into a SparsePlan (SPEC §2–3). Torch-free.
#pragma once

#include <vector>

#include "kernels/layout.h"
#include "kernels/pattern.h"
#include "kernels/plan.h"

namespace mmi {

struct PlanOptions {
  int64_t block_m = 128;  // query tile (the CUDA executor's tile)
  int64_t block_n = 64;  // key chunk
  // Passes over one consecutive row range and one consecutive column range whose tiles' work has a
  // closed form store no per-tile lists (Pass::form): Vertical-Slash passes keep only their vertical
  // and slash lists, passes of ranges (A-shape, Tri-shape, dense, the grid's sinks and local window)
  // only their rule. false lists every tile's runs and columns.
  bool compact_passes = true;
};

// heads[h] is query head h's resolved patterns. The plan's kept elements equal head_keeps() exactly.
SparsePlan build_plan(const SequenceLayout& layout, const std::vector<ResolvedHead>& heads,
                      const PlanOptions& options = {});

// Human-readable form of one resolved pattern, e.g. "grid(stride=64,phase=3,lines=v,local=1024)".
std::string describe_resolved(const ResolvedPattern& pattern);
std::string describe_resolved(const ResolvedHead& head, const SequenceLayout& layout);

}  // namespace mmi
