// YAML sweeps: expansion of lists and ranges, case order, keys, shards, the resolved YAML, and
// validation errors that name the line and the key.
#include <fstream>
#include <set>

#include "harness/sweep.h"
#include "tests/catch.h"

#ifndef MMI_SOURCE_DIR
#define MMI_SOURCE_DIR "."
#endif

using namespace mmi;

namespace {

const std::string kModel = "models:\n  - {name: m, random: qwen2.5-vl-7b}\n";
const std::string kTask = "tasks:\n  - {name: vniah, frames: 8, depths: 0.5}\n";

// A sweep of one model and one task with the given `methods:` entries (one per line).
Sweep with_methods(const std::vector<std::string>& entries) {
  std::string text = kModel + "methods:\n";
  for (const auto& entry : entries) text += "  - " + entry + "\n";
  return parse_sweep(text + kTask, "sweep.yaml");
}

std::vector<std::string> labels(const Sweep& sweep) {
  std::vector<std::string> out;
  for (const auto& method : sweep.methods) out.push_back(method.label());
  return out;
}

std::vector<std::string> keys(const std::vector<SweepCase>& cases) {
  std::vector<std::string> out;
  for (const auto& c : cases) out.push_back(c.key());
  return out;
}

// A sweep with one V-NIAH task whose `depths:` is written as given.
std::vector<std::string> depths(const std::string& value) {
  const Sweep sweep = parse_sweep(
      kModel + "methods: [dense]\ntasks:\n  - {name: vniah, frames: 8, depths: " + value + "}\n",
      "sweep.yaml");
  std::vector<std::string> out;
  for (const auto& item : sweep.tasks.at(0).params.at("depths")) out.push_back(item.Scalar());
  return out;
}

const char* kTwoByTwo = R"(
name: two
models:
  - {name: a, path: models/a, dtype: bf16}
  - {name: b, random: qwen2.5-vl-3b, seed: 7}
methods:
  - dense
  - {name: a_shape, sink: 64, local: "256,512"}
tasks:
  - {name: vniah, frames: [8, 16], depths: "0..1..0.5"}
  - {name: videoqa, manifest: data/qa.jsonl, frames: 32}
)";

std::string source_path(const std::string& relative) {
  return std::string(MMI_SOURCE_DIR) + "/" + relative;
}

}  // namespace

TEST_CASE("method parameters expand to every combination, first parameter slowest", "[sweep]") {
  const Sweep sweep = with_methods({
      "dense",
      "{name: vertical_slash, n_vertical: \"1000..3000..1000\", n_slash: [1024, 2048], last_q: 64}",
      "a_shape:sink=64,local=256,512",
      "{name: grid, strides: [[0, 16], \"0|32\"], lines: vs}",
      "{name: mminference, table: ../patterns/t.yaml}",
  });
  const std::vector<std::string> expected = {
      "dense",
      "vertical_slash:n_vertical=1000,n_slash=1024,last_q=64",
      "vertical_slash:n_vertical=1000,n_slash=2048,last_q=64",
      "vertical_slash:n_vertical=2000,n_slash=1024,last_q=64",
      "vertical_slash:n_vertical=2000,n_slash=2048,last_q=64",
      "vertical_slash:n_vertical=3000,n_slash=1024,last_q=64",
      "vertical_slash:n_vertical=3000,n_slash=2048,last_q=64",
      "a_shape:sink=64,local=256",
      "a_shape:sink=64,local=512",
      "grid:strides=0|16,lines=vs",
      "grid:strides=0|32,lines=vs",
      "mminference:table=../patterns/t.yaml",  // a path: neither a range nor a list
  };
  REQUIRE(labels(sweep) == expected);
  const MethodSpec& vs = sweep.methods.at(3);
  REQUIRE(vs.params.IsMap());
  REQUIRE(vs.params.size() == 3);
  REQUIRE(vs.params["n_vertical"].as<int64_t>() == 2000);
  REQUIRE(vs.params["n_slash"].as<int64_t>() == 1024);
  REQUIRE(sweep.methods.at(0).params.IsMap());
  REQUIRE(sweep.methods.at(0).params.size() == 0);
  // The same methods parse to the same labels in the same order, every time.
  REQUIRE(labels(with_methods({"a_shape:sink=64,local=256,512"})) ==
          std::vector<std::string>{"a_shape:sink=64,local=256", "a_shape:sink=64,local=512"});
  // Comma lists may mix values and ranges.
  REQUIRE(labels(with_methods({"{name: a_shape, local: \"8..16..8, 32\"}"})) ==
          std::vector<std::string>{"a_shape:local=8", "a_shape:local=16", "a_shape:local=32"});
}

