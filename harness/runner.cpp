#include "harness/runner.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "harness/evaluate.h"
#include "harness/progress.h"
#include "harness/report.h"
#include "harness/run_info.h"
#include "harness/store.h"
#include "harness/sweep_tasks.h"
#include "kernels/cuda/cuda_executor.h"
#include "kernels/method.h"
#include "models/qwen2_5_vl/model.h"
#include "tasks/files.h"

namespace mmi {
namespace {

struct Device {
  at::Device device{at::kCPU};
  at::ScalarType dtype = at::kFloat;
  bool gpu() const { return device.is_cuda(); }
};

Device resolve_device(const ModelSpec& m) {
  Device d;
  const bool want_gpu = m.device == "auto" ? cuda_available() : m.device.rfind("cuda", 0) == 0;
  if (want_gpu) {
    if (!cuda_available()) throw std::runtime_error("model " + m.name + " asks for " + m.device + ": " + cuda_device_description());
    d.device = m.device.size() > 5 ? at::Device(m.device) : at::Device(at::kCUDA, 0);
  }
  const std::string dtype = m.dtype == "auto" ? (d.gpu() ? "bf16" : "fp32") : m.dtype;
  d.dtype = dtype == "bf16" ? at::kBFloat16 : dtype == "fp16" ? at::kHalf : at::kFloat;
  return d;
}

std::unique_ptr<Qwen25VLModel> load_model(const Sweep& sweep, const ModelSpec& m, const Device& d) {
  if (!m.random.empty()) return Qwen25VLModel::random(m.random, m.seed, d.dtype, d.device);
  if (!file_exists(m.path)) throw std::runtime_error(sweep.where(m.mark) + ": model folder " + m.path + " does not exist");
  return Qwen25VLModel::load(m.path, d.dtype, d.device);
}

Qwen25VLConfig model_config(const ModelSpec& m) {
  return m.random.empty() ? load_qwen2_5_vl_config(m.path) : named_qwen2_5_vl_config(m.random);
}


RunRecord new_run(const Sweep& sweep, const RunOptions& options) {
  RunRecord r;
  r.run_id = new_run_id();
  r.started_at = utc_timestamp();
  r.sweep_name = sweep.name;
  if (options.shard_count > 1) r.shard = std::to_string(options.shard_index) + "/" + std::to_string(options.shard_count);
  r.git_commit = git_commit();
  r.host = host_name();
  r.device = cuda_available() ? cuda_device_description() : "cpu";
  r.torch_version = libtorch_version();
  r.sweep_yaml = sweep.resolved_yaml();
  return r;
}

SampleRecord sample_row(const RunRecord& run, const SweepCase& c, const std::string& sample_id) {
  SampleRecord s;
  s.run_id = run.run_id;
  s.case_key = c.key() + " | " + sample_id;
  s.model = c.model.name;
  s.method = c.method.name;
  s.method_params = c.method.label();
  if (c.method.name == "mminference" && c.method.params["table"]) s.pattern_table = c.method.params["table"].as<std::string>();
  s.task = c.task.name;
  s.sample_id = sample_id;
  return s;
}

SampleRecord failed_row(SampleRecord s, const std::string& error) {
  s.status = "failed";
  s.error = error;
  s.finished_at = utc_timestamp();
  return s;
}

// Out of memory is the failure users hit at long contexts: name it plainly and give the memory back.
std::string failure_message(const std::exception& e, bool gpu) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr) {
    if (gpu) cuda_release_cached_memory();
    return std::string("out of memory: ") + e.what();
  }
  return e.what();
}

int64_t frames_in(const TaskSample& sample) {
  const auto it = sample.grid.find("frames");
  if (it != sample.grid.end()) return static_cast<int64_t>(it->second);
  int64_t n = 0;
  for (const PromptSegment& p : sample.prompt) n += static_cast<int64_t>(p.frames.size());
  return n;
}

// The cases of one (model, task) pair: consecutive in a sweep's case order, one per method.
std::vector<std::vector<SweepCase>> group_by_task(const Sweep& sweep, const std::vector<SweepCase>& cases) {
  std::vector<std::vector<SweepCase>> groups;
  const int per_task = static_cast<int>(sweep.methods.size());
  for (const SweepCase& c : cases) {
    if (groups.empty() || groups.back().front().index / per_task != c.index / per_task) groups.emplace_back();
    groups.back().push_back(c);
  }
  return groups;
}

