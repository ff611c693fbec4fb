// The method registry and YAML configuration: every method end to end against the oracle, and clear
// errors for unknown names, parameters and malformed tables.
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <fstream>

#include "kernels/method.h"
#include "kernels/method_config.h"
#include "kernels/metrics.h"
#include "kernels/synthetic.h"
#include "tests/catch.h"
#include "tests/kernels/attention_testing.h"
#include "tests/temp_dir.h"

using namespace mmi;
using mmi::testing::scratch_file;


TEST_CASE("every registered method plans and runs exactly its mask", "[method][exact]") {
  const SequenceLayout layout = SequenceLayout::parse("text:40,video:6x4x6,text:20,video:3x4x6,text:25");
  SyntheticOptions o;
  o.heads = 6;
  o.kv_heads = 2;
  o.head_dim = 32;
  o.seed = 9;
  const QKV x = make_qkv(layout, o);
  const AttentionContext ctx{&layout, 0};
  const std::vector<std::string> specs = {
      "dense",
      "a_shape:sink=16,local=48",
      "tri_shape:sink=16,local=48,last_rows=20",
      "sf_fixed",
      "sf_fixed:block=32,block_head=3",
      "sf_fixed:block=30,block_head=11",
      "sf_strided",
      "vertical_slash:n_vertical=60,n_slash=40",
      "vertical_slash:n_vertical=60,n_slash=40,boundary=q",
      "vertical_slash:n_vertical=40,n_slash=30,last_q=16,boundary=2d",
      "grid:lines=vhs,local=32",
      "grid:strides=0|6,lines=v,local=40,boundary=q",
  };
  for (const std::string& spec : specs) {
    INFO(spec);
    const auto method = make_method_from_spec(spec);
    const std::vector<ResolvedHead> resolved = method->resolve(ctx, x.q, x.k);
    const SparsePlan plan = build_plan(layout, resolved);
    const AttentionOutput got = method->run(plan, x.q, x.k, x.v);
    const AttentionOutput want = masked_attention_reference(x.q, x.k, x.v, testing::oracle_mask(layout, resolved));
    REQUIRE(relative_error(got.out, want.out) <= 1e-5);
    const SparsePlan planned = method->plan(ctx, x.q, x.k);  // the public path builds the same plan
    REQUIRE(plan_stats(planned).kept_elements == plan_stats(plan).kept_elements);
  }
}

TEST_CASE("mminference reads a per-layer, per-head table", "[method][config]") {
  const char* text = R"(
model: synthetic
default: {pattern: a_shape, sink: 8, local: 16}
layers:
  0:
    0: {pattern: grid, strides: [0], lines: v, local: 16, boundary: none, score: 0.9}
    1: {pattern: vertical_slash, n_vertical: 40, n_slash: 40, boundary: q}
  1:
    0: {boundary: 2d, patterns: {video->video: {pattern: grid, lines: vs, local: 12}, text->text: {pattern: vertical_slash}}, pattern: a_shape, local: 20}
    1: {boundary: q, patterns: {text: {pattern: tri_shape, last_rows: 10}, video: {pattern: sf_strided}}}
)";
  const PatternTable table = PatternTable::parse(YAML::Load(text), "test table");
  REQUIRE(table.num_entries() == 4);
  REQUIRE(table.head(0, 0).patterns[0][0].kind == PatternKind::kGrid);
  REQUIRE(table.head(0, 1).boundary == BoundaryKind::kQ);
  REQUIRE(table.head(5, 3).patterns[0][0].kind == PatternKind::kAShape);  // the default
  const HeadConfig two_d = table.head(1, 0);
  REQUIRE(two_d.boundary == BoundaryKind::k2D);
  REQUIRE(two_d.patterns[int(Modality::kVideo)][int(Modality::kVideo)].grid_local == 12);
  REQUIRE(two_d.patterns[int(Modality::kVideo)][int(Modality::kText)].kind == PatternKind::kAShape);
  REQUIRE(two_d.patterns[int(Modality::kVideo)][int(Modality::kText)].local == 20);

  const SequenceLayout layout = SequenceLayout::parse("text:30,video:5x4x5,text:30");
  const testing::RandomQKV x = testing::random_qkv(layout.length(), 2, 1, 16, 4);
  YAML::Node params;
  params["layers"] = YAML::Load(text)["layers"];
  const auto method = make_method("mminference", params);
  for (int layer = 0; layer < 2; ++layer) {
    const AttentionContext ctx{&layout, layer};
    const std::vector<ResolvedHead> resolved = method->resolve(ctx, x.q, x.k);
    const AttentionOutput got = method->run(build_plan(layout, resolved), x.q, x.k, x.v);
    const AttentionOutput want = masked_attention_reference(x.q, x.k, x.v, testing::oracle_mask(layout, resolved));
    REQUIRE(relative_error(got.out, want.out) <= 1e-5);
  }
  REQUIRE_THROWS_WITH(method->head_config(AttentionContext{&layout, 3}, 0), Contains("no entry for layer 3 head 0"));
}