TEST_CASE("ranges: integers and decimals, inclusive end on a step", "[sweep]") {
  REQUIRE(depths("\"0..1..0.25\"") == std::vector<std::string>{"0", "0.25", "0.5", "0.75", "1"});
  const std::vector<std::string> tenths = depths("\"0..1..0.1\"");
  REQUIRE(tenths.size() == 11);  // exact steps: 0.1 added ten times still ends at 1
  REQUIRE(tenths.at(3) == "0.3");
  REQUIRE(tenths.back() == "1");
  REQUIRE(depths("\"0.2..0.9..0.3\"") == std::vector<std::string>{"0.2", "0.5", "0.8"});
  REQUIRE(depths("[0.50, 1.0, 5e-1]") == std::vector<std::string>{"0.5", "1", "0.5"});
  REQUIRE(labels(with_methods({"a_shape:local=1..10..4"})) ==
          std::vector<std::string>{"a_shape:local=1", "a_shape:local=5", "a_shape:local=9"});
  REQUIRE(labels(with_methods({"a_shape:local=5..5"})) ==
          std::vector<std::string>{"a_shape:local=5"});
  REQUIRE(labels(with_methods({"x:p=-2..2..2"})) ==
          std::vector<std::string>{"x:p=-2", "x:p=0", "x:p=2"});
  REQUIRE(labels(with_methods({"x:p=0.5..2"})) == std::vector<std::string>{"x:p=0.5", "x:p=1.5"});
  REQUIRE(labels(with_methods({"x:p=1..3"})).size() == 3);
}

TEST_CASE("cases are model-major, then task, then method, with unique stable keys", "[sweep]") {
  const Sweep sweep = parse_sweep(kTwoByTwo, "two.yaml");
  const std::vector<SweepCase> cases = sweep.cases();
  REQUIRE(cases.size() == 2 * 2 * 3);
  const std::vector<std::string> expected = {"a vniah dense",
                                             "a vniah a_shape:sink=64,local=256",
                                             "a vniah a_shape:sink=64,local=512",
                                             "a videoqa dense",
                                             "a videoqa a_shape:sink=64,local=256",
                                             "a videoqa a_shape:sink=64,local=512",
                                             "b vniah dense",
                                             "b vniah a_shape:sink=64,local=256",
                                             "b vniah a_shape:sink=64,local=512",
                                             "b videoqa dense",
                                             "b videoqa a_shape:sink=64,local=256",
                                             "b videoqa a_shape:sink=64,local=512"};
  for (size_t i = 0; i < cases.size(); ++i) {
    REQUIRE(cases[i].index == static_cast<int>(i));
    REQUIRE(cases[i].model.name + " " + cases[i].task.name + " " + cases[i].method.label() ==
            expected[i]);
  }
  const std::vector<std::string> k = keys(cases);
  REQUIRE(std::set<std::string>(k.begin(), k.end()).size() == k.size());
  REQUIRE(k[0] ==
          "a bf16 | dense | vniah depths=0,0.5,1 frames=8,16 haystack=generated needle=choice "
          "max_pixels=602112 min_pixels=100352 fps=2 max_frames=768");
  REQUIRE(k[6].rfind("b auto seed=7 | dense | vniah", 0) == 0);
  REQUIRE(keys(parse_sweep(kTwoByTwo, "elsewhere.yaml").cases()) == k);

  // Equal values written differently give the same key; the device and path are not part of it.
  std::string respelled = kTwoByTwo;
  respelled.replace(respelled.find("\"0..1..0.5\""), 11, "[0.0, 0.50, 1]");
  respelled.replace(respelled.find("models/a, dtype: bf16"), 21, "/x/a, dtype: bf16, device: cuda");
  REQUIRE(keys(parse_sweep(respelled, "two.yaml").cases()) == k);
  std::string other_dtype = kTwoByTwo;
  other_dtype.replace(other_dtype.find("bf16"), 4, "fp16");
  REQUIRE(keys(parse_sweep(other_dtype, "two.yaml").cases())[0] != k[0]);
}

