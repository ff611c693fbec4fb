// The safetensors reader: every dtype, metadata, sharded and single-file checkpoints, a file
// written by the Python package, one clear error per malformed input, and no crash on truncated or
// mutated files.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "models/safetensors.h"
#include "tasks/files.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

#ifndef MMI_FIXTURES_DIR
#define MMI_FIXTURES_DIR "tests/fixtures"
#endif

using namespace mmi;
using nlohmann::json;

using mmi::testing::TempDir;
using mmi::testing::write_file;

namespace {

std::string little_endian(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(value >> (8 * i));
  return bytes;
}

// Header length, header (space-padded to a multiple of 8 like the reference writer), data.
std::string safetensors_bytes(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  return little_endian(header.size()) + header + data;
}

template <typename T>
std::string raw_bytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// Builds a valid file tensor by tensor, data laid out in the order added.
struct Writer {
  json header = json::object();
  std::string data;

  template <typename T>
  Writer& add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
              const std::vector<T>& values) {
    const std::string bytes = raw_bytes(values);
    header[name] = {{"dtype", dtype},
                    {"shape", shape},
                    {"data_offsets", {data.size(), data.size() + bytes.size()}}};
    data += bytes;
    return *this;
  }
  std::string bytes() const { return safetensors_bytes(header.dump(), data); }
  void write(const std::string& path) const { write_file(path, bytes()); }
};

template <typename T>
T element(const TensorView& tensor, int64_t i) {
  T value;
  std::memcpy(&value, static_cast<const char*>(tensor.data) + i * sizeof(T), sizeof(T));
  return value;
}

uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

// Touches every byte of every tensor, so that the sanitizers see any view past the mapping.
uint64_t checksum(const SafetensorsFile& file) {
  uint64_t sum = 0;
  for (const TensorView& tensor : file.tensors()) {
    for (size_t i = 0; i < tensor.nbytes; ++i)
      sum += static_cast<const unsigned char*>(tensor.data)[i];
  }
  return sum;
}

}  // namespace

