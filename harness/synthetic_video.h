// The video a command works on: a file, or a clip generated in memory for machines without video
// decoding (the GPU machine has no FFmpeg): a bright square crossing a gradient, 2 frames per second.
#pragma once

#include <string>
#include <vector>

#include "tasks/video.h"

namespace mmi {

// spec: "FRAMESxHEIGHTxWIDTH" (sides >= 28); UsageError naming it otherwise.
std::vector<VideoFrame> synthetic_video(const std::string& spec);

// The clip a command was given: synthetic_video(synthetic) when that is not empty, else the file at
// `path` sampled as Qwen2.5-VL's reference utilities do (2 fps, an even count of 4 to 768 frames) or,
// when frames > 0, exactly `frames` uniform frames. Builds without video decoding take only synthetic
// clips and say so.
std::vector<VideoFrame> command_video(const std::string& path, const std::string& synthetic, int64_t frames);

}  // namespace mmi