TEST_CASE("shards partition the cases", "[sweep]") {
  const Sweep sweep = parse_sweep(kTwoByTwo, "two.yaml");
  const std::vector<SweepCase> all = sweep.cases();
  for (int n : {1, 2, 3, 5, 12, 13}) {
    std::set<int> seen;
    for (int i = 0; i < n; ++i) {
      int previous = -1;
      for (const SweepCase& c : sweep.shard(i, n)) {
        REQUIRE(c.index % n == i);
        REQUIRE(c.index > previous);  // in the sweep's order
        REQUIRE(c.key() == all.at(c.index).key());
        REQUIRE(seen.insert(c.index).second);  // disjoint
        previous = c.index;
      }
    }
    REQUIRE(seen.size() == all.size());  // together, every case
  }
  REQUIRE(sweep.shard(12, 13).empty());
  REQUIRE_THROWS_AS(sweep.shard(2, 2), std::invalid_argument);
  REQUIRE_THROWS_AS(sweep.shard(-1, 2), std::invalid_argument);
  REQUIRE_THROWS_AS(sweep.shard(0, 0), std::invalid_argument);
}

TEST_CASE("the resolved YAML parses back to the same cases", "[sweep]") {
  const std::vector<Sweep> sweeps = {
      parse_sweep(kTwoByTwo, "two.yaml"),
      with_methods({"{name: vertical_slash, n_vertical: \"1000..3000..1000\", n_slash: [1, 2]}",
                    "{name: grid, strides: [[0, 16]], lines: [v, vs]}",
                    "{name: mminference, table: \"a b/../c,d.yaml\"}"}),
      load_sweep(source_path("configs/quickstart.yaml")),
      load_sweep(source_path("configs/examples/latency_7b.yaml")),
      load_sweep(source_path("configs/examples/videoqa.yaml")),
  };
  for (const Sweep& sweep : sweeps) {
    const std::string resolved = sweep.resolved_yaml();
    INFO(resolved);
    const Sweep again = parse_sweep(resolved, sweep.source_path);
    REQUIRE(again.name == sweep.name);
    REQUIRE(again.output == sweep.output);
    REQUIRE(labels(again) == labels(sweep));
    REQUIRE(keys(again.cases()) == keys(sweep.cases()));
    for (size_t m = 0; m < sweep.models.size(); ++m) {
      REQUIRE(again.models[m].path == sweep.models[m].path);
      REQUIRE(again.models[m].random == sweep.models[m].random);
      REQUIRE(again.models[m].device == sweep.models[m].device);
    }
    REQUIRE(again.resolved_yaml() == resolved);  // nothing left to expand
  }
}

TEST_CASE("context settings: sweep defaults, task overrides, and lists", "[sweep]") {
  const Sweep sweep = parse_sweep(kModel + R"(methods: [dense]
context: {max_pixels: "100352,200704", fps: 1}
tasks:
  - {name: vniah, frames: 8, depths: 0.5}
  - {name: videoqa, manifest: qa.jsonl, context: {max_frames: 64, max_pixels: 401408}}
)",
                                  "sweep.yaml");
  REQUIRE(sweep.tasks.size() == 3);  // the V-NIAH task at both pixel budgets, Video-QA at its own
  REQUIRE(sweep.tasks[0].context.max_pixels == 100352);
  REQUIRE(sweep.tasks[1].context.max_pixels == 200704);
  REQUIRE(sweep.tasks[0].context.fps == 1.0);
  REQUIRE(sweep.tasks[0].context.max_frames == 768);
  REQUIRE(sweep.tasks[2].context.max_pixels == 401408);
  REQUIRE(sweep.tasks[2].context.max_frames == 64);
  REQUIRE(sweep.tasks[2].context.describe() == "pixels 100352-401408, 1 fps, <= 64 frames");
}

