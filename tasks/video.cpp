#include "tasks/video.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

namespace mmi {

namespace {

std::string av_error(int err) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, text, sizeof(text));
  return text;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) { throw VideoError(path + ": " + what); }

struct FormatCloser {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsFreer {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using FramePtr = std::unique_ptr<AVFrame, FrameFreer>;

// An opened video stream with its decoder; frames come out in presentation order.
class Decoder {
 public:
  explicit Decoder(const std::string& path) : path_(path) {
    av_log_set_level(AV_LOG_FATAL);  // failures reach the caller as VideoError; keep stderr clean
    AVFormatContext* format = nullptr;
    int err = avformat_open_input(&format, path.c_str(), nullptr, nullptr);
    if (err < 0) fail(path, "cannot open: " + av_error(err));
    format_.reset(format);
    if ((err = avformat_find_stream_info(format, nullptr)) < 0) fail(path, "cannot read the streams: " + av_error(err));
    const AVCodec* codec = nullptr;
    stream_index_ = av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (stream_index_ == AVERROR_STREAM_NOT_FOUND) fail(path, "has no video stream");
    if (stream_index_ < 0 || !codec) {
      fail(path, "no decoder for its video codec (" + std::string(avcodec_get_name(format->streams[0]->codecpar->codec_id)) + ")");
    }
    stream_ = format->streams[stream_index_];
    codec_.reset(avcodec_alloc_context3(codec));
    if (!codec_) fail(path, "out of memory allocating a decoder");
    if ((err = avcodec_parameters_to_context(codec_.get(), stream_->codecpar)) < 0) fail(path, "bad codec parameters: " + av_error(err));
    codec_->thread_count = 0;  // let libavcodec pick
    if ((err = avcodec_open2(codec_.get(), codec, nullptr)) < 0) fail(path, "cannot open the decoder: " + av_error(err));
    packet_.reset(av_packet_alloc());
  }

  const AVStream* stream() const { return stream_; }
  const AVFormatContext* format() const { return format_.get(); }
  int64_t start_pts() const { return stream_->start_time == AV_NOPTS_VALUE ? 0 : stream_->start_time; }
  double seconds(int64_t pts) const { return (pts - start_pts()) * av_q2d(stream_->time_base); }

  void seek(double t) {
    const int64_t target = start_pts() + static_cast<int64_t>(std::floor(t / av_q2d(stream_->time_base)));
    const int err = av_seek_frame(format_.get(), stream_index_, target, AVSEEK_FLAG_BACKWARD);
    if (err < 0) fail(path_, "cannot seek to " + std::to_string(t) + " s: " + av_error(err));
    avcodec_flush_buffers(codec_.get());
    draining_ = false;
  }

  // The next decoded frame, or null at the end of the stream.
  FramePtr next() {
    FramePtr frame(av_frame_alloc());
    while (true) {
      const int got = avcodec_receive_frame(codec_.get(), frame.get());
      if (got == 0) return frame;
      if (got == AVERROR_EOF) return nullptr;
      if (got != AVERROR(EAGAIN)) fail(path_, "decoding failed: " + av_error(got));
      if (draining_) return nullptr;
      const int read = av_read_frame(format_.get(), packet_.get());
      if (read == AVERROR_EOF) {
        draining_ = true;
        avcodec_send_packet(codec_.get(), nullptr);
        continue;
      }
      if (read < 0) fail(path_, "cannot read: " + av_error(read));
      if (packet_->stream_index == stream_index_) {
        const int sent = avcodec_send_packet(codec_.get(), packet_.get());
        if (sent < 0 && sent != AVERROR(EAGAIN)) fail(path_, "corrupt video data: " + av_error(sent));
      }
      av_packet_unref(packet_.get());
    }
  }

  double timestamp(const AVFrame& f) const {
    const int64_t pts = f.best_effort_timestamp != AV_NOPTS_VALUE ? f.best_effort_timestamp : f.pts;
    return seconds(pts == AV_NOPTS_VALUE ? start_pts() : pts);
  }

  VideoFrame to_rgb(const AVFrame& f) {
    sws_.reset(sws_getCachedContext(sws_.release(), f.width, f.height, static_cast<AVPixelFormat>(f.format), f.width,
                                    f.height, AV_PIX_FMT_RGB24, SWS_BILINEAR, nullptr, nullptr, nullptr));
    if (!sws_) fail(path_, "cannot convert its pixel format to RGB");
    VideoFrame out;
    out.timestamp_s = timestamp(f);
    out.width = f.width;
    out.height = f.height;
    out.rgb.resize(static_cast<size_t>(f.width) * f.height * 3);
    uint8_t* planes[4] = {out.rgb.data(), nullptr, nullptr, nullptr};
    int strides[4] = {f.width * 3, 0, 0, 0};
    sws_scale(sws_.get(), f.data, f.linesize, 0, f.height, planes, strides);
    return out;
  }

