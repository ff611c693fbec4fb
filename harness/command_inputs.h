// What `mmi ask` and `mmi search` take from their command lines: the model (a checkpoint folder or a
// named geometry with random weights, on a device in a dtype) and the prompt (a video file or a clip
// generated in memory for machines without video decoding, then a question).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "harness/cli.h"
#include "models/qwen2_5_vl/model.h"
#include "tasks/video.h"

namespace mmi {

// spec: "FRAMESxHEIGHTxWIDTH" (sides >= 28); UsageError naming it otherwise.
// A bright square crossing a gradient, 2 frames per second.
std::vector<VideoFrame> synthetic_video(const std::string& spec);

// The clip a command was given: synthetic_video(synthetic) when that is not empty, else the file at
// `path` sampled as Qwen2.5-VL's reference utilities do (2 fps, an even count of 4 to 768 frames) or,
// when frames > 0, exactly `frames` uniform frames. Builds without video decoding take only synthetic
// clips and say so.
std::vector<VideoFrame> command_video(const std::string& path, const std::string& synthetic, int64_t frames);

// The options load_command_model reads: --model, --random-weights, --device, --dtype, --seed.
ArgParser& add_model_options(ArgParser& args);
// The options command_inputs reads: --video (described by video_help), --synthetic-video, --question
// (default question_default), --frames, --max-pixels, --min-pixels.
ArgParser& add_prompt_options(ArgParser& args, const std::string& video_help, const std::string& question_default);

struct CommandModel {
  std::unique_ptr<Qwen25VLModel> model;
  bool gpu = false;
};
// --model DIR or --random-weights NAME (with --seed), on --device (default: cuda when a GPU is
// visible) in --dtype (default: bf16 on the GPU, fp32 on the CPU). Prints what was loaded and how long
// it took. UsageError for a bad or missing choice.
CommandModel load_command_model(const ArgParser& args);

// The prompt [video, question] from --video or --synthetic-video (--frames), --question and the pixel
// budget --min-pixels/--max-pixels. *frames receives the number of video frames.
ModelInputs command_inputs(const Qwen25VLModel& model, const ArgParser& args, int64_t* frames);

}  // namespace mmi
