#include "tasks/video_writer.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <memory>

namespace mmi {
namespace {

constexpr int kIndexBits = 16;

std::string av_error(int err) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, text, sizeof(text));
  return text;
}

// What an encoding session allocates; a member, so it is released even when the constructor throws.
struct EncoderHandles {
  AVFormatContext* format = nullptr;
  AVCodecContext* codec = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* packet = nullptr;
  SwsContext* sws = nullptr;
  ~EncoderHandles() {
    sws_freeContext(sws);
    av_packet_free(&packet);
    av_frame_free(&frame);
    avcodec_free_context(&codec);
    if (format && format->pb && !(format->oformat->flags & AVFMT_NOFILE)) avio_closep(&format->pb);
    avformat_free_context(format);
  }
};

class Encoder {
 public:
  Encoder(const std::string& path, const VideoWriteOptions& o) : path_(path), o_(o) {
    av_log_set_level(AV_LOG_FATAL);  // failures reach the caller as VideoError; keep stderr clean
    if (o.width <= 0 || o.height <= 0 || o.width % 2 || o.height % 2 || o.fps <= 0 || o.frames <= 0) {
      fail("needs an even positive size, a positive frame rate and at least one frame");
    }
    check(avformat_alloc_output_context2(&h_.format, nullptr, nullptr, path.c_str()), "no container for this extension");
    const AVCodec* codec = avcodec_find_encoder_by_name(o.encoder.c_str());
    if (!codec) fail("FFmpeg has no encoder named '" + o.encoder + "'");
    stream_ = avformat_new_stream(h_.format, nullptr);
    h_.codec = avcodec_alloc_context3(codec);
    if (!stream_ || !h_.codec) fail("out of memory");
    h_.codec->width = o.width;
    h_.codec->height = o.height;
    h_.codec->time_base = AVRational{1, o.fps};
    h_.codec->framerate = AVRational{o.fps, 1};
    h_.codec->gop_size = o.keyframe_interval;
    h_.codec->pix_fmt = AV_PIX_FMT_YUV420P;
    h_.codec->bit_rate = 2000000;
    if (h_.format->oformat->flags & AVFMT_GLOBALHEADER) h_.codec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (o.encoder == "libx264") av_opt_set(h_.codec->priv_data, "preset", "ultrafast", 0);
    check(avcodec_open2(h_.codec, codec, nullptr), "cannot open the encoder");
    check(avcodec_parameters_from_context(stream_->codecpar, h_.codec), "bad encoder parameters");
    stream_->time_base = h_.codec->time_base;
    if (!(h_.format->oformat->flags & AVFMT_NOFILE)) check(avio_open(&h_.format->pb, path.c_str(), AVIO_FLAG_WRITE), "cannot create");
    check(avformat_write_header(h_.format, nullptr), "cannot write the header");
    h_.frame = av_frame_alloc();
    h_.packet = av_packet_alloc();
    h_.frame->format = AV_PIX_FMT_YUV420P;
    h_.frame->width = o.width;
    h_.frame->height = o.height;
    check(av_frame_get_buffer(h_.frame, 0), "out of memory");
    h_.sws = sws_getContext(o.width, o.height, AV_PIX_FMT_RGB24, o.width, o.height, AV_PIX_FMT_YUV420P, SWS_BILINEAR,
                          nullptr, nullptr, nullptr);
    if (!h_.sws) fail("cannot convert RGB to YUV");
  }

  void write(int64_t k) {
    const std::vector<uint8_t> rgb = generated_frame(o_, k);
    check(av_frame_make_writable(h_.frame), "out of memory");
    const uint8_t* planes[1] = {rgb.data()};
    const int strides[1] = {o_.width * 3};
    sws_scale(h_.sws, planes, strides, 0, o_.height, h_.frame->data, h_.frame->linesize);
    h_.frame->pts = k;
    send(h_.frame);
  }

  void finish() {
    send(nullptr);
    check(av_write_trailer(h_.format), "cannot finish the file");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw VideoError(path_ + ": " + what); }
  void check(int err, const char* what) const {
    if (err < 0) fail(std::string(what) + ": " + av_error(err));
  }
  void send(AVFrame* frame) {
    check(avcodec_send_frame(h_.codec, frame), "encoding failed");
    while (true) {
      const int got = avcodec_receive_packet(h_.codec, h_.packet);
      if (got == AVERROR(EAGAIN) || got == AVERROR_EOF) return;
      check(got, "encoding failed");
      // One frame long: without a duration the MP4 muxer's edit list drops the last frame.
      if (h_.packet->duration == 0) h_.packet->duration = 1;
      av_packet_rescale_ts(h_.packet, h_.codec->time_base, stream_->time_base);
      h_.packet->stream_index = stream_->index;
      check(av_interleaved_write_frame(h_.format, h_.packet), "cannot write");
    }
  }

  std::string path_;
  VideoWriteOptions o_;
  EncoderHandles h_;
  AVStream* stream_ = nullptr;
};

}  // namespace

std::vector<uint8_t> generated_frame(const VideoWriteOptions& o, int64_t k) {
  std::vector<uint8_t> rgb(static_cast<size_t>(o.width) * o.height * 3);
  const int band = o.height / 4, block = o.width / kIndexBits;
  const int square = o.height / 4, sx = static_cast<int>((k * 7) % (o.width - square)),
            sy = band + static_cast<int>((k * 3) % (o.height - band - square));
  for (int y = 0; y < o.height; ++y) {
    for (int x = 0; x < o.width; ++x) {
      uint8_t* p = &rgb[(static_cast<size_t>(y) * o.width + x) * 3];
      if (y < band) {  // the index code: bit b of k in block b, white = 1
        const int bit = x / block;
        const uint8_t v = bit < kIndexBits && ((k >> bit) & 1) ? 235 : 20;
        p[0] = p[1] = p[2] = v;
      } else if (x >= sx && x < sx + square && y >= sy && y < sy + square) {  // a moving square
        p[0] = 220, p[1] = 60, p[2] = 40;
      } else {  // a gradient that drifts with time
        p[0] = static_cast<uint8_t>((x * 2 + k * 5) & 255);
        p[1] = static_cast<uint8_t>((y * 2) & 255);
        p[2] = static_cast<uint8_t>(128 + ((x + y + k) & 63));
      }
    }
  }
  return rgb;
}

void write_generated_video(const std::string& path, const VideoWriteOptions& options) {
  Encoder encoder(path, options);
  for (int64_t k = 0; k < options.frames; ++k) encoder.write(k);
  encoder.finish();
}

int64_t read_frame_index(const VideoFrame& f) {
  const int band = f.height / 4, block = f.width / kIndexBits;
  int64_t k = 0;
  for (int bit = 0; bit < kIndexBits; ++bit) {
    // Average the inner part of the block in the middle row of the band (codecs blur the edges).
    int sum = 0, count = 0;
    for (int x = bit * block + block / 4; x < (bit + 1) * block - block / 4; ++x) {
      sum += f.rgb[(static_cast<size_t>(band / 2) * f.width + x) * 3 + 1];
      ++count;
    }
    if (count && sum / count > 128) k |= int64_t(1) << bit;
  }
  return k;
}

}  // namespace mmi
