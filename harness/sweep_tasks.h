// The samples of one sweep task for one model: V-NIAH and MM-NIAH grids over a haystack video (a
// generated one unless the sweep names a file), Video-QA and captioning manifests. Frames are decoded
// through one on-disk cache so every method of a sweep sees the same pixels and each video is decoded
// once. Needs the video build (FFmpeg and OpenCV).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "harness/sweep.h"
#include "tasks/sample.h"

namespace mmi {

class Qwen25VLModel;
struct Qwen25VisionConfig;

struct TaskContext {
  std::string cache_dir = "results/cache";  // generated haystacks and decoded frames
  // What the model makes of the inputs: text tokens of a string, visual tokens of a frame of the
  // given size, and how many frames form one temporal group.
  std::function<int64_t(const std::string&)> count_tokens;
  std::function<double(int64_t height, int64_t width)> tokens_per_frame;
  int64_t frame_group = 1;
};

// The context `model` gives a task: its tokenizer's counts, its visual tokens per frame under the
// task's pixel budget, its temporal patch.
TaskContext task_context(const Qwen25VLModel& model, const TaskSpec& task, const std::string& cache_dir);

// LM tokens of one frame of this size: merged patches per temporal group over the frames in a group
// (fractional when a group is a single merged patch, e.g. 0.5 at 28 x 28).
double tokens_per_frame(const Qwen25VisionConfig& vision, const ContextSpec& context, int64_t height, int64_t width);

// A sample that could not be built (a corrupt video in a manifest, say): recorded as a failed row.
struct TaskFailure {
  std::string sample_id;
  std::string error;
};

struct TaskSamples {
  std::vector<TaskSample> samples;
  std::vector<TaskFailure> failures;
};

// Throws (naming the sweep line) when the whole task cannot be built, e.g. a missing manifest or
// haystack; per-item problems become failures and the rest is built.
TaskSamples build_task_samples(const Sweep& sweep, const TaskSpec& task, const TaskContext& context);

// Whether a task samples a haystack video (V-NIAH, MM-NIAH, the generated Video-QA): its `frames`
// are haystack frames at 1 fps.
bool is_haystack_task(const std::string& name);

// The haystack frame size of a NIAH task, for the dry run's token estimate: the generated haystack's,
// or the video file's.
std::pair<int64_t, int64_t> haystack_frame_size(const TaskSpec& task);

}  // namespace mmi
