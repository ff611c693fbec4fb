#include "harness/command_inputs.h"

#include <algorithm>

#include "harness/cli.h"

#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "kernels/cuda/cuda_executor.h"

namespace mmi {

std::vector<VideoFrame> synthetic_video(const std::string& spec) {
  int64_t frames = 0, height = 0, width = 0;
  const size_t x1 = spec.find('x'), x2 = spec.find('x', x1 + 1);
  if (x1 == std::string::npos || x2 == std::string::npos || !parse_int64(spec.substr(0, x1), frames) ||
      !parse_int64(spec.substr(x1 + 1, x2 - x1 - 1), height) || !parse_int64(spec.substr(x2 + 1), width) ||
      frames <= 0 || height < 28 || width < 28)
    throw UsageError("--synthetic-video must be FRAMESxHEIGHTxWIDTH (sides >= 28), got '" + spec + "'");
  std::vector<VideoFrame> out(frames);
  for (int64_t f = 0; f < frames; ++f) {
    VideoFrame& v = out[f];
    v.timestamp_s = f / 2.0;
    v.height = static_cast<int>(height);
    v.width = static_cast<int>(width);
    v.rgb.resize(height * width * 3);
    const int64_t side = std::max<int64_t>(height / 6, 4), top = (f * 7) % (height - side), left = (f * 13) % (width - side);
    for (int64_t y = 0; y < height; ++y)
      for (int64_t x = 0; x < width; ++x) {
        uint8_t* p = &v.rgb[(y * width + x) * 3];
        const bool square = y >= top && y < top + side && x >= left && x < left + side;
        p[0] = square ? 240 : static_cast<uint8_t>(255 * x / width);
        p[1] = square ? 40 : static_cast<uint8_t>(255 * y / height);
        p[2] = square ? 40 : 96;
      }
  }
  return out;
}

std::vector<VideoFrame> command_video(const std::string& path, const std::string& synthetic, int64_t frames) {
  if (!synthetic.empty()) return synthetic_video(synthetic);
#ifdef MMI_WITH_VIDEO
  const VideoInfo info = probe_video(path);
  std::vector<double> times;
  if (frames > 0) {
    times = uniform_timestamps(info, frames);
  } else {
    times = timestamps_at_fps(info, 2.0, 768);
    if (times.size() < 4) times = uniform_timestamps(info, 4);
    if (times.size() % 2) times.pop_back();
  }
  return decode_frames(path, times);
#else
  throw std::runtime_error("this build has no video decoding (FFmpeg/OpenCV were missing): use --synthetic-video");
#endif
}

ArgParser& add_model_options(ArgParser& args) {
  return args.option("model", "DIR", "Hugging Face model folder (config.json, *.safetensors, tokenizer.json)")
      .option("random-weights", "NAME", "no checkpoint: a named geometry with random weights (qwen2.5-vl-7b, qwen2.5-vl-3b)")
      .option("device", "D", "cpu or cuda (default: cuda when a GPU is visible)")
      .option("dtype", "T", "weights and activations: bf16, fp16 or fp32 (default: bf16 on the GPU, fp32 on the CPU)")
      .option("seed", "N", "seed of --random-weights", "0");
}

ArgParser& add_prompt_options(ArgParser& args, const std::string& video_help, const std::string& question_default) {
  return args.option("video", "FILE", video_help)
      .option("synthetic-video", "FxHxW", "a generated video of F frames (2 fps) instead of a file")
      .option("question", "TEXT", "the question after the video", question_default)
      .option("frames", "N", "sample N frames uniformly (default: 2 fps, 4 to 768 frames)", "0")
      .option("max-pixels", "N", "pixels per frame at most (multiples of 28x28 are kept)", std::to_string(768 * 28 * 28))
      .option("min-pixels", "N", "pixels per frame at least", std::to_string(128 * 28 * 28));
}

CommandModel load_command_model(const ArgParser& args) {
  if (args.has("model") == args.has("random-weights"))
    throw UsageError("give exactly one of --model and --random-weights");
  if (args.has("device") && args.get("device") != "cuda" && args.get("device") != "cpu")
    throw UsageError("--device must be cpu or cuda, got '" + args.get("device") + "'");
  CommandModel out;
  out.gpu = args.has("device") ? args.get("device") == "cuda" : cuda_available();
  if (out.gpu && !cuda_available()) throw std::runtime_error("--device cuda: " + cuda_device_description());
  const at::Device device = out.gpu ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  const at::ScalarType dtype = parse_dtype(args.has("dtype") ? args.get("dtype") : out.gpu ? "bf16" : "fp32");
  const auto start = std::chrono::steady_clock::now();
  out.model = args.has("model") ? Qwen25VLModel::load(args.get("model"), dtype, device)
                                : Qwen25VLModel::random(args.get("random-weights"), args.get_int("seed"), dtype, device);
  std::printf("model: %s (loaded in %.1f s)\n", out.model->describe().c_str(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return out;
}

ModelInputs command_inputs(const Qwen25VLModel& model, const ArgParser& args, int64_t* frames) {
  if (args.has("video") == args.has("synthetic-video"))
    throw UsageError("give exactly one of --video and --synthetic-video");
  PromptSegment video;
  video.kind = PromptSegment::Kind::kVideo;
  video.frames = command_video(args.get("video"), args.get("synthetic-video"), args.get_int("frames"));
  *frames = static_cast<int64_t>(video.frames.size());
  PromptSegment question;
  question.text = args.get("question");
  PrepareOptions prepare;
  prepare.budget.max_pixels = args.get_int("max-pixels");
  prepare.budget.min_pixels = args.get_int("min-pixels");
  return model.prepare({video, question}, prepare);
}

}  // namespace mmi