// The work of one (model, task) group: its samples under each of its methods.
class TaskRun {
 public:
  TaskRun(ResultStore& store, const RunRecord& run, const std::set<std::string>& done, Progress& progress)
      : store_(store), run_(run), done_(done), progress_(progress) {}

  int64_t failed() const { return failed_; }

  void fail_all(const std::vector<SweepCase>& cases, const std::string& sample_id, const std::string& error) {
    for (const SweepCase& c : cases) record(failed_row(sample_row(run_, c, sample_id), error));
  }

  void run(const Sweep& sweep, const Qwen25VLModel& model, bool gpu, const std::vector<SweepCase>& cases,
           const TaskContext& context) {
    std::vector<std::unique_ptr<AttentionMethod>> methods;
    for (const SweepCase& c : cases) methods.push_back(make_method(c.method.name, c.method.params));
    TaskSamples built = build_task_samples(sweep, cases.front().task, context);
    const bool per_item = cases.front().task.name == "videoqa" || cases.front().task.name == "caption";
    if (per_item)  // the item count is known only now: the progress total counted one per case
      progress_.add_total(static_cast<int64_t>(built.samples.size() + built.failures.size() - 1) * cases.size());
    for (const TaskFailure& f : built.failures) fail_all(cases, f.sample_id, f.error);
    const PixelBudget budget{cases.front().task.context.min_pixels, cases.front().task.context.max_pixels};
    for (const TaskSample& sample : built.samples) {
      std::vector<size_t> todo;
      for (size_t i = 0; i < cases.size(); ++i) {
        if (done_.count(sample_row(run_, cases[i], sample.id).case_key)) progress_.step("done before: " + sample.id);
        else todo.push_back(i);
      }
      if (!todo.empty()) run_sample(model, gpu, cases, methods, sample, budget, todo);
    }
  }

 private:
  void run_sample(const Qwen25VLModel& model, bool gpu, const std::vector<SweepCase>& cases,
                  const std::vector<std::unique_ptr<AttentionMethod>>& methods, const TaskSample& sample,
                  const PixelBudget& budget, const std::vector<size_t>& todo) {
    ModelInputs inputs;
    at::Tensor embeds;
    double vision_ms = 0;
    try {
      inputs = prepare_sample(model, sample, budget);
      embeds = model.embed(inputs, &vision_ms);  // once: every method sees the same embeddings
    } catch (const std::exception& e) {
      const std::string error = failure_message(e, gpu);
      for (size_t i : todo) record(failed_row(sample_row(run_, cases[i], sample.id), error));
      return;
    }
    for (size_t i : todo) {
      SampleRecord row = sample_row(run_, cases[i], sample.id);
      row.frames = frames_in(sample);
      row.tokens = inputs.length();
      const auto depth = sample.grid.find("depth");
      if (depth != sample.grid.end()) row.depth = depth->second;
      row.target = sample.answer.target;
      row.vision_ms = vision_ms;
      try {
        if (gpu) cuda_reset_peak_memory();
        const Evaluation e = evaluate_sample(model, sample, inputs, embeds, *methods[i]);
        row.prediction = e.prediction;
        row.score = e.score;
        row.prefill_ms = e.prefill.total_ms;
        row.attention_ms = e.prefill.attention_ms;
        row.index_ms = e.prefill.index_ms;
        row.flops_ratio = e.prefill.flops_ratio;
        row.density = e.prefill.density;
        if (gpu) row.peak_memory_gb = cuda_peak_memory_bytes() / 1e9;
        row.finished_at = utc_timestamp();
        record(row);
      } catch (const std::exception& e) {
        record(failed_row(row, failure_message(e, gpu)));
      }
    }
  }

  void record(const SampleRecord& row) {
    store_.record(row);
    if (row.status != "ok") ++failed_;
    progress_.step(row.task + " " + row.sample_id + " " + row.method + (row.status == "ok" ? "" : " FAILED"));
  }

  ResultStore& store_;
  const RunRecord& run_;
  const std::set<std::string>& done_;
  Progress& progress_;
  int64_t failed_ = 0;
};