TEST_CASE("every dtype round-trips, f16 and bf16 bit patterns decode exactly", "[safetensors]") {
  TempDir dir;
  std::mt19937 rng(7);
  std::normal_distribution<double> normal;
  std::vector<double> f64(6);
  std::vector<float> f32(15);
  for (double& v : f64) v = normal(rng) * 1e100;
  for (float& v : f32) v = static_cast<float>(normal(rng));
  // f16: 1, -2, 1/3 rounded, max, smallest and largest subnormal, smallest normal, -0, +-inf.
  const std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001,
                                     0x03ff, 0x0400, 0x8000, 0x7c00, 0xfc00};
  const std::vector<float> f16_values = {1.0f,
                                         -2.0f,
                                         0.333251953125f,
                                         65504.0f,
                                         std::ldexp(1.0f, -24),
                                         std::ldexp(1023.0f, -24),
                                         std::ldexp(1.0f, -14),
                                         -0.0f,
                                         INFINITY,
                                         -INFINITY};
  // bf16: 1, -3, 0.1 rounded, the largest finite, the smallest subnormal, +-inf.
  const std::vector<uint16_t> bf16 = {0x3f80, 0xc040, 0x3dcd, 0x7f7f, 0x0001, 0x7f80, 0xff80};
  const std::vector<float> bf16_values = {
      1.0f,     -3.0f,    0.10009765625f, 3.3895313892515355e38f, std::ldexp(1.0f, -133),
      INFINITY, -INFINITY};
  const std::vector<int64_t> i64 = {std::numeric_limits<int64_t>::min(), -1, 1LL << 40,
                                    std::numeric_limits<int64_t>::max()};
  const std::vector<int32_t> i32 = {-2147483647 - 1, -5, 123456, 2147483647};
  const std::vector<int16_t> i16 = {-32768, -3, 32767};
  const std::vector<int8_t> i8 = {-128, -1, 127};
  const std::vector<uint8_t> u8 = {0, 1, 200, 255};
  const std::vector<uint8_t> flags = {1, 0, 1};
  const std::vector<uint8_t> e4m3 = {0x38, 0xb8, 0x7e};
  const std::vector<uint8_t> e5m2 = {0x3c, 0xbc, 0x7b};
  Writer()
      .add("f64", "F64", {2, 3}, f64)
      .add("f32", "F32", {3, 5}, f32)
      .add("f16", "F16", {10}, f16)
      .add("bf16", "BF16", {7, 1}, bf16)
      .add("i64", "I64", {4}, i64)
      .add("i32", "I32", {2, 2}, i32)
      .add("i16", "I16", {3}, i16)
      .add("i8", "I8", {3}, i8)
      .add("u8", "U8", {2, 2}, u8)
      .add("bool", "BOOL", {3}, flags)
      .add("f8_e4m3", "F8_E4M3", {3}, e4m3)
      .add("f8_e5m2", "F8_E5M2", {1, 3}, e5m2)
      .add("scalar", "F32", {}, std::vector<float>{2.5f})
      .add("empty", "F16", {0, 4}, std::vector<uint16_t>{})
      .write(dir.file("all.safetensors"));
  const SafetensorsFile file(dir.file("all.safetensors"));

  REQUIRE(file.tensors().size() == 14);
  const TensorView& t64 = file.get("f64");
  REQUIRE((t64.dtype == DType::F64 && t64.shape == std::vector<int64_t>{2, 3} && t64.nbytes == 48));
  for (int64_t i = 0; i < 6; ++i) {
    REQUIRE(element<double>(t64, i) == f64[i]);
    REQUIRE(read_as_float(t64, i) == static_cast<float>(f64[i]));
  }
  const TensorView& t32 = file.get("f32");
  REQUIRE((t32.dtype == DType::F32 && t32.numel() == 15 && t32.nbytes == 60));
  for (int64_t i = 0; i < 15; ++i) REQUIRE(read_as_float(t32, i) == f32[i]);
  const TensorView& t16 = file.get("f16");
  REQUIRE(t16.dtype == DType::F16);
  for (int64_t i = 0; i < 10; ++i) {
    INFO("f16 bits 0x" << std::hex << f16[i]);
    REQUIRE(float_bits(read_as_float(t16, i)) ==
            float_bits(f16_values[i]));  // also tells -0 from 0
  }
  const uint16_t nan16 = 0x7e00;
  REQUIRE(std::isnan(read_as_float(TensorView{"nan", DType::F16, {1}, &nan16, 2}, 0)));
  const TensorView& tb16 = file.get("bf16");
  REQUIRE((tb16.dtype == DType::BF16 && tb16.shape == std::vector<int64_t>{7, 1}));
  for (int64_t i = 0; i < 7; ++i) {
    INFO("bf16 bits 0x" << std::hex << bf16[i]);
    REQUIRE(float_bits(read_as_float(tb16, i)) == float_bits(bf16_values[i]));
  }
  for (int64_t i = 0; i < 4; ++i) REQUIRE(element<int64_t>(file.get("i64"), i) == i64[i]);
  for (int64_t i = 0; i < 4; ++i) REQUIRE(element<int32_t>(file.get("i32"), i) == i32[i]);
  for (int64_t i = 0; i < 3; ++i) {
    REQUIRE(element<int16_t>(file.get("i16"), i) == i16[i]);
    REQUIRE(element<int8_t>(file.get("i8"), i) == i8[i]);
    REQUIRE(element<uint8_t>(file.get("bool"), i) == flags[i]);
    REQUIRE(element<uint8_t>(file.get("f8_e4m3"), i) == e4m3[i]);
    REQUIRE(element<uint8_t>(file.get("f8_e5m2"), i) == e5m2[i]);
  }
  for (int64_t i = 0; i < 4; ++i) REQUIRE(element<uint8_t>(file.get("u8"), i) == u8[i]);
  REQUIRE(file.get("bool").dtype == DType::BOOL);
  REQUIRE(file.get("f8_e4m3").dtype == DType::F8_E4M3);
  REQUIRE(file.get("f8_e5m2").dtype == DType::F8_E5M2);
  REQUIRE((file.get("scalar").shape.empty() && file.get("scalar").numel() == 1));
  REQUIRE(read_as_float(file.get("scalar"), 0) == 2.5f);
  REQUIRE((file.get("empty").numel() == 0 && file.get("empty").nbytes == 0));

  for (DType dtype :
       {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16,
        DType::I8, DType::U8, DType::BOOL, DType::F8_E4M3, DType::F8_E5M2}) {
    DType parsed;
    REQUIRE(parse_dtype(dtype_name(dtype), &parsed));
    REQUIRE(parsed == dtype);
  }
  REQUIRE(dtype_size(DType::BF16) == 2);
  REQUIRE(dtype_size(DType::F8_E5M2) == 1);
  REQUIRE_THROWS_WITH(read_as_float(file.get("i64"), 0), Contains("does not support I64"));
  REQUIRE_THROWS_WITH(read_as_float(t32, 15), Contains("element 15 out of range"));
}

