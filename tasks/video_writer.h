// Writing generated videos with FFmpeg's encoders: the media of the tests and the quickstart, made on
// the machine (no downloads). Frame k shows moving content and carries k as a row of black and white
// blocks, so a decoder's output can be checked frame by frame.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tasks/video.h"

namespace mmi {

struct VideoWriteOptions {
  int width = 128;   // even; the index code uses the top quarter
  int height = 96;
  int fps = 10;
  int64_t frames = 50;
  std::string encoder = "libx264";  // any FFmpeg video encoder, e.g. mpeg4, libvpx-vp9
  int keyframe_interval = 12;       // so that seeking has to decode from a keyframe
};

// The RGB image (height x width x 3) of generated frame k.
std::vector<uint8_t> generated_frame(const VideoWriteOptions& options, int64_t k);

// Encodes generated_frame(0..frames-1) into `path` (container from the extension: .mp4, .mkv, .avi,
// .webm). Throws VideoError naming the file.
void write_generated_video(const std::string& path, const VideoWriteOptions& options);

// The frame index carried by a decoded generated frame (16 bits).
int64_t read_frame_index(const VideoFrame& frame);

}  // namespace mmi