TEST_CASE("task settings are normalised, defaults filled in, grids summarised", "[sweep]") {
  const Sweep sweep = parse_sweep(kModel + R"(methods: [dense]
tasks:
  - {name: vniah, frames: "8,16", depths: [0, 1]}
  - {name: mmniah, frames: 32, depths: "0..1..0.5", haystack: videos/haystack.mp4}
  - {name: videoqa, manifest: "data/a,b.jsonl", subtitles: true, limit: 10}
  - {name: caption, manifest: c.jsonl, frames: [16, 32], prompt: Describe it.}
)",
                                  "sweep.yaml");
  const TaskSpec& vniah = sweep.tasks.at(0);
  REQUIRE(vniah.params.at("frames").as<std::vector<int64_t>>() == std::vector<int64_t>{8, 16});
  REQUIRE(vniah.params.at("depths").as<std::vector<double>>() == std::vector<double>{0, 1});
  REQUIRE(vniah.params.at("needle").as<std::string>() == "choice");
  REQUIRE(vniah.params.at("haystack").as<std::string>() == "generated");
  REQUIRE(vniah.grid_summary() == "frames 8,16 x depths 0,1 = 4 samples");
  REQUIRE(vniah.grid_size() == 4);
  const TaskSpec& mmniah = sweep.tasks.at(1);
  REQUIRE(mmniah.params.at("text_share").as<std::vector<double>>() == std::vector<double>{0.25});
  REQUIRE(mmniah.params.at("needle").as<std::string>() == "image_choice");
  REQUIRE(mmniah.params.count("prose") == 0);  // the runner's default book
  REQUIRE(mmniah.params.at("haystack").as<std::string>() == "videos/haystack.mp4");
  REQUIRE(mmniah.grid_summary() == "frames 32 x depths 0,0.5,1 x text_share 0.25 = 3 samples");
  const TaskSpec& videoqa = sweep.tasks.at(2);
  REQUIRE(videoqa.params.at("manifest").as<std::string>() == "data/a,b.jsonl");
  REQUIRE(videoqa.params.at("subtitles").as<bool>());
  REQUIRE(videoqa.params.at("limit").as<int64_t>() == 10);
  REQUIRE(videoqa.params.count("frames") == 0);  // sampled by the context's fps and frame cap
  REQUIRE(videoqa.grid_summary() == "per manifest item");
  REQUIRE(sweep.tasks.at(3).grid_summary() == "frames 16,32 per manifest item");
  REQUIRE(sweep.tasks.at(3).params.at("prompt").as<std::string>() == "Describe it.");
}