TEST_CASE("metadata, file order, lookups and moves", "[safetensors]") {
  TempDir dir;
  Writer writer;
  writer.add("z_first", "F32", {2}, std::vector<float>{1.25f, -4.0f})
      .add("a_second", "I32", {1}, std::vector<int32_t>{17});
  writer.header["__metadata__"] = {{"format", "pt"}, {"note", "hello"}};
  const std::string path = dir.file("meta.safetensors");
  writer.write(path);

  SafetensorsFile file(path);
  REQUIRE(file.path() == path);
  REQUIRE(file.metadata() ==
          std::map<std::string, std::string>{{"format", "pt"}, {"note", "hello"}});
  REQUIRE(file.tensors().size() == 2);           // __metadata__ is no tensor
  REQUIRE(file.tensors()[0].name == "z_first");  // file order, not name order
  REQUIRE(file.tensors()[1].name == "a_second");
  REQUIRE(file.find("missing") == nullptr);
  REQUIRE(file.find("a_second") == &file.tensors()[1]);
  REQUIRE_THROWS_WITH(file.get("missing"), Contains(path) && Contains("no tensor 'missing'"));

  std::vector<SafetensorsFile> files;
  files.push_back(std::move(file));
  files.emplace_back(path);  // reallocates: views must survive the move
  for (const SafetensorsFile& moved : files) {
    REQUIRE(read_as_float(moved.get("z_first"), 1) == -4.0f);
    REQUIRE(element<int32_t>(moved.get("a_second"), 0) == 17);
  }
}

TEST_CASE("checkpoints: sharded with an index, a single-file folder, a file path",
          "[safetensors]") {
  TempDir dir;
  Writer()
      .add("model.embed.weight", "F32", {2, 2}, std::vector<float>{1, 2, 3, 4})
      .add("model.layers.0.w", "BF16", {2}, std::vector<uint16_t>{0x3f80, 0x4000})
      .write(dir.file("model-00001-of-00002.safetensors"));
  Writer()
      .add("model.layers.1.w", "F16", {1}, std::vector<uint16_t>{0x3c00})
      .add("lm_head.weight", "F32", {1}, std::vector<float>{-7.5f})
      .add("not.in.index", "F32", {1}, std::vector<float>{0.0f})
      .write(dir.file("model-00002-of-00002.safetensors"));
  const json index = {{"metadata", {{"total_size", 28}}},
                      {"weight_map",
                       {{"model.embed.weight", "model-00001-of-00002.safetensors"},
                        {"model.layers.0.w", "model-00001-of-00002.safetensors"},
                        {"model.layers.1.w", "model-00002-of-00002.safetensors"},
                        {"lm_head.weight", "model-00002-of-00002.safetensors"}}}};
  write_file(dir.file("model.safetensors.index.json"), index.dump(2));

  Checkpoint sharded(dir.path());
  REQUIRE(sharded.folder() == dir.path());
  REQUIRE(sharded.files().size() == 2);  // each shard opened once
  REQUIRE(sharded.names() == std::vector<std::string>{"lm_head.weight", "model.embed.weight",
                                                      "model.layers.0.w", "model.layers.1.w"});
  REQUIRE(sharded.contains("model.layers.1.w"));
  REQUIRE_FALSE(sharded.contains("not.in.index"));  // the index decides
  REQUIRE(read_as_float(sharded.get("model.embed.weight"), 3) == 4.0f);
  REQUIRE(read_as_float(sharded.get("model.layers.0.w"), 1) == 2.0f);
  REQUIRE(read_as_float(sharded.get("model.layers.1.w"), 0) == 1.0f);
  REQUIRE(read_as_float(sharded.get("lm_head.weight"), 0) == -7.5f);
  REQUIRE_THROWS_WITH(sharded.get("nope"), Contains(dir.path()) && Contains("no tensor 'nope'"));
  const Checkpoint moved = std::move(sharded);
  REQUIRE(read_as_float(moved.get("lm_head.weight"), 0) == -7.5f);

  TempDir single;
  Writer()
      .add("w", "F32", {3}, std::vector<float>{0.5f, 1.5f, 2.5f})
      .write(single.file("model.safetensors"));
  const Checkpoint folder(single.path());
  REQUIRE(folder.folder() == single.path());
  REQUIRE(folder.names() == std::vector<std::string>{"w"});
  REQUIRE(read_as_float(folder.get("w"), 2) == 2.5f);

  const Checkpoint file(dir.file("model-00002-of-00002.safetensors"));
  REQUIRE(file.folder() == dir.path());
  REQUIRE(file.names() ==
          std::vector<std::string>{"lm_head.weight", "model.layers.1.w", "not.in.index"});
}

