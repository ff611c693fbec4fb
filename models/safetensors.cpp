#include "models/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "tasks/files.h"

namespace mmi {
namespace {

using nlohmann::json;

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8},   {DType::F32, "F32", 4},         {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8},         {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},   {DType::I8, "I8", 1},           {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1}, {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
};

const DTypeInfo& info(DType dtype) {
  for (const DTypeInfo& entry : kDTypes) {
    if (entry.dtype == dtype) return entry;
  }
  throw std::invalid_argument("invalid DType value " + std::to_string(static_cast<int>(dtype)));
}

// The reference implementation's limit: real headers are a few MB at most, and parsing a huge one
// would allocate several times its size.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw std::runtime_error(path + ": " + problem);
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// A tensor entry validated against the data section, with its offsets kept for the overlap check.
struct Entry {
  TensorView view;
  uint64_t begin = 0, end = 0;
};

Entry parse_entry(const std::string& path, const std::string& name, const json& value,
                  const char* data, uint64_t data_size) {
  const std::string where = "tensor '" + name + "': ";
  if (!value.is_object()) fail(path, where + "entry is not a JSON object");
  Entry entry;
  entry.view.name = name;

  const auto dtype = value.find("dtype");
  if (dtype == value.end() || !dtype->is_string()) {
    fail(path, where + "'dtype' is missing or not a string");
  }
  if (!parse_dtype(dtype->get<std::string>(), &entry.view.dtype)) {
    fail(path, where + "unknown dtype '" + dtype->get<std::string>() + "'");
  }

  const auto shape = value.find("shape");
  if (shape == value.end() || !shape->is_array()) {
    fail(path, where + "'shape' is missing or not an array");
  }
  uint64_t numel = 1;
  bool overflow = false;
  for (const json& dim : *shape) {
    // nlohmann stores non-negative integers as unsigned, negative ones as signed.
    if (dim.is_number_integer() && !dim.is_number_unsigned()) {
      fail(path, where + "negative dimension " + dim.dump() + " in 'shape'");
    }
    if (!dim.is_number_unsigned()) {
      fail(path, where + "'shape' holds " + dim.dump() + ", not an integer");
    }
    const uint64_t size = dim.get<uint64_t>();
    overflow = overflow || size > INT64_MAX || __builtin_mul_overflow(numel, size, &numel);
    entry.view.shape.push_back(static_cast<int64_t>(size));
  }
  uint64_t nbytes = 0;
  if (overflow || __builtin_mul_overflow(numel, dtype_size(entry.view.dtype), &nbytes)) {
    fail(path, where + "shape " + shape->dump() + " is too large: its byte count overflows");
  }

  const auto offsets = value.find("data_offsets");
  if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned() ||
      (*offsets)[0].get<uint64_t>() > (*offsets)[1].get<uint64_t>()) {
    fail(path, where + "'data_offsets' must be [begin, end] with 0 <= begin <= end");
  }
  entry.begin = (*offsets)[0].get<uint64_t>();
  entry.end = (*offsets)[1].get<uint64_t>();
  if (entry.end > data_size) {
    fail(path, where + "data_offsets end " + std::to_string(entry.end) +
                   " is past the end of the data section (" + std::to_string(data_size) +
                   " bytes)");
  }
  if (entry.end - entry.begin != nbytes) {
    fail(path, where + "dtype/shape mismatch: " + dtype_name(entry.view.dtype) + " " +
                   shape_string(entry.view.shape) + " needs " + std::to_string(nbytes) +
                   " bytes but data_offsets span " + std::to_string(entry.end - entry.begin));
  }
  entry.view.data = data + entry.begin;
  entry.view.nbytes = nbytes;
  return entry;
}

// Maps the whole file read-only. O_NONBLOCK keeps open() from waiting on a FIFO; it does nothing to
// regular files.
std::pair<char*, size_t> map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  std::string problem;
  void* address = MAP_FAILED;
  if (fstat(fd, &st) != 0) {
    problem = std::string("cannot stat: ") + std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    problem = "not a regular file";
  } else if (st.st_size == 0) {
    problem = "empty file";
  } else {
    address = mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (address == MAP_FAILED) problem = std::string("cannot map: ") + std::strerror(errno);
  }
  ::close(fd);
  if (!problem.empty()) fail(path, problem);
  return {static_cast<char*>(address), static_cast<size_t>(st.st_size)};
}

