// Video decoding for the tasks: probe a file, sample frames uniformly (by count or by frames per
// second) and decode them to RGB with accurate seeking. FFmpeg (libavformat/libavcodec/libswscale)
// stays inside video.cpp. Every failure throws VideoError naming the file and the problem.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace mmi {

struct VideoError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct VideoInfo {
  std::string path;
  std::string codec;        // e.g. "h264"
  int width = 0, height = 0;
  double fps = 0;           // average frame rate
  double duration_s = 0;    // of the video stream
  int64_t frame_count = 0;  // from the container when it says, else duration x fps rounded
};

// One decoded frame: rgb is height x width x 3, row-major, 8 bits per channel.
struct VideoFrame {
  double timestamp_s = 0;  // presentation time of the decoded frame
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

VideoInfo probe_video(const std::string& path);

// The timestamps (seconds) of `count` frames spread uniformly over the video: the centre of each of
// `count` equal segments, as Video-QA evaluations sample. count must be positive.
std::vector<double> uniform_timestamps(const VideoInfo& info, int64_t count);
// One timestamp every 1/fps seconds from 0 (the V-NIAH haystack samples 1 fps), at most max_frames.
std::vector<double> timestamps_at_fps(const VideoInfo& info, double fps, int64_t max_frames = INT64_MAX);

// Decodes the frame shown at each timestamp (the last frame presented at or before t, with half a
// frame period of tolerance for timestamps computed in floating point), seeking
// to the nearest earlier keyframe and decoding forward. Timestamps must ascend. Threads: libavcodec's.
std::vector<VideoFrame> decode_frames(const std::string& path, const std::vector<double>& timestamps);

}  // namespace mmi