// A rough upper bound of one sample's cost: the model's matrix FLOPs plus dense causal attention,
// at a nominal throughput (fp32 CPU cores or a Hopper GPU in bf16).
std::string estimate(const SweepCase& c) {
  try {
    const Qwen25VLConfig config = model_config(c.model);
    const Qwen2Config& t = config.text;
    int64_t tokens = 0;
    if (is_haystack_task(c.task.name)) {
      const auto [h, w] = haystack_frame_size(c.task);
      const double per_frame = tokens_per_frame(config.vision, c.task.context, h, w);
      int64_t frames = 0;
      for (int64_t f : c.task.params.at("frames").as<std::vector<int64_t>>()) frames = std::max(frames, f + 1);
      tokens = std::llround(frames * per_frame) + 100;
      if (c.task.name == "mmniah") tokens = static_cast<int64_t>(tokens / (1 - c.task.params.at("text_share")[0].as<double>()));
    } else {
      return "per item";
    }
    const double params = double(t.num_layers) * t.hidden_size *
                              (2.0 * t.num_heads * t.head_dim + 2.0 * t.num_kv_heads * t.head_dim + 3.0 * t.intermediate_size) +
                          double(t.vocab_size) * t.hidden_size;
    const double flops = 2 * params * tokens + 2.0 * tokens * tokens * t.head_dim * t.num_heads * t.num_layers;
    const bool gpu = c.model.device == "auto" ? cuda_available() : c.model.device.rfind("cuda", 0) == 0;
    const double per_second = gpu ? 3e14 : 2e10 * std::max(1u, std::thread::hardware_concurrency());
    char text[64];
    const double seconds = flops / per_second;
    std::snprintf(text, sizeof text, "%lld tok, <= %.3g %s/sample", (long long)tokens, seconds < 1 ? seconds * 1e3 : seconds,
                  seconds < 1 ? "ms" : "s");
    return text;
  } catch (const std::exception& e) {
    return std::string("? (") + e.what() + ")";
  }
}

void print_report(const ResultStore& store, const Sweep& sweep, const RunOptions& options) {
  const auto [runs, samples] = store.sweep_results(sweep.name);
  const Report report = build_report(runs, samples, {sweep.name, utc_timestamp(), {}});
  std::printf("%s", render_console(report).c_str());
  if (!options.html.empty()) {
    make_directories(parent_directory(options.html));
    std::ofstream(options.html) << render_html(report, runs, samples);
    std::printf("report: %s\n", options.html.c_str());
  }
}

}  // namespace

int64_t run_sweep(const Sweep& sweep, const RunOptions& options) {
  sweep.validate_methods([](const MethodSpec& m) { make_method(m.name, m.params); });
  const std::vector<SweepCase> cases = sweep.shard(options.shard_index, options.shard_count);
  if (options.dry_run) {
    std::printf("%s", describe_cases(cases, {{"estimate", estimate}}).c_str());
    return 0;
  }
  const std::string database = options.database.empty() ? sweep.output : options.database;
  ResultStore store = ResultStore::open(database);
  const std::set<std::string> done = options.resume ? store.completed_keys() : std::set<std::string>{};
  const RunRecord run = new_run(sweep, options);
  store.begin_run(run);
  std::printf("sweep %s: %zu cases into %s (run %s)%s\n", sweep.name.c_str(), cases.size(), database.c_str(),
              run.run_id.c_str(), options.resume ? ", resuming" : "");
  int64_t total = 0;
  for (const SweepCase& c : cases) total += c.task.grid_size();
  Progress progress("sweep " + sweep.name, total, stdout);
  TaskRun task_run(store, run, done, progress);
  at::InferenceMode inference;

  std::string loaded_name, load_error;
  std::unique_ptr<Qwen25VLModel> model;
  bool gpu = false;
  for (const std::vector<SweepCase>& group : group_by_task(sweep, cases)) {
    const SweepCase& first = group.front();
    try {
      if (loaded_name != first.model.name) {
        model.reset();  // free the previous model's memory first
        loaded_name = first.model.name;
        load_error.clear();
        try {
          const Device device = resolve_device(first.model);
          gpu = device.gpu();
          model = load_model(sweep, first.model, device);
        } catch (const std::exception& e) {
          load_error = failure_message(e, gpu);
        }
      }
      if (!model) throw std::runtime_error(load_error);  // every task of a model that did not load fails
      task_run.run(sweep, *model, gpu, group, task_context(*model, first.task, options.cache_dir));
    } catch (const std::exception& e) {
      task_run.fail_all(group, "*", failure_message(e, gpu));  // the whole task: model or input unusable
    }
  }
  progress.finish();
  print_report(store, sweep, options);
  return task_run.failed();
}

}  // namespace mmi
