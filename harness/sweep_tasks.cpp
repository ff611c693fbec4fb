#include "harness/sweep_tasks.h"

#include <stdexcept>

#include "models/qwen2_5_vl/model.h"
#include "tasks/event_qa.h"
#include "tasks/files.h"
#include "tasks/frame_cache.h"
#include "tasks/manifest.h"
#include "tasks/mm_niah.h"
#include "tasks/niah.h"
#include "tasks/prose.h"
#include "tasks/video.h"
#include "tasks/video_qa.h"
#include "tasks/video_writer.h"

namespace mmi {
namespace {

// The generated haystack: moving content, 2 fps, as many seconds as the largest grid needs at 1 fps.
VideoWriteOptions generated_haystack(int64_t seconds) {
  VideoWriteOptions o;
  o.width = 160;
  o.height = 120;
  o.fps = 2;
  o.frames = 2 * seconds + 2;
  return o;
}

std::string setting(const TaskSpec& task, const std::string& key, const std::string& fallback = "") {
  const auto it = task.params.find(key);
  return it == task.params.end() || !it->second.IsScalar() ? fallback : it->second.as<std::string>();
}

template <typename T>
std::vector<T> grid(const TaskSpec& task, const std::string& key) {
  return task.params.at(key).as<std::vector<T>>();
}

bool uses_generated_haystack(const TaskSpec& task) {
  return task.params.count("frames") && task.params.count("haystack") && setting(task, "haystack") == "generated";
}

// A haystack video path: the file the sweep names, or a generated video long enough for every task of
// the sweep that uses one, so that they all see the same decoded frames (a lossy encoder gives frame k
// of two generated videos of different lengths slightly different pixels).
std::string haystack_video(const Sweep& sweep, const TaskSpec& task, const TaskContext& context) {
  const std::string haystack = setting(task, "haystack", "generated");
  if (haystack != "generated") {
    if (!file_exists(haystack)) throw std::runtime_error(sweep.where(task.mark) + ": haystack " + haystack + " does not exist");
    return haystack;
  }
  int64_t longest = 0;
  for (const TaskSpec& other : sweep.tasks) {
    if (!uses_generated_haystack(other)) continue;
    for (int64_t f : grid<int64_t>(other, "frames")) longest = std::max(longest, f);
  }
  const VideoWriteOptions options = generated_haystack(longest + 1);
  make_directories(context.cache_dir);
  const std::string path = join_path(context.cache_dir, "haystack_" + std::to_string(options.width) + "x" +
                                                            std::to_string(options.height) + "_" +
                                                            std::to_string(options.frames) + ".mp4");
  if (!file_exists(path)) {
    const std::string partial = path + ".partial.mp4";  // a killed run never leaves a truncated haystack
    write_generated_video(partial, options);
    if (std::rename(partial.c_str(), path.c_str()) != 0) throw std::runtime_error(path + ": cannot create");
  }
  return path;
}

// The tasks over a haystack video: V-NIAH, MM-NIAH and the generated Video-QA.
TaskSamples haystack_samples(const Sweep& sweep, const TaskSpec& task, const TaskContext& context, FrameCache& cache) {
  const std::string video = haystack_video(sweep, task, context);
  const VideoInfo info = probe_video(video);
  TaskSamples out;
  if (task.name == "eventqa") {
    EventQaOptions options;
    options.frames = grid<int64_t>(task, "frames");
    options.questions = grid<std::string>(task, "questions");
    options.variants = grid<int64_t>(task, "variants");
    options.first_script = std::stoll(setting(task, "first_script", "0"));
    out.samples = build_event_qa_from_video(video, cache, options);
    return out;
  }
  if (task.name == "vniah") {
    NiahOptions options;
    options.frames = grid<int64_t>(task, "frames");
    options.depths = grid<double>(task, "depths");
    options.needle = setting(task, "needle", options.needle);
    options.first_needle = std::stoll(setting(task, "first_needle", "0"));
    out.samples = build_vniah_from_video(video, cache, options);
    return out;
  }
  MmNiahOptions options;
  options.frames = grid<int64_t>(task, "frames");
  options.depths = grid<double>(task, "depths");
  options.needle = setting(task, "needle", options.needle);
  options.first_needle = std::stoll(setting(task, "first_needle", "0"));
  options.text_share = grid<double>(task, "text_share").at(0);
  options.count_tokens = context.count_tokens;
  options.tokens_per_frame = context.tokens_per_frame(info.height, info.width);
  options.frame_group = context.frame_group;
  const std::string prose = setting(task, "prose", "");
  out.samples = build_mmniah_from_video(video, cache, load_prose(prose.empty() ? default_prose_path() : prose), options);
  return out;
}

// Manifest tasks are built item by item, so that one bad video is one failed sample.
TaskSamples manifest_samples(const Sweep& sweep, const TaskSpec& task, FrameCache& cache) {
  const std::string manifest = setting(task, "manifest");
  if (!file_exists(manifest)) throw std::runtime_error(sweep.where(task.mark) + ": manifest " + manifest + " does not exist");
  VideoQaOptions options;
  const std::string frames = setting(task, "frames", "");
  options.frames = frames.empty() ? std::min<int64_t>(task.context.max_frames, 32) : std::stoll(frames);
  options.subtitles = setting(task, "subtitles", "false") == "true";
  if (!setting(task, "prompt").empty()) options.caption_prompt = setting(task, "prompt");
  const int64_t limit = std::stoll(setting(task, "limit", "0"));
  TaskSamples out;
  auto add = [&](const std::string& id, const auto& build) {
    try {
      for (TaskSample& s : build()) out.samples.push_back(std::move(s));
    } catch (const std::exception& e) {
      out.failures.push_back({id, e.what()});
    }
  };
  if (task.name == "videoqa") {
    std::vector<VideoQaItem> items = load_video_qa_manifest(manifest);
    if (limit > 0 && static_cast<int64_t>(items.size()) > limit) items.resize(limit);
    for (const VideoQaItem& item : items) add(item.id, [&] { return build_video_qa({item}, cache, options); });
  } else {
    std::vector<CaptionItem> items = load_caption_manifest(manifest);
    if (limit > 0 && static_cast<int64_t>(items.size()) > limit) items.resize(limit);
    for (const CaptionItem& item : items) add(item.id, [&] { return build_captioning({item}, cache, options); });
  }
  return out;
}

}  // namespace

bool is_haystack_task(const std::string& name) { return name == "vniah" || name == "mmniah" || name == "eventqa"; }

TaskSamples build_task_samples(const Sweep& sweep, const TaskSpec& task, const TaskContext& context) {
  FrameCache cache(join_path(context.cache_dir, "frames"));
  if (is_haystack_task(task.name)) return haystack_samples(sweep, task, context, cache);
  if (task.name == "videoqa" || task.name == "caption") return manifest_samples(sweep, task, cache);
  throw std::runtime_error(sweep.where(task.mark) + ": unknown task '" + task.name + "'");
}

TaskContext task_context(const Qwen25VLModel& model, const TaskSpec& task, const std::string& cache_dir) {
  TaskContext context;
  context.cache_dir = cache_dir;
  context.count_tokens = [&model](const std::string& s) { return static_cast<int64_t>(model.encode(s).size()); };
  const Qwen25VisionConfig vision = model.config().vision;
  const ContextSpec pixels = task.context;
  context.tokens_per_frame = [vision, pixels](int64_t h, int64_t w) { return tokens_per_frame(vision, pixels, h, w); };
  context.frame_group = vision.temporal_patch_size;
  return context;
}

double tokens_per_frame(const Qwen25VisionConfig& v, const ContextSpec& c, int64_t height, int64_t width) {
  const int64_t unit = v.patch_size * v.spatial_merge_size;
  const auto [h, w] = smart_resize(height, width, unit, c.min_pixels, c.max_pixels);
  return double((h / unit) * (w / unit)) / v.temporal_patch_size;
}

std::pair<int64_t, int64_t> haystack_frame_size(const TaskSpec& task) {
  const std::string haystack = setting(task, "haystack", "generated");
  if (haystack == "generated") {
    const VideoWriteOptions o = generated_haystack(1);
    return {o.height, o.width};
  }
  const VideoInfo info = probe_video(haystack);
  return {info.height, info.width};
}

}  // namespace mmi