 private:
  std::string path_;
  std::unique_ptr<AVFormatContext, FormatCloser> format_;
  std::unique_ptr<AVCodecContext, CodecFreer> codec_;
  std::unique_ptr<AVPacket, PacketFreer> packet_;
  std::unique_ptr<SwsContext, SwsFreer> sws_;
  AVStream* stream_ = nullptr;
  int stream_index_ = -1;
  bool draining_ = false;
};

constexpr double kSeekAhead = 2.0;  // seconds: farther than this, seeking beats decoding forward

}  // namespace

VideoInfo probe_video(const std::string& path) {
  Decoder d(path);
  const AVStream* s = d.stream();
  VideoInfo info;
  info.path = path;
  info.codec = avcodec_get_name(s->codecpar->codec_id);
  info.width = s->codecpar->width;
  info.height = s->codecpar->height;
  // The base rate (r_frame_rate) is the constant rate of a constant-rate stream; the average rate comes
  // from the container's duration, which some muxers count without the last frame.
  const AVRational rate = s->r_frame_rate.num > 0 ? s->r_frame_rate : s->avg_frame_rate;
  info.fps = rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0.0;
  if (s->duration != AV_NOPTS_VALUE && s->duration > 0) {
    info.duration_s = s->duration * av_q2d(s->time_base);
  } else if (d.format()->duration != AV_NOPTS_VALUE && d.format()->duration > 0) {
    info.duration_s = d.format()->duration / static_cast<double>(AV_TIME_BASE);
  }
  info.frame_count = s->nb_frames > 0 ? s->nb_frames : std::llround(info.duration_s * info.fps);
  if (s->nb_frames > 0 && info.fps > 0) info.duration_s = std::max(info.duration_s, s->nb_frames / info.fps);
  if (info.width <= 0 || info.height <= 0) fail(path, "video stream has no picture size");
  if (info.fps <= 0) fail(path, "video stream has no frame rate");
  if (info.frame_count <= 0 || info.duration_s <= 0) fail(path, "video has no frames");
  return info;
}

std::vector<double> uniform_timestamps(const VideoInfo& info, int64_t count) {
  if (count <= 0) throw VideoError(info.path + ": frame count to sample must be positive, got " + std::to_string(count));
  std::vector<double> out;
  const double segment = info.duration_s / count;
  for (int64_t k = 0; k < count; ++k) out.push_back((k + 0.5) * segment);
  return out;
}

std::vector<double> timestamps_at_fps(const VideoInfo& info, double fps, int64_t max_frames) {
  if (!(fps > 0)) throw VideoError(info.path + ": sampling rate must be positive, got " + std::to_string(fps));
  std::vector<double> out;
  for (int64_t k = 0; k < max_frames; ++k) {
    const double t = k / fps;
    if (t >= info.duration_s) break;
    out.push_back(t);
  }
  return out;
}

namespace {

// Long decodes (hours of video at 1-2 fps) say how far they are: a line on stderr every few seconds.
class DecodeProgress {
 public:
  DecodeProgress(const std::string& path, size_t total)
      : path_(path), total_(total), start_(std::chrono::steady_clock::now()), last_(start_) {}
  void update(size_t done) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::seconds(5)) return;
    last_ = now;
    reported_ = true;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    std::fprintf(stderr, "decoding %s: %zu/%zu frames (%.0f frames/s)\n", path_.c_str(), done, total_,
                 done / seconds);
  }
  void done() const {
    if (reported_) std::fprintf(stderr, "decoding %s: %zu frames done\n", path_.c_str(), total_);
  }

 private:
  std::string path_;
  size_t total_;
  std::chrono::steady_clock::time_point start_, last_;
  bool reported_ = false;
};

}  // namespace

std::vector<VideoFrame> decode_frames(const std::string& path, const std::vector<double>& timestamps) {
  for (size_t k = 1; k < timestamps.size(); ++k) {
    if (timestamps[k] < timestamps[k - 1]) fail(path, "timestamps to decode must ascend");
  }
  Decoder d(path);
  const AVRational rate = d.stream()->r_frame_rate.num > 0 ? d.stream()->r_frame_rate : d.stream()->avg_frame_rate;
  const double half_tick = 0.5 * av_q2d(av_inv_q(rate.num > 0 ? rate : AVRational{1000, 1}));
  std::vector<VideoFrame> out;
  DecodeProgress progress(path, timestamps.size());
  FramePtr current, ahead;  // the last frame at or before the target, and the one after it
  bool started = false;
  for (double t : timestamps) {
    const bool far = !started || (ahead && d.timestamp(*ahead) + kSeekAhead < t) ||
                     (!ahead && current && d.timestamp(*current) + kSeekAhead < t);
    if (far) {
      d.seek(t);
      current.reset();
      ahead.reset();
      started = true;
    }
    // Decode forward until the next frame would be shown after t (half a frame of tolerance for
    // timestamps computed in floating point).
    while (true) {
      if (!ahead) ahead = d.next();
      if (!ahead || d.timestamp(*ahead) > t + half_tick) break;
      current = std::move(ahead);
    }
    const AVFrame* shown = current ? current.get() : ahead.get();  // before the first frame: the first
    if (!shown || (!ahead && d.timestamp(*shown) + 3 * half_tick < t)) {
      fail(path, "no frame at " + std::to_string(t) + " s: the stream ends at " +
                     (shown ? std::to_string(d.timestamp(*shown)) : std::string("0")) + " s (truncated?)");
    }
    out.push_back(d.to_rgb(*shown));
    progress.update(out.size());
  }
  progress.done();
  return out;
}

}  // namespace mmi