json parse_json(const std::string& path, const char* begin, const char* end, const char* what) {
  try {
    return json::parse(begin, end);
  } catch (const json::exception& e) {
    fail(path, std::string(what) + " is not valid JSON: " + e.what());
  }
}

}  // namespace

const char* dtype_name(DType dtype) { return info(dtype).name; }

size_t dtype_size(DType dtype) { return info(dtype).size; }

bool parse_dtype(const std::string& name, DType* dtype) {
  for (const DTypeInfo& entry : kDTypes) {
    if (name == entry.name) {
      *dtype = entry.dtype;
      return true;
    }
  }
  return false;
}

int64_t TensorView::numel() const {
  int64_t count = 1;
  for (int64_t size : shape) count *= size;
  return count;
}

float read_as_float(const TensorView& tensor, int64_t i) {
  if (i < 0 || i >= tensor.numel()) {
    throw std::out_of_range("tensor '" + tensor.name + "': element " + std::to_string(i) +
                            " out of range (" + std::to_string(tensor.numel()) + " elements)");
  }
  const char* element = static_cast<const char*>(tensor.data) + i * dtype_size(tensor.dtype);
  uint16_t half = 0;  // memcpy: the data need not be aligned
  uint32_t bits = 0;
  float value = 0;
  switch (tensor.dtype) {
    case DType::F64: {
      double wide;
      std::memcpy(&wide, element, sizeof wide);
      return static_cast<float>(wide);
    }
    case DType::F32:
      std::memcpy(&value, element, sizeof value);
      return value;
    case DType::BF16:  // the top half of a float32
      std::memcpy(&half, element, sizeof half);
      bits = static_cast<uint32_t>(half) << 16;
      break;
    case DType::F16: {
      std::memcpy(&half, element, sizeof half);
      const uint32_t sign = static_cast<uint32_t>(half >> 15) << 31;
      const uint32_t exponent = (half >> 10) & 0x1f;
      const uint32_t mantissa = half & 0x3ff;
      if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
        return std::copysign(std::ldexp(static_cast<float>(mantissa), -24), sign ? -1.0f : 1.0f);
      }
      // Rebias the exponent (15 -> 127), or keep all ones for inf/NaN; widen the mantissa.
      bits = sign | (exponent == 0x1f ? 0xffu : exponent + 112) << 23 | mantissa << 13;
      break;
    }
    default:
      throw std::invalid_argument("tensor '" + tensor.name + "': read_as_float does not support " +
                                  dtype_name(tensor.dtype));
  }
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

void SafetensorsFile::Unmap::operator()(char* address) const { munmap(address, size); }

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const auto [address, size] = map_file(path);
  mapping_ = std::unique_ptr<char, Unmap>(address, Unmap{size});
  if (size < 8) {
    fail(path,
         "file of " + std::to_string(size) + " bytes is shorter than its 8-byte header length");
  }
  uint64_t header_size = 0;  // little-endian
  for (int i = 7; i >= 0; --i) {
    header_size = header_size << 8 | static_cast<unsigned char>(address[i]);
  }
  if (header_size > size - 8) {
    fail(path, "header length " + std::to_string(header_size) + " past the end of the file (" +
                   std::to_string(size) + " bytes)");
  }
  if (header_size > kMaxHeaderBytes) {
    fail(path, "header length " + std::to_string(header_size) + " exceeds the limit of " +
                   std::to_string(kMaxHeaderBytes) + " bytes");
  }
  const json header = parse_json(path, address + 8, address + 8 + header_size, "header");
  if (!header.is_object()) fail(path, "header is not a JSON object");

  const char* data = address + 8 + header_size;
  const uint64_t data_size = size - 8 - header_size;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key != "__metadata__") {
      entries.push_back(parse_entry(path, key, value, data, data_size));
      continue;
    }
    if (!value.is_object()) fail(path, "'__metadata__' is not a JSON object");
    for (const auto& [name, text] : value.items()) {
      if (!text.is_string()) fail(path, "'__metadata__' value of '" + name + "' is not a string");
      metadata_[name] = text.get<std::string>();
    }
  }

  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.view.name) < std::tie(b.begin, b.end, b.view.name);
  });
  // Sorted by begin, a tensor overlaps an earlier one iff it starts before the furthest end so far.
  const Entry* furthest = nullptr;
  for (const Entry& entry : entries) {
    if (furthest && entry.begin < furthest->end) {
      fail(path, "tensors '" + furthest->view.name + "' and '" + entry.view.name + "' overlap");
    }
    if (!furthest || entry.end > furthest->end) furthest = &entry;
  }
  for (Entry& entry : entries) {
    by_name_[entry.view.name] = tensors_.size();
    tensors_.push_back(std::move(entry.view));
  }
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const TensorView& SafetensorsFile::get(const std::string& name) const {
  const TensorView* tensor = find(name);
  if (!tensor) fail(path_, "no tensor '" + name + "'");
  return *tensor;
}