TEST_CASE("mminference loads its table from a file", "[method][config]") {
  const std::string path = scratch_file("mmi_test_table.yaml");
  std::ofstream(path) << "default: {pattern: vertical_slash, n_vertical: 10}\n";
  YAML::Node params;
  params["table"] = path;
  REQUIRE(make_method("mminference", params)->describe() == "mminference(table=" + path + ")");
  std::ofstream(path) << "layers:\n  0:\n    0: {pattern: grid, lines: q}\n";
  REQUIRE_THROWS_WITH(make_method("mminference", params),
                      Contains("mmi_test_table.yaml: layer 0 head 0") && Contains("lines") && Contains("line 3"));
  std::ofstream(path) << "layers: [1, 2\n";
  REQUIRE_THROWS_WITH(make_method("mminference", params), Contains("mmi_test_table.yaml: malformed YAML"));
  std::remove(path.c_str());
  REQUIRE_THROWS_WITH(make_method("mminference", params), Contains("cannot open"));
}

TEST_CASE("bad method names and parameters are named in the error", "[method][config]") {
  REQUIRE_THROWS_WITH(make_method("flash"), Contains("unknown attention method 'flash'") && Contains("a_shape") &&
                                                Contains("mminference"));
  REQUIRE_THROWS_WITH(make_method_from_spec("a_shape:sinks=4"),
                      Contains("unknown parameter 'sinks'") && Contains("known: sink, local"));
  REQUIRE_THROWS_WITH(make_method_from_spec("a_shape:local=abc"), Contains("'local' must be an integer, got 'abc'"));
  REQUIRE_THROWS_WITH(make_method_from_spec("a_shape:local=0"), Contains("'local' must be >= 1"));
  REQUIRE_THROWS_WITH(make_method_from_spec("vertical_slash:n_vertical=-1"), Contains("'n_vertical' must be >= 0"));
  REQUIRE_THROWS_WITH(make_method_from_spec("grid:lines=x"), Contains("v, h, s"));
  REQUIRE_THROWS_WITH(make_method_from_spec("grid:boundary=3d"), Contains("unknown boundary kind '3d'"));
  REQUIRE_THROWS_WITH(make_method_from_spec("a_shape:sink"), Contains("key=value"));
  REQUIRE_THROWS_WITH(make_method_from_spec("dense:x=1"), Contains("takes no parameters"));
  REQUIRE_THROWS_WITH(make_method("mminference"), Contains("needs 'table: FILE'"));
  const SequenceLayout text_only = SequenceLayout::parse("text:50");
  const testing::RandomQKV x = testing::random_qkv(50, 1, 1, 8, 1);
  REQUIRE_THROWS_WITH(make_method("sf_fixed")->plan(AttentionContext{&text_only, 0}, x.q, x.k),
                      Contains("no visual span"));
  const SequenceLayout longer = SequenceLayout::parse("text:60");
  REQUIRE_THROWS_WITH(make_method("dense")->plan(AttentionContext{&longer, 0}, x.q, x.k),
                      Contains("layout has 60 tokens but q has 50"));
  REQUIRE(method_names().size() == 8);
}