TEST_CASE("malformed files: one clear error naming the file and the problem", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  auto open_bytes = [&](const std::string& bytes) {
    write_file(path, bytes);
    return SafetensorsFile(path);
  };
  // One F32 [2] tensor with the given entry fields, in a file of `data_bytes` data bytes.
  auto open_entry = [&](const std::string& entry, size_t data_bytes = 8) {
    return open_bytes(safetensors_bytes("{\"a\":{" + entry + "}}", std::string(data_bytes, '\1')));
  };
  const std::string shape_ok = R"("dtype":"F32","shape":[2],)";

  REQUIRE_THROWS_WITH(
      SafetensorsFile(dir.file("absent.safetensors")),
      Contains(dir.file("absent.safetensors") + ": cannot open") && Contains("No such file"));
  REQUIRE_THROWS_WITH(SafetensorsFile(dir.path()), Contains(dir.path() + ": not a regular file"));
  REQUIRE_THROWS_WITH(open_bytes(""), Contains(path + ": empty file"));
  REQUIRE_THROWS_WITH(open_bytes("12345"),
                      Contains(path + ": file of 5 bytes is shorter than its 8-byte"));
  REQUIRE_THROWS_WITH(
      open_bytes(little_endian(1ULL << 63) + "{}      "),
      Contains(path + ": header length 9223372036854775808 past the end of the file (16 bytes)"));
  REQUIRE_THROWS_WITH(open_bytes(little_endian(~0ULL) + "{}"),
                      Contains(path + ": header length 18446744073709551615 past the end"));
  REQUIRE_THROWS_WITH(open_bytes(little_endian(3) + "{}"),
                      Contains(path + ": header length 3 past the end"));
  write_file(path, little_endian(100'000'001));
  REQUIRE(truncate(path.c_str(), 100'000'016) == 0);  // sparse: no 100 MB written
  REQUIRE_THROWS_WITH(SafetensorsFile(path),
                      Contains(path + ": header length 100000001 exceeds the limit of 100000000"));
  REQUIRE_THROWS_WITH(open_bytes(little_endian(0)), Contains(path + ": header is not valid JSON"));
  REQUIRE_THROWS_WITH(open_bytes(safetensors_bytes("{\"a\":", "")),
                      Contains(path + ": header is not valid JSON"));
  REQUIRE_THROWS_WITH(open_bytes(safetensors_bytes("[1, 2]", "")),
                      Contains(path + ": header is not a JSON object"));
  REQUIRE_THROWS_WITH(open_bytes(safetensors_bytes(R"({"a": 3})", "")),
                      Contains(path + ": tensor 'a': entry is not a JSON object"));
  REQUIRE_THROWS_WITH(open_bytes(safetensors_bytes(R"({"__metadata__": [1]})", "")),
                      Contains(path + ": '__metadata__' is not a JSON object"));
  REQUIRE_THROWS_WITH(open_bytes(safetensors_bytes(R"({"__metadata__": {"k": 1}})", "")),
                      Contains(path + ": '__metadata__' value of 'k' is not a string"));

  REQUIRE_THROWS_WITH(open_entry(R"("shape":[2],"data_offsets":[0,8])"),
                      Contains(path + ": tensor 'a': 'dtype' is missing or not a string"));
  REQUIRE_THROWS_WITH(open_entry(R"("dtype":4,"shape":[2],"data_offsets":[0,8])"),
                      Contains(path + ": tensor 'a': 'dtype' is missing or not a string"));
  REQUIRE_THROWS_WITH(open_entry(R"("dtype":"Q4","shape":[2],"data_offsets":[0,8])"),
                      Contains(path + ": tensor 'a': unknown dtype 'Q4'"));
  REQUIRE_THROWS_WITH(open_entry(R"("dtype":"F32","data_offsets":[0,8])"),
                      Contains(path + ": tensor 'a': 'shape' is missing or not an array"));
  REQUIRE_THROWS_WITH(open_entry(R"("dtype":"F32","shape":2,"data_offsets":[0,8])"),
                      Contains(path + ": tensor 'a': 'shape' is missing or not an array"));
  REQUIRE_THROWS_WITH(open_entry(R"("dtype":"F32","shape":[2,-1],"data_offsets":[0,8])"),
                      Contains(path + ": tensor 'a': negative dimension -1"));
  REQUIRE_THROWS_WITH(open_entry(R"("dtype":"F32","shape":[2,1.5],"data_offsets":[0,8])"),
                      Contains(path + ": tensor 'a': 'shape' holds 1.5, not an integer"));
  REQUIRE_THROWS_WITH(open_entry(R"("dtype":"F32","shape":["2"],"data_offsets":[0,8])"),
                      Contains("not an integer"));
  for (const char* shape : {"[4294967296,4294967296,4294967296]", "[4611686018427387904,4]",
                            "[18446744073709551615]", "[9223372036854775808,0]"}) {
    REQUIRE_THROWS_WITH(
        open_entry(std::string(R"("dtype":"F32","shape":)") + shape + R"(,"data_offsets":[0,8])"),
        Contains(path + ": tensor 'a': shape ") && Contains("its byte count overflows"));
  }
  for (const char* offsets :
       {"", R"("data_offsets":8)", R"("data_offsets":[0])", R"("data_offsets":[0,4,8])",
        R"("data_offsets":[8,0])", R"("data_offsets":[-1,8])", R"("data_offsets":["0",8])",
        R"("data_offsets":[0,8.0])"}) {
    INFO(offsets);
    std::string entry = shape_ok + offsets;
    if (entry.back() == ',') entry.pop_back();
    REQUIRE_THROWS_WITH(
        open_entry(entry),
        Contains(path +
                 ": tensor 'a': 'data_offsets' must be [begin, end] with 0 <= begin <= end"));
  }
  REQUIRE_THROWS_WITH(
      open_entry(shape_ok + R"("data_offsets":[8,16])"),
      Contains(path +
               ": tensor 'a': data_offsets end 16 is past the end of the data section (8 bytes)"));
  REQUIRE_THROWS_WITH(open_entry(shape_ok + R"("data_offsets":[0,18446744073709551615])"),
                      Contains("is past the end of the data section"));
  REQUIRE_THROWS_WITH(
      open_entry(R"("dtype":"F32","shape":[3],"data_offsets":[0,8])"),
      Contains(path + ": tensor 'a': dtype/shape mismatch: F32 [3] needs 12 bytes but "
                      "data_offsets span 8"));
  REQUIRE_THROWS_WITH(
      open_entry(R"("dtype":"BF16","shape":[2],"data_offsets":[0,8])"),
      Contains("dtype/shape mismatch: BF16 [2] needs 4 bytes but data_offsets span 8"));

  // Tensor a is F32 [2] at [0, 8]; b is F32 [shape] at [offsets].
  auto overlap = [&](const std::string& shape, const std::string& offsets) {
    const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("b":{"dtype":"F32","shape":[)" +
                               shape + R"(],"data_offsets":[)" + offsets + "]}}";
    return open_bytes(safetensors_bytes(header, std::string(16, '\2')));
  };
  REQUIRE_THROWS_WITH(overlap("2", "4,12"), Contains(path + ": tensors 'a' and 'b' overlap"));
  REQUIRE_THROWS_WITH(overlap("1", "2,6"),
                      Contains(path + ": tensors 'a' and 'b' overlap"));  // inside
  REQUIRE_THROWS_WITH(overlap("2", "0,8"),
                      Contains(path + ": tensors 'a' and 'b' overlap"));  // same
  REQUIRE(overlap("2", "8,16").tensors().size() == 2);                    // adjacent is fine
  REQUIRE(overlap("0", "8,8").tensors().size() == 2);  // so is an empty tensor at a boundary
}

TEST_CASE("malformed checkpoints: errors name the folder, index or shard", "[safetensors]") {
  TempDir dir;
  const std::string index = dir.file("model.safetensors.index.json");
  REQUIRE_THROWS_WITH(Checkpoint(dir.file("absent")),
                      Contains(dir.file("absent") + ": cannot open"));
  REQUIRE_THROWS_WITH(
      Checkpoint(dir.path()),
      Contains(dir.path() + ": holds neither model.safetensors.index.json nor model.safetensors"));
  write_file(dir.file("model.safetensors.tar.xz"), "packed");
  REQUIRE_THROWS_WITH(Checkpoint(dir.path()),
                      Contains(dir.path() + ": holds model.safetensors.tar.xz but not model.safetensors"));
  std::remove(dir.file("model.safetensors.tar.xz").c_str());

  Writer().add("x", "F32", {1}, std::vector<float>{3.0f}).write(dir.file("shard1.safetensors"));
  write_file(index, "{\"weight_map\": ");
  REQUIRE_THROWS_WITH(Checkpoint(dir.path()), Contains(index + ": the index is not valid JSON"));
  for (const char* text : {"[]", "{}", R"({"weight_map": ["x"]})"}) {
    write_file(index, text);
    REQUIRE_THROWS_WITH(Checkpoint(dir.path()),
                        Contains(index + ": 'weight_map' is missing or not a JSON object"));
  }
  write_file(index, R"({"weight_map": {"x": 1}})");
  REQUIRE_THROWS_WITH(Checkpoint(dir.path()),
                      Contains(index + ": weight_map value of 'x' is not a string"));
  write_file(index, R"({"weight_map": {"x": "shard1.safetensors", "y": "shard2.safetensors"}})");
  REQUIRE_THROWS_WITH(Checkpoint(dir.path()),
                      Contains(index + ": shard 'shard2.safetensors' is missing (" +
                               dir.file("shard2.safetensors") + ")"));
  write_file(index, R"({"weight_map": {"x": "shard1.safetensors", "y": "shard1.safetensors"}})");
  REQUIRE_THROWS_WITH(
      Checkpoint(dir.path()),
      Contains(index + ": tensor 'y' is listed in the index but absent from its shard " +
               dir.file("shard1.safetensors")));
  write_file(dir.file("shard2.safetensors"), little_endian(100));
  write_file(index, R"({"weight_map": {"x": "shard1.safetensors", "y": "shard2.safetensors"}})");
  REQUIRE_THROWS_WITH(Checkpoint(dir.path()),
                      Contains(dir.file("shard2.safetensors") + ": header length 100"));
}

TEST_CASE("truncated and mutated files throw std::runtime_error, never crash", "[safetensors]") {
  TempDir dir;
  Writer writer;
  writer.add("w", "F32", {2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6})
      .add("b", "BF16", {3}, std::vector<uint16_t>{0x3f80, 0x4000, 0x4040})
      .add("n", "I64", {2}, std::vector<int64_t>{-1, 1});
  writer.header["__metadata__"] = {{"format", "pt"}};
  const std::string valid = writer.bytes();
  const std::string path = dir.file("fuzz.safetensors");

  for (size_t length = 0; length <= valid.size(); ++length) {
    INFO("truncated to " << length << " of " << valid.size() << " bytes");
    write_file(path, valid.substr(0, length));
    if (length < valid.size()) {
      REQUIRE_THROWS_AS(SafetensorsFile(path), std::runtime_error);
    } else {
      REQUIRE(SafetensorsFile(path).tensors().size() == 3);
    }
  }

  // Overwrite 1-4 bytes of the length prefix or header with JSON-ish characters (to reach the field
  // checks) or random bytes; whatever opens must keep its views inside the file.
  const size_t header_end = valid.size() - writer.data.size();
  const std::string alphabet = "0123456789-+.eE[]{}\",: ";
  std::mt19937 rng(12345);
  int opened = 0, failed = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string bytes = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % header_end;
      bytes[at] = rng() % 2 ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng());
    }
    write_file(path, bytes);
    try {
      const SafetensorsFile file(path);
      checksum(file);
      ++opened;
    } catch (const std::runtime_error& e) {
      REQUIRE(std::string(e.what()).rfind(path + ": ", 0) == 0);
      ++failed;
    }
  }
  REQUIRE(opened + failed == 3000);
  REQUIRE(failed > 1000);  // the mutations do reach the checks
}