TEST_CASE("validation errors name the file, the line and the key", "[sweep]") {
  const std::string methods = "methods:\n  - dense\n";  // lines 3-4 after kModel
  struct Bad {
    std::string yaml, where, message;
  };
  const std::vector<Bad> cases = {
      {"- a\n- b\n", "sweep.yaml:1:", "a sweep is a map"},
      {"models: [\n", "sweep.yaml:2:", "malformed YAML"},
      {kModel + methods + kTask + "modles: []\n", "sweep.yaml:7:1",
       "unknown key 'modles' (known: name, description, output, context, models, methods, tasks)"},
      {kModel + methods + kTask + "models: []\n", "sweep.yaml:7:", "'models' is given twice"},
      {methods + kTask, "sweep.yaml:1:", "missing 'models:'"},
      {kModel + kTask, "sweep.yaml:1:", "missing 'methods:'"},
      {kModel + methods, "sweep.yaml:1:", "missing 'tasks:'"},
      {kModel + "methods: []\n" + kTask, "sweep.yaml:3:", "'methods' is empty"},
      {kModel + "methods:\n" + kTask, "sweep.yaml:3:1", "'methods' has no value"},
      {kModel + methods + "tasks: {name: vniah}\n", "sweep.yaml:5:", "'tasks' must be a list"},
      {"models:\n  - {name: m}\n" + methods + kTask,
       "sweep.yaml:2:", "model 'm': give exactly one of 'path'"},
      {"models:\n  - {name: m, path: p, random: r}\n" + methods + kTask,
       "sweep.yaml:2:", "exactly one of 'path' (a Hugging Face folder) and 'random'"},
      {kModel + "  - {name: m, path: x}\n" + methods + kTask,
       "sweep.yaml:3:", "model name 'm' is used twice (first at line 2)"},
      {"models:\n  - {name: m, random: r, dtype: fp8}\n" + methods + kTask,
       "sweep.yaml:2:", "'dtype' must be auto, fp32, bf16 or fp16"},
      {"models:\n  - {name: m, random: r, device: gpu}\n" + methods + kTask,
       "sweep.yaml:2:", "'device' must be auto, cpu, cuda or cuda:N"},
      {"models:\n  - {name: m, random: r, seed: -1}\n" + methods + kTask,
       "sweep.yaml:2:", "'seed' must be an integer >= 0"},
      {"models:\n  - {name: m, random: r, weights: w}\n" + methods + kTask,
       "sweep.yaml:2:", "model: unknown key 'weights'"},
      {kModel + "methods:\n  - {name: a_shape, local: \"512..256\"}\n" + kTask,
       "sweep.yaml:4:", "parameter 'local': malformed range '512..256': descending"},
      {kModel + "methods:\n  - a_shape:local=0..10..0\n" + kTask,
       "sweep.yaml:4:", "malformed range '0..10..0': the step must be positive"},
      {kModel + "methods:\n  - a_shape:local=0..10..-2\n" + kTask,
       "sweep.yaml:4:", "the step must be positive"},
      {kModel + "methods:\n  - a_shape:local=1..x\n" + kTask,
       "sweep.yaml:4:", "malformed range '1..x': 'x' is not a number"},
      {kModel + "methods:\n  - a_shape:local=1..2..3..4\n" + kTask,
       "sweep.yaml:4:", "expected start..end or start..end..step"},
      {kModel + "methods:\n  - a_shape:local=0..20000\n" + kTask,
       "sweep.yaml:4:", "more than 10000 values"},
      {kModel + "methods:\n  - a_shape:local=0..99999999999999999999\n" + kTask,
       "sweep.yaml:4:", "'99999999999999999999' is too large"},
      {kModel + "methods:\n  - {name: a_shape, sink: \"1..200\", local: \"1..100\"}\n" + kTask,
       "sweep.yaml:4:", "method a_shape expands to more than 10000 combinations"},
      {kModel + "methods:\n  - a_shape:sink\n" + kTask, "sweep.yaml:4:", "expected NAME:key=value"},
      {kModel + "methods:\n  - a_shape:sink=64,sink=32\n" + kTask,
       "sweep.yaml:4:", "parameter 'sink' is given twice"},
      {kModel + "methods:\n  - {name: a_shape, local: \"256,,512\"}\n" + kTask,
       "sweep.yaml:4:", "parameter 'local': empty item"},
      {kModel + "methods:\n  - {name: mminference, default: {pattern: grid}}\n" + kTask,
       "sweep.yaml:4:", "parameter 'default': a map is not a parameter value"},
      {kModel + "methods:\n  - {sink: 64}\n" + kTask, "sweep.yaml:4:", "method: missing 'name:'"},
      {kModel + "methods:\n  - {name: \"a_shape:sink=64\"}\n" + kTask,
       "sweep.yaml:4:", "'name: a_shape:sink=64' must be a bare name"},
      {kModel + "methods:\n  - dense\n  - {name: dense}\n" + kTask,
       "sweep.yaml:5:", "method dense is listed twice (first at line 4)"},
      {kModel + methods + "tasks:\n  - {name: eventqa, frames: 4}\n",
       "sweep.yaml:6:", "task eventqa: 'frames' expects integers >= 8, got '4'"},
      {kModel + methods + "tasks:\n  - {name: eventqa, frames: 8, questions: [color, size]}\n",
       "sweep.yaml:6:", "expects some of: color, count, motion, got 'size'"},
      {kModel + methods + "tasks:\n  - {name: vqa}\n",
       "sweep.yaml:6:", "unknown task 'vqa' (one of vniah, mmniah, eventqa, videoqa, caption)"},
      {kModel + methods + "tasks:\n  - vniah\n",
       "sweep.yaml:6:", "each entry is a map with 'name:'"},
      {kModel + methods + "tasks:\n  - {name: vniah, frames: abc, depths: 0}\n",
       "sweep.yaml:6:", "task vniah: 'frames' expects integers >= 1, got 'abc'"},
      {kModel + methods + "tasks:\n  - {name: vniah, frames: [8, 0], depths: 0}\n",
       "sweep.yaml:6:", "'frames' expects integers >= 1, got '0'"},
      {kModel + methods + "tasks:\n  - {name: vniah, frames: 8, depths: 1.5}\n",
       "sweep.yaml:6:", "'depths' expects numbers in [0, 1], got '1.5'"},
      {kModel + methods + "tasks:\n  - {name: vniah, frames: 8, depths: \"0..2..x\"}\n",
       "sweep.yaml:6:", "'depths': malformed range"},
      {kModel + methods + "tasks:\n  - {name: vniah, frames: 8, depths: 0, needle: open}\n",
       "sweep.yaml:6:", "'needle' expects one of: choice, short, got 'open'"},
      {kModel + methods + "tasks:\n  - {name: vniah, frames: 8}\n",
       "sweep.yaml:6:", "task vniah: missing 'depths'"},
      {kModel + methods + "tasks:\n  - {name: videoqa, frames: 8}\n",
       "sweep.yaml:6:", "task videoqa: missing 'manifest'"},
      {kModel + methods + "tasks:\n  - {name: videoqa, manifest: q, subtitles: maybe}\n",
       "sweep.yaml:6:", "'subtitles' expects true or false, got 'maybe'"},
      {kModel + methods + "tasks:\n  - {name: mmniah, frames: 8, depths: 0, needle: choice}\n",
       "sweep.yaml:6:",
       "'needle' expects one of: image_choice, image_short, text_choice, text_short, got 'choice'"},
      {kModel + methods + "tasks:\n  - {name: mmniah, frames: 8, depths: 0, text_share: 1}\n",
       "sweep.yaml:6:", "task mmniah: 'text_share' expects numbers in (0, 1), got '1'"},
      {kModel + methods + "tasks:\n  - {name: vniah, frames: 8, depths: 0, text_share: 0.5}\n",
       "sweep.yaml:6:", "task vniah: unknown key 'text_share' (known: name, context, frames"},
      {kModel + methods + kTask + "  - {name: vniah, frames: 8, depths: 0.5}\n",
       "sweep.yaml:7:", "task vniah with these settings is listed twice (first at line 6)"},
      {kModel + methods + kTask + "context: {pixels: 3}\n", "sweep.yaml:7:",
       "context: unknown key 'pixels' (known: max_pixels, min_pixels, fps, max_frames)"},
      {kModel + methods + kTask + "context: {fps: 0}\n",
       "sweep.yaml:7:", "context 'fps' expects numbers > 0, got '0'"},
      {kModel + methods + kTask + "context: {min_pixels: 1000, max_pixels: 10}\n",
       "sweep.yaml:7:", "min_pixels 1000 is above max_pixels 10"},
      {kModel + methods +
           "tasks:\n  - name: vniah\n    frames: 8\n    depths: 0\n    context: {max_frames: x}\n",
       "sweep.yaml:9:27", "task vniah: context 'max_frames' expects integers >= 1, got 'x'"},
  };
  for (const Bad& bad : cases) {
    INFO(bad.yaml);
    REQUIRE_THROWS_AS(parse_sweep(bad.yaml, "sweep.yaml"), SweepError);
    REQUIRE_THROWS_WITH(parse_sweep(bad.yaml, "sweep.yaml"),
                        Contains(bad.where) && Contains(bad.message));
  }
  REQUIRE_THROWS_WITH(load_sweep("no/such/sweep.yaml"),
                      Contains("no/such/sweep.yaml") && Contains("cannot open"));
}

