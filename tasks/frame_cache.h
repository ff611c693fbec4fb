// An on-disk cache of decoded frames, so that a sweep decodes each (video, sampling) once and dense and
// sparse runs see identical pixels. Entries are keyed by the file's identity (absolute path, size,
// modification time) and the exact timestamps; a changed file or sampling is a new entry.
#pragma once

#include <string>
#include <vector>

#include "tasks/video.h"

namespace mmi {

class FrameCache {
 public:
  explicit FrameCache(std::string directory);  // created when missing

  // The frames of `path` at `timestamps` (ascending), decoded on a miss and stored. An unreadable or
  // damaged entry is decoded again and replaced.
  std::vector<VideoFrame> frames(const std::string& path, const std::vector<double>& timestamps);

  // Where the entry for this file and sampling lives (whether or not it exists yet).
  std::string entry_path(const std::string& path, const std::vector<double>& timestamps) const;

  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }

 private:
  std::string directory_;
  int64_t hits_ = 0, misses_ = 0;
};

// The first `count` frames of a haystack video at 1 fps (how the NIAH tasks and the generated Video-QA
// sample it), through `cache`. Throws VideoError naming the file and `needed_by` (e.g. "the V-NIAH
// grid") when the video is shorter than `count` seconds.
std::vector<VideoFrame> haystack_frames(FrameCache& cache, const std::string& video, int64_t count,
                                        const std::string& needed_by);

}  // namespace mmi