TEST_CASE("reads a file written by the Python safetensors package", "[safetensors]") {
  // Generated with (from the repository root):
  // .venv/bin/python -c "
  // import torch; from safetensors.torch import save_file
  // save_file({'f32': torch.tensor([[1.5, -2.25, 3e-5], [1e10, -0.0, 7.0]]), 'scalar':
  // torch.tensor(42.0),
  //   'bf16': torch.tensor([1.0, -2.5, 0.1, 3e38], dtype=torch.bfloat16),
  //   'f16': torch.tensor([[0.1, -65504.0], [6e-8, 1/3]], dtype=torch.float16),
  //   'i64': torch.tensor([-3, 0, 2**40 + 7]), 'u8': torch.tensor([[0, 7], [128, 255]],
  //   dtype=torch.uint8)}, 'tests/fixtures/safetensors/mixed.safetensors', metadata={'format':
  //   'pt', 'producer': 'mmi-test'})"
  // (safetensors 0.8.0, torch 2.11.0)
  const SafetensorsFile file(MMI_FIXTURES_DIR "/safetensors/mixed.safetensors");
  REQUIRE(file.metadata() ==
          std::map<std::string, std::string>{{"format", "pt"}, {"producer", "mmi-test"}});
  std::vector<std::string> order;
  for (const TensorView& tensor : file.tensors()) order.push_back(tensor.name);
  // The writer lays out larger dtypes first, then by name.
  REQUIRE(order == std::vector<std::string>{"i64", "f32", "scalar", "bf16", "f16", "u8"});

  const TensorView& f32 = file.get("f32");
  REQUIRE((f32.dtype == DType::F32 && f32.shape == std::vector<int64_t>{2, 3}));
  const std::vector<float> f32_values = {1.5f, -2.25f, 3e-5f, 1e10f, -0.0f, 7.0f};
  for (int64_t i = 0; i < 6; ++i)
    REQUIRE(float_bits(read_as_float(f32, i)) == float_bits(f32_values[i]));
  REQUIRE((file.get("scalar").shape.empty() && read_as_float(file.get("scalar"), 0) == 42.0f));

  const TensorView& bf16 = file.get("bf16");
  REQUIRE((bf16.dtype == DType::BF16 && bf16.shape == std::vector<int64_t>{4}));
  const std::vector<uint16_t> bf16_bits = {0x3f80, 0xc020, 0x3dcd, 0x7f62};
  const std::vector<float> bf16_values = {1.0f, -2.5f, 0.10009765625f, 3.00405527047391e38f};
  for (int64_t i = 0; i < 4; ++i) {
    REQUIRE(element<uint16_t>(bf16, i) == bf16_bits[i]);
    REQUIRE(read_as_float(bf16, i) == bf16_values[i]);
  }

  const TensorView& f16 = file.get("f16");
  REQUIRE((f16.dtype == DType::F16 && f16.shape == std::vector<int64_t>{2, 2}));
  const std::vector<uint16_t> f16_bits = {0x2e66, 0xfbff, 0x0001, 0x3555};
  const std::vector<float> f16_values = {0.0999755859375f, -65504.0f, 5.960464477539063e-08f,
                                         0.333251953125f};
  for (int64_t i = 0; i < 4; ++i) {
    REQUIRE(element<uint16_t>(f16, i) == f16_bits[i]);
    REQUIRE(read_as_float(f16, i) == f16_values[i]);
  }

  const TensorView& i64 = file.get("i64");
  REQUIRE((i64.dtype == DType::I64 && i64.nbytes == 24));
  REQUIRE(element<int64_t>(i64, 0) == -3);
  REQUIRE(element<int64_t>(i64, 1) == 0);
  REQUIRE(element<int64_t>(i64, 2) == (1LL << 40) + 7);
  const TensorView& u8 = file.get("u8");
  REQUIRE((u8.dtype == DType::U8 && u8.shape == std::vector<int64_t>{2, 2}));
  REQUIRE(std::string(static_cast<const char*>(u8.data), 4) == std::string("\x00\x07\x80\xff", 4));
}

