// A memory-mapped, torch-free reader for safetensors files and Hugging Face checkpoint folders.
//
// Format: an 8-byte little-endian header length N, N bytes of JSON (an object mapping tensor names
// to {"dtype", "shape", "data_offsets": [begin, end]}, plus an optional "__metadata__" string map),
// then the data section; offsets are relative to its start. Every field is validated before any
// data is exposed, so a hostile or truncated file throws std::runtime_error (what() starts with the
// file path) and never reads out of bounds. Tensor data is not copied: views point into a read-only
// mapping that lives as long as the SafetensorsFile. Data is only as aligned as the writer made it
// (the reference writer pads the header to a multiple of 8 bytes); read it with memcpy when in
// doubt. Truncating a file while it is mapped is undefined (SIGBUS), as with any mmap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace mmi {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2 };

const char* dtype_name(DType dtype);  // the safetensors spelling: "F32", "BF16", "F8_E4M3", ...
size_t dtype_size(DType dtype);       // bytes per element
bool parse_dtype(const std::string& name, DType* dtype);  // false for an unknown name

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // into the file mapping (an empty tensor's points at its offset)
  size_t nbytes = 0;

  int64_t numel() const;
};

// Element i (flat, row-major) of a F64/F32/F16/BF16 tensor as float; throws for other dtypes or an
// index out of range. Meant for tests and debugging, not for bulk conversion.
float read_as_float(const TensorView& tensor, int64_t i);

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);  // maps and validates the whole file

  SafetensorsFile(SafetensorsFile&&) = default;
  SafetensorsFile& operator=(SafetensorsFile&&) = default;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // In file order: sorted by position in the data section (ties, i.e. empty tensors, by name).
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find(const std::string& name) const;  // nullptr when absent
  const TensorView& get(const std::string& name) const;   // throws naming the file and tensor
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Unmap {
    size_t size;
    void operator()(char* address) const;
  };

  std::string path_;
  std::unique_ptr<char, Unmap> mapping_;
  std::vector<TensorView> tensors_;
  std::unordered_map<std::string, size_t> by_name_;
  std::map<std::string, std::string> metadata_;
};

// A model's weights: a folder holding model.safetensors.index.json (its "weight_map" maps tensor
// names to shard files, each opened once) or a single model.safetensors, or the path of one
// .safetensors file. Names come from the index when there is one, else from the file.
class Checkpoint {
 public:
  explicit Checkpoint(const std::string& path);

  const std::string& folder() const { return folder_; }
  const std::vector<SafetensorsFile>& files() const { return files_; }
  const TensorView* find(const std::string& name) const;  // nullptr when absent
  const TensorView& get(const std::string& name) const;   // throws naming the folder and tensor
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  std::vector<std::string> names() const;  // sorted

 private:
  std::string folder_;
  std::vector<SafetensorsFile> files_;
  // Views into files_; moving a vector keeps its elements in place, so these stay valid on a move.
  std::map<std::string, const TensorView*> tensors_;
};

// A view of `nbytes` bytes at `data` (for write_safetensors).
TensorView tensor_view(std::string name, DType dtype, std::vector<int64_t> shape, const void* data, size_t nbytes);

// Writes `tensors` (data, dtype, shape and nbytes of each; names unique) and `metadata` as one
// safetensors file, header padded to 8 bytes, data in the given order. Written to PATH.partial and
// renamed, so a reader never sees half a file. Throws std::runtime_error naming the path.
void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace mmi