Checkpoint::Checkpoint(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  const std::string index_path = join_path(path, "model.safetensors.index.json");
  if (!S_ISDIR(st.st_mode) || !file_exists(index_path)) {  // one file
    folder_ = S_ISDIR(st.st_mode) ? path : parent_directory(path);
    const std::string file = S_ISDIR(st.st_mode) ? join_path(path, "model.safetensors") : path;
    if (!file_exists(file)) {
      // Committed checkpoints travel packed; configuring the build expands them (cmake/fixtures.cmake).
      if (file_exists(file + ".tar.xz")) {
        fail(path, "holds model.safetensors.tar.xz but not model.safetensors: configure the build "
                   "(make build) to expand it, or run: tar -xJf " + file + ".tar.xz -C " + folder_);
      }
      fail(path, "holds neither model.safetensors.index.json nor model.safetensors");
    }
    files_.emplace_back(file);
    for (const TensorView& tensor : files_[0].tensors()) tensors_[tensor.name] = &tensor;
    return;
  }

  folder_ = path;
  std::ifstream in(index_path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) fail(index_path, "cannot read");
  const std::string index_text = text.str();
  const json index =
      parse_json(index_path, index_text.data(), index_text.data() + index_text.size(), "the index");
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    fail(index_path, "'weight_map' is missing or not a JSON object");
  }
  // Open each shard once; resolve the names after files_ stops growing, as views point into it.
  std::map<std::string, size_t> file_of_shard;
  std::vector<std::pair<std::string, size_t>> file_of_tensor;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) fail(index_path, "weight_map value of '" + name + "' is not a string");
    const auto [it, added] = file_of_shard.emplace(shard.get<std::string>(), files_.size());
    if (added) {
      const std::string shard_path = join_path(path, it->first);
      if (!file_exists(shard_path)) {
        fail(index_path, "shard '" + it->first + "' is missing (" + shard_path + ")");
      }
      files_.emplace_back(shard_path);
    }
    file_of_tensor.emplace_back(name, it->second);
  }
  for (const auto& [name, file] : file_of_tensor) {
    const TensorView* tensor = files_[file].find(name);
    if (!tensor) {
      fail(index_path, "tensor '" + name + "' is listed in the index but absent from its shard " +
                           files_[file].path());
    }
    tensors_[name] = tensor;
  }
}

const TensorView* Checkpoint::find(const std::string& name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second;
}

const TensorView& Checkpoint::get(const std::string& name) const {
  const TensorView* tensor = find(name);
  if (!tensor) fail(folder_, "no tensor '" + name + "' in the checkpoint");
  return *tensor;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> names;
  for (const auto& entry : tensors_) names.push_back(entry.first);
  return names;
}

TensorView tensor_view(std::string name, DType dtype, std::vector<int64_t> shape, const void* data, size_t nbytes) {
  TensorView v;
  v.name = std::move(name);
  v.dtype = dtype;
  v.shape = std::move(shape);
  v.data = data;
  v.nbytes = nbytes;
  return v;
}

void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  size_t offset = 0;
  for (const TensorView& t : tensors) {
    if (header.contains(t.name)) throw std::runtime_error(path + ": tensor " + t.name + " given twice");
    if (static_cast<size_t>(t.numel()) * dtype_size(t.dtype) != t.nbytes)
      throw std::runtime_error(path + ": tensor " + t.name + " has " + std::to_string(t.nbytes) + " bytes for its shape");
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(path + ": cannot create");
    const uint64_t length = text.size();
    char little_endian[8];
    for (int b = 0; b < 8; ++b) little_endian[b] = static_cast<char>((length >> (8 * b)) & 0xff);
    out.write(little_endian, 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const TensorView& t : tensors) out.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(t.nbytes));
    if (!out.flush()) throw std::runtime_error(path + ": write failed (disk full?)");
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) throw std::runtime_error(path + ": cannot rename " + partial + " into place");
}

}  // namespace mmi