TEST_CASE("reads the tiny Qwen2.5-VL fixture when present", "[safetensors]") {
  const std::string folder = MMI_FIXTURES_DIR "/qwen2_5_vl_tiny";
  if (!file_exists(join_path(folder, "model.safetensors"))) {
    WARN("no " << folder << "/model.safetensors; skipped");
    return;
  }
  const Checkpoint checkpoint(folder);
  REQUIRE_FALSE(checkpoint.names().empty());
  bool embedding = false;
  for (const std::string& name : checkpoint.names()) {
    const TensorView& tensor = checkpoint.get(name);
    REQUIRE(tensor.nbytes == static_cast<size_t>(tensor.numel()) * dtype_size(tensor.dtype));
    embedding = embedding || name.find("embed_tokens") != std::string::npos;
    if (tensor.numel() > 0 &&
        (tensor.dtype == DType::F32 || tensor.dtype == DType::BF16 || tensor.dtype == DType::F16)) {
      INFO(name);
      REQUIRE(std::isfinite(read_as_float(tensor, tensor.numel() - 1)));
    }
  }
  REQUIRE(embedding);
}

TEST_CASE("write_safetensors: what it writes reads back, header aligned, metadata kept", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.path() + "/written.safetensors";
  const std::vector<int32_t> ids = {7, -1, 65536, 3};
  const std::vector<uint8_t> bytes = {1, 2, 3, 4, 5, 6};
  const std::vector<double> seconds = {0.5};
  write_safetensors(path, {tensor_view("ids", DType::I32, {2, 2}, ids.data(), 16), tensor_view("pixels", DType::U8, {1, 2, 3}, bytes.data(), 6),
                           tensor_view("empty", DType::F32, {0}, nullptr, 0), tensor_view("seconds", DType::F64, {1}, seconds.data(), 8)},
                    {{"format", "test/1"}});
  const SafetensorsFile file(path);
  REQUIRE(file.metadata().at("format") == "test/1");
  REQUIRE(file.get("ids").shape == std::vector<int64_t>{2, 2});
  std::vector<int32_t> back(4);
  std::memcpy(back.data(), file.get("ids").data, 16);
  REQUIRE(back == ids);
  REQUIRE(std::memcmp(file.get("pixels").data, bytes.data(), 6) == 0);
  REQUIRE(file.get("empty").numel() == 0);
  REQUIRE(read_as_float(file.get("seconds"), 0) == 0.5f);
  std::ifstream raw(path, std::ios::binary);
  uint64_t header = 0;
  raw.read(reinterpret_cast<char*>(&header), 8);
  REQUIRE(header % 8 == 0);
  REQUIRE(!file_exists(path + ".partial"));

  // A shape that disagrees with the bytes, or a name given twice, is refused before anything is written.
  REQUIRE_THROWS_WITH(write_safetensors(dir.path() + "/bad.safetensors", {tensor_view("x", DType::F32, {3}, ids.data(), 8)}),
                      Contains("bad.safetensors: tensor x has 8 bytes for its shape"));
  REQUIRE_THROWS_WITH(write_safetensors(dir.path() + "/twice.safetensors",
                                        {tensor_view("x", DType::U8, {1}, bytes.data(), 1), tensor_view("x", DType::U8, {1}, bytes.data(), 1)}),
                      Contains("tensor x given twice"));
  REQUIRE(!file_exists(dir.path() + "/bad.safetensors"));
}
