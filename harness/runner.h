// `mmi run`: executes a sweep (models x methods x tasks x context settings) and records one row per
// sample into the SQLite store as each finishes. A model loads once, a task's samples are built once
// per model, and each sample's vision embeddings are computed once and shared by every method. A failure
// (bad input, out of memory, an error in a method) becomes a failed row and the sweep goes on.
#pragma once

#include <string>

#include "harness/sweep.h"

namespace mmi {

struct RunOptions {
  std::string database;     // default: the sweep's `output`
  bool resume = false;      // skip (case, sample) pairs already recorded ok
  int shard_index = 0;      // run every shard_count-th case starting at shard_index
  int shard_count = 1;
  bool dry_run = false;     // list the cases with token and time estimates; run nothing
  std::string cache_dir = "results/cache";
  std::string html;         // write the HTML report here at the end ("" = none)
};

// Returns the number of failed samples (0 when everything was scored).
int64_t run_sweep(const Sweep& sweep, const RunOptions& options);

}  // namespace mmi