TEST_CASE("method errors from the registry name the line of the method's entry", "[sweep]") {
  const Sweep sweep = with_methods({"dense", "{name: a_shape, sink: 64}", "bogus:x=1,2"});
  std::vector<std::string> seen;
  const auto check = [&](const MethodSpec& method) {
    seen.push_back(method.label());
    if (method.name == "bogus") throw std::invalid_argument("unknown attention method 'bogus'");
  };
  REQUIRE_THROWS_WITH(sweep.validate_methods(check),
                      Contains("sweep.yaml:6:5: method bogus:x=1: unknown attention method"));
  REQUIRE(seen == std::vector<std::string>{"dense", "a_shape:sink=64", "bogus:x=1"});
  REQUIRE_NOTHROW(with_methods({"dense"}).validate_methods(check));
  REQUIRE(sweep.where(sweep.methods.at(1).mark) == "sweep.yaml:5:5");
}

TEST_CASE("the dry-run table lists every case with its grid and extra columns", "[sweep]") {
  const Sweep sweep = parse_sweep(kTwoByTwo, "two.yaml");
  const std::string table = describe_cases(sweep);
  REQUIRE_THAT(table, Contains("#   model  method"));
  REQUIRE_THAT(table, Contains("1   a      a_shape:sink=64,local=256  vniah    "
                               "frames 8,16 x depths 0,0.5,1 = 6 samples"));
  REQUIRE_THAT(table, Contains("frames 32 per manifest item"));
  REQUIRE_THAT(table, Contains("pixels 100352-602112, 2 fps, <= 768 frames"));
  REQUIRE_THAT(table, Contains("12 cases\n(2 models x 3 methods x 2 tasks)\n"));
  const std::vector<CaseColumn> extra = {
      {"tokens", [](const SweepCase& c) { return std::to_string(100 * c.index); }}};
  const std::string shard = describe_cases(sweep.shard(1, 4), extra);
  REQUIRE_THAT(shard, Contains("tokens"));
  REQUIRE_THAT(shard, Contains("500\n"));
  REQUIRE_THAT(shard, Contains("\n3 cases\n"));
}

