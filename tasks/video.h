// Video decoding for the tasks: probe a file, sample frames uniformly (by count or by frames per
// second) and decode them to RGB with accurate seeking. FFmpeg (libavformat/libavcodec/libswscale)
// stays inside video.cpp. Every failure throws VideoError naming the file and the problem.
#pragma once

#include <cstdint>
#include <memory>
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

// A frame's bytes, shared between copies: a haystack frame appears in every sample of a NIAH grid,
// and a long grid would otherwise hold (samples x frames) copies of it. Writing through a copy that
// shares its bytes detaches it first, so copies behave as values.
class FrameBytes {
 public:
  size_t size() const { return bytes_ ? bytes_->size() : 0; }
  bool empty() const { return size() == 0; }
  const uint8_t* data() const { return bytes_ ? bytes_->data() : nullptr; }
  uint8_t* data() { return own().data(); }
  uint8_t operator[](size_t i) const { return (*bytes_)[i]; }
  uint8_t& operator[](size_t i) { return own()[i]; }
  void resize(size_t n) { own().resize(n); }
  template <typename It>
  void assign(It first, It last) { own().assign(first, last); }
  void assign(size_t n, uint8_t value) { own().assign(n, value); }
  // The same bytes in memory (not merely equal ones): identifies one decoded frame across samples.
  const void* identity() const { return bytes_.get(); }
  const std::vector<uint8_t>& vector() const {
    static const std::vector<uint8_t> kEmpty;
    return bytes_ ? *bytes_ : kEmpty;
  }
  bool operator==(const FrameBytes& o) const { return bytes_ == o.bytes_ || vector() == o.vector(); }
  bool operator!=(const FrameBytes& o) const { return !(*this == o); }

 private:
  std::vector<uint8_t>& own() {
    if (!bytes_) {
      bytes_ = std::make_shared<std::vector<uint8_t>>();
    } else if (bytes_.use_count() > 1) {
      bytes_ = std::make_shared<std::vector<uint8_t>>(*bytes_);
    }
    return *bytes_;
  }
  std::shared_ptr<std::vector<uint8_t>> bytes_;
};

// One decoded frame: rgb is height x width x 3, row-major, 8 bits per channel.
struct VideoFrame {
  double timestamp_s = 0;  // presentation time of the decoded frame
  int width = 0, height = 0;
  FrameBytes rgb;
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
