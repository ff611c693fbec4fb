// A generated clip made in memory, for runs on machines without video decoding (the GPU machine has no
// FFmpeg): a bright square crossing a gradient, 2 frames per second.
#pragma once

#include <string>
#include <vector>

#include "tasks/video.h"

namespace mmi {

// spec: "FRAMESxHEIGHTxWIDTH" (sides >= 28); UsageError naming it otherwise.
std::vector<VideoFrame> synthetic_video(const std::string& spec);

}  // namespace mmi