TEST_CASE("the quickstart and example sweeps parse", "[sweep]") {
  const Sweep quick = load_sweep(source_path("configs/quickstart.yaml"));
  REQUIRE(quick.name == "quickstart");
  REQUIRE(quick.models.size() == 1);
  REQUIRE(quick.models[0].dtype == "fp32");
  REQUIRE(quick.models[0].device == "cpu");
  REQUIRE(std::ifstream(source_path(quick.models[0].path + "/config.json")).good());
  std::set<std::string> names;
  for (const auto& method : quick.methods) {
    names.insert(method.name);
    if (method.params["table"]) {
      REQUIRE(std::ifstream(source_path(method.params["table"].as<std::string>())).good());
    }
  }
  REQUIRE(names == std::set<std::string>{"dense", "a_shape", "tri_shape", "sf_fixed", "sf_strided",
                                         "vertical_slash", "grid", "mminference"});
  std::set<std::string> tasks;
  for (const auto& task : quick.tasks) tasks.insert(task.name);
  REQUIRE(tasks == std::set<std::string>{"vniah", "mmniah"});
  REQUIRE(quick.cases().size() == quick.methods.size() * 2);

  const Sweep latency = load_sweep(source_path("configs/examples/latency_7b.yaml"));
  REQUIRE(latency.models.at(0).random == "qwen2.5-vl-7b");
  REQUIRE(latency.tasks.size() == 2);  // two pixel budgets
  const Sweep videoqa = load_sweep(source_path("configs/examples/videoqa.yaml"));
  REQUIRE(videoqa.tasks.size() == 3);
}
