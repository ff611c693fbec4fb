#include "kernels/cuda/cuda_executor.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "kernels/cuda/sparse_attention.cuh"
#include "kernels/cuda/window_profile.cuh"
#include "kernels/parallel.h"
#include "kernels/rule_bits.h"

namespace mmi {
namespace {

void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

// A TMA descriptor of t (bf16 or fp16) seen as a tensor of `rank` dimensions (innermost first, byte
// strides of the outer ones) read in boxes `box`, 128-byte swizzled as wgmma reads them. The encoder is
// the driver's, reached through the runtime (nothing links libcuda).
CUtensorMap encode_tensor_map(const at::Tensor& t, int rank, const cuuint64_t* dims, const cuuint64_t* strides,
                              const cuuint32_t* box) {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    check_cuda(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found),
               "looking up cuTensorMapEncodeTiled");
    if (found != cudaDriverEntryPointSuccess || !fn) {
      throw std::runtime_error("the CUDA driver has no cuTensorMapEncodeTiled");
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  const cuuint32_t unit[4] = {1, 1, 1, 1};
  const CUtensorMapDataType type =
      t.scalar_type() == at::kBFloat16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  CUtensorMap map;
  const CUresult status = encode(&map, type, rank, t.data_ptr(), dims, strides, box, unit,
                                 CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                 CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (status != CUDA_SUCCESS) {
    throw std::runtime_error("cuTensorMapEncodeTiled failed (error " + std::to_string(static_cast<int>(status)) + ")");
  }
  return map;
}

// The wgmma kernel's TMA descriptor of Q, K, V or the output (t: [N, H, 128] contiguous) as a 3-D tensor
// [N][H][128] in boxes of `box_rows` rows x 64 values of one head.
CUtensorMap tensor_map(const at::Tensor& t, int box_rows) {
  const cuuint64_t dims[3] = {static_cast<cuuint64_t>(t.size(2)), static_cast<cuuint64_t>(t.size(1)),
                              static_cast<cuuint64_t>(t.size(0))};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(t.stride(1) * t.element_size()),
                                 static_cast<cuuint64_t>(t.stride(0) * t.element_size())};
  const cuuint32_t box[3] = {64, 1, static_cast<cuuint32_t>(box_rows)};
  return encode_tensor_map(t, 3, dims, strides, box);
}

// The wgmma kernel's TMA descriptor of K or V (t: [N, Hkv, 128] contiguous) for keys of step `step`:
// the first N / step * step rows as a 4-D tensor [N / step][step][Hkv][128], so that keys q step + r
// for consecutive q are one box (64 q x 64 values of one head and r).
CUtensorMap strided_tensor_map(const at::Tensor& t, int64_t step) {
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(t.size(2)), static_cast<cuuint64_t>(t.size(1)),
                              static_cast<cuuint64_t>(step), static_cast<cuuint64_t>(t.size(0) / step)};
  const cuuint64_t row = static_cast<cuuint64_t>(t.stride(0) * t.element_size());
  const cuuint64_t strides[3] = {static_cast<cuuint64_t>(t.stride(1) * t.element_size()), row, row * step};
  const cuuint32_t box[4] = {64, 1, 1, static_cast<cuuint32_t>(cuda::kBlockN)};
  return encode_tensor_map(t, 4, dims, strides, box);
}

int32_t narrow32(int64_t x, const char* what) {
  if (x < std::numeric_limits<int32_t>::min() || x > std::numeric_limits<int32_t>::max()) {
    throw std::invalid_argument(std::string("CUDA kernels: ") + what + " does not fit 32 bits (they index with 32-bit integers)");
  }
  return static_cast<int32_t>(x);
}

// Sections of one pinned host buffer, each 16-byte aligned, filled in place and copied to the device
// in one asynchronous transfer on the current stream (one allocation and one copy for all of a plan's
// arrays; the caching host allocator keeps the block alive until the copy is done).
class PackedArrays {
 public:
  // Reserves `count` items of T; returns the section's byte offset.
  template <typename T>
  size_t reserve(size_t count) {
    const size_t offset = bytes_;
    bytes_ += (count * sizeof(T) + 15) / 16 * 16;
    return offset;
  }
  void allocate() {
    host_ = at::empty({static_cast<int64_t>(std::max<size_t>(1, bytes_))},
                      at::TensorOptions().dtype(at::kByte).pinned_memory(true));
  }
  template <typename T>
  T* host(size_t offset) { return reinterpret_cast<T*>(host_.data_ptr<uint8_t>() + offset); }
  template <typename T>
  void copy(size_t offset, const std::vector<T>& items) {
    if (!items.empty()) std::memcpy(host<T>(offset), items.data(), items.size() * sizeof(T));
  }
  at::Tensor to(at::Device device) const { return host_.to(device, /*non_blocking=*/true); }

 private:
  size_t bytes_ = 0;
  at::Tensor host_;
};

// The plan flattened into device arrays; each level is the p-th pass of every head that has one.
// Passes and bands are few and converted in order; the runs, columns and tiles (millions for long
// plans) are written by one thread per pass straight into the pinned buffer at offsets counted
// beforehand. A level whose passes are all compact and equally long lists no tiles at all.
struct DevicePlan {
  at::Tensor buffer;  // every array below, in one device allocation
  const cuda::DevicePass* passes;
  const cuda::DeviceBand* bands;
  const cuda::DeviceTile* tiles;
  const cuda::DeviceRun* runs;
  const int32_t* columns;
  const cuda::DeviceSlashGroup* slash_groups;
  const int32_t* verticals;
  const int32_t* phase_tables;
  const uint64_t* words;
  const int64_t* visual_starts;
  const int64_t* visual_ends;
  std::vector<int32_t> strides;  // the key steps > 1 that get TMA descriptors (DevicePass::strided_map)
  at::Tensor block_summary_buffer;  // the block summary passes' tile runs, found on the device
  BlockSummaryRun<int32_t>* block_summary_runs = nullptr;
  // One launch per level: listed tiles [first, last) of `tiles`, or for a level of compact passes
  // with equal row counts, none: the kernels name its tiles from the block index (cuda::tile_of).
  struct Level {
    int32_t first = 0, last = 0;
    bool derived = false;
    int32_t pass_begin = 0, passes = 0, tiles = 0;  // derived: passes [pass_begin, +passes), tiles each
    bool vertical_slash = false;  // some pass is a compact Vertical-Slash one
  };
  std::vector<Level> levels;
  int64_t group;
  at::Device device;

  // Where one pass's items go.
  struct Slot {
    const Pass* pass;
    int32_t index;          // into passes
    int32_t col_bands;      // offset of its column bands
    int64_t runs, columns;  // offsets of its runs and columns
    int64_t tiles;          // offset of its tiles among all listed tiles (before ordering)
    int64_t same_as;        // the earlier slot of its level whose arrays it reuses (same_arrays), or -1
  };

  DevicePlan(const SparsePlan& plan, int64_t group_, at::Device device_) : group(group_), device(device_) {
    narrow32(plan.length, "tokens");  // so every run bound and column fits too
    std::vector<cuda::DevicePass> passes_h;
    // Bands, slash groups, verticals and phase tables are counted here and written straight into the
    // pinned buffer below (a fresh host vector of them costs more in page faults than the copy itself).
    int64_t bands_total = 0, slash_groups_total = 0, verticals_total = 0, phase_tables_total = 0;
    int64_t block_summary_runs_total = 0, max_tile_pieces = 0;
    size_t depth = 0;
    for (const HeadPlan& head : plan.heads) depth = std::max(depth, head.passes.size());
    std::vector<Slot> slots;
    std::vector<size_t> level_start(1, 0);  // slots of level l: [level_start[l], level_start[l + 1])
    int64_t runs_total = 0, columns_total = 0, tiles_total = 0;
    for (size_t level = 0; level < depth; ++level) {
      std::vector<size_t> owners;  // the level's slots that own their arrays
      for (size_t h = 0; h < plan.heads.size(); ++h) {
        if (level >= plan.heads[h].passes.size()) continue;
        const Pass& pass = plan.heads[h].passes[level];
        const auto owner = std::find_if(owners.begin(), owners.end(),
                                        [&](size_t o) { return same_arrays(*slots[o].pass, pass); });
        cuda::DevicePass dp{};
        if (owner != owners.end()) dp = passes_h[slots[*owner].index], dp.shares_arrays = 1;
        dp.rule = pass.rule;
        dp.rule_kind = is_vertical_slash_rule(pass.rule)     ? 1
                       : is_range_and_line_rule(pass.rule) ? 2
                       : is_grid_lines_rule(pass.rule)     ? 3
                                                           : 0;
        dp.head = static_cast<int32_t>(h);
        dp.kv_head = static_cast<int32_t>(h / group);
        dp.reads_state = level > 0 ? 1 : 0;  // a head's passes run in order, one level a launch
        if (owner != owners.end()) {
          const Slot& o = slots[*owner];
          slots.push_back({&pass, static_cast<int32_t>(passes_h.size()), dp.col_bands, o.runs, o.columns, 0,
                           static_cast<int64_t>(*owner)});
          passes_h.push_back(dp);
          continue;
        }
        owners.push_back(slots.size());
        dp.num_row_bands = narrow32(static_cast<int64_t>(pass.rows.bands().size()), "bands");
        dp.num_col_bands = narrow32(static_cast<int64_t>(pass.cols.bands().size()), "bands");
        dp.row_bands = narrow32(bands_total, "bands");
        dp.col_bands = narrow32(bands_total + dp.num_row_bands, "bands");
        bands_total += dp.num_row_bands + dp.num_col_bands;
        if (!pass.lines.empty()) {  // a range pass's line: its own bands, after the columns
          dp.line_band_begin = narrow32(bands_total, "bands");
          bands_total += static_cast<int64_t>(pass.lines.bands().size());
          dp.line_band_end = narrow32(bands_total, "bands");
        }
        dp.num_rows = narrow32(pass.rows.size(), "rows");
        dp.form = static_cast<int32_t>(pass.form);
        set_strided_map(pass, plan.length, dp);
        if (pass.form == PassForm::kVerticalSlash) {
          const VerticalSlashIndex& index = *pass.vertical_slash;
          dp.slash_group_begin = narrow32(slash_groups_total, "slash groups");
          slash_groups_total += static_cast<int64_t>(index.slash_groups.size());
          dp.slash_group_end = narrow32(slash_groups_total, "slash groups");
          dp.vertical_begin = narrow32(verticals_total, "verticals");
          verticals_total += static_cast<int64_t>(index.verticals.size());
          dp.vertical_end = narrow32(verticals_total, "verticals");
        }
        if (pass.form == PassForm::kGridLine) {
          dp.phase_table = narrow32(phase_tables_total, "phase tables");
          dp.phases = narrow32(static_cast<int64_t>(pass.phase_rows.size()) - 1, "phases");
          phase_tables_total += static_cast<int64_t>(pass.phase_rows.size() + pass.phase_col_bands.size());
        }
        if (pass.form == PassForm::kBlockSummary) {
          if (pass.piece_bands.size() > cuda::kMaxBlockSummaryPieces + 1) {
            throw std::invalid_argument("CUDA kernels: a block summary pass of " +
                                        std::to_string(pass.piece_bands.size() - 1) + " pieces (they take at most " +
                                        std::to_string(cuda::kMaxBlockSummaryPieces) + ")");
          }
          dp.phase_table = narrow32(phase_tables_total, "phase tables");
          dp.phases = narrow32(static_cast<int64_t>(pass.piece_bands.size()) - 1, "pieces");
          phase_tables_total += static_cast<int64_t>(pass.piece_bands.size());
          dp.tile_runs = narrow32(block_summary_runs_total, "block summary runs");
          max_tile_pieces = std::max(max_tile_pieces, pass.num_tiles() * dp.phases);
          block_summary_runs_total += pass.num_tiles() * dp.phases;
        }
        slots.push_back({&pass, static_cast<int32_t>(passes_h.size()), dp.col_bands, runs_total, columns_total, 0, -1});
        passes_h.push_back(dp);
        runs_total += static_cast<int64_t>(pass.runs.size());
        columns_total += static_cast<int64_t>(pass.columns.size());
      }
      level_start.push_back(slots.size());
    }
    for (size_t level = 0; level < depth; ++level) {
      const size_t first_slot = level_start[level], last_slot = level_start[level + 1];
      Level l;
      l.derived = std::all_of(slots.begin() + first_slot, slots.begin() + last_slot, [&](const Slot& slot) {
        return slot.pass->form != PassForm::kListed && slot.pass->num_tiles() == slots[first_slot].pass->num_tiles();
      });
      l.vertical_slash = std::any_of(slots.begin() + first_slot, slots.begin() + last_slot,
                                     [](const Slot& slot) { return slot.pass->form == PassForm::kVerticalSlash; });
      if (l.derived) {
        l.pass_begin = slots[first_slot].index;
        l.passes = static_cast<int32_t>(last_slot - first_slot);
        l.tiles = narrow32(slots[first_slot].pass->num_tiles(), "tiles of a pass");
      } else {
        for (size_t i = first_slot; i < last_slot; ++i) {
          slots[i].tiles = tiles_total;
          tiles_total += slots[i].pass->num_tiles();
        }
      }
      levels.push_back(l);
    }
    narrow32(runs_total, "runs");
    narrow32(columns_total, "columns");
    PackedArrays packed;
    const size_t at_passes = packed.reserve<cuda::DevicePass>(passes_h.size());
    const size_t at_bands = packed.reserve<cuda::DeviceBand>(bands_total);
    const size_t at_tiles = packed.reserve<cuda::DeviceTile>(tiles_total);
    const size_t at_runs = packed.reserve<cuda::DeviceRun>(runs_total);
    const size_t at_columns = packed.reserve<int32_t>(columns_total);
    const size_t at_slash_groups = packed.reserve<cuda::DeviceSlashGroup>(slash_groups_total);
    const size_t at_verticals = packed.reserve<int32_t>(verticals_total);
    const size_t at_phase_tables = packed.reserve<int32_t>(phase_tables_total);
    const size_t at_words = packed.reserve<uint64_t>(plan.words.size());
    const size_t at_visual_starts = packed.reserve<int64_t>(plan.visual_starts.size());
    const size_t at_visual_ends = packed.reserve<int64_t>(plan.visual_ends.size());
    packed.allocate();
    std::vector<int32_t> chunks(tiles_total);  // per tile, in slot order
    auto* runs_h = packed.host<cuda::DeviceRun>(at_runs);
    auto* columns_h = packed.host<int32_t>(at_columns);
    std::vector<size_t> listed_slots;  // the slots of levels that list their tiles
    for (size_t level = 0; level < depth; ++level) {
      if (levels[level].derived) continue;
      for (size_t i = level_start[level]; i < level_start[level + 1]; ++i) listed_slots.push_back(i);
    }
    parallel_for(listed_slots.size(), [&](size_t x) {
      const size_t i = listed_slots[x];
      if (slots[i].same_as >= 0) return;  // weighed below
      int32_t* weights = chunks.data() + slots[i].tiles;
      switch (slots[i].pass->form) {
        case PassForm::kListed: fill(plan, slots[i], runs_h, columns_h, weights); break;
        case PassForm::kVerticalSlash: weigh_vertical_slash(*slots[i].pass, plan.block_m, plan.block_n, weights); break;
        case PassForm::kRanges:
        case PassForm::kGridLine:
        case PassForm::kBlockSummary: weigh_by_structure(plan, *slots[i].pass, weights); break;
      }
    });
    for (size_t i : listed_slots) {
      const int64_t owner = slots[i].same_as;
      if (owner < 0) continue;
      std::copy_n(chunks.begin() + slots[owner].tiles, slots[i].pass->num_tiles(), chunks.begin() + slots[i].tiles);
    }
    // Per level, heaviest tiles first, so the long causal rows do not finish last on a half-empty GPU;
    // tiles with nothing to visit are dropped.
    auto* tiles_h = packed.host<cuda::DeviceTile>(at_tiles);
    int32_t written = 0;
    for (size_t level = 0; level < depth; ++level) {
      if (levels[level].derived) continue;
      levels[level].first = written;
      written += heaviest_first(slots.data() + level_start[level], slots.data() + level_start[level + 1], chunks,
                                tiles_h + written);
      levels[level].last = written;
    }
    packed.copy(at_passes, passes_h);
    write_bands_and_lists(slots, passes_h, packed.host<cuda::DeviceBand>(at_bands),
                          packed.host<cuda::DeviceSlashGroup>(at_slash_groups), packed.host<int32_t>(at_verticals),
                          packed.host<int32_t>(at_phase_tables));
    packed.copy(at_words, plan.words);
    packed.copy(at_visual_starts, plan.visual_starts);
    packed.copy(at_visual_ends, plan.visual_ends);
    buffer = packed.to(device);
    const uint8_t* base = buffer.data_ptr<uint8_t>();
    passes = reinterpret_cast<const cuda::DevicePass*>(base + at_passes);
    bands = reinterpret_cast<const cuda::DeviceBand*>(base + at_bands);
    tiles = reinterpret_cast<const cuda::DeviceTile*>(base + at_tiles);
    runs = reinterpret_cast<const cuda::DeviceRun*>(base + at_runs);
    columns = reinterpret_cast<const int32_t*>(base + at_columns);
    slash_groups = reinterpret_cast<const cuda::DeviceSlashGroup*>(base + at_slash_groups);
    verticals = reinterpret_cast<const int32_t*>(base + at_verticals);
    phase_tables = reinterpret_cast<const int32_t*>(base + at_phase_tables);
    words = reinterpret_cast<const uint64_t*>(base + at_words);
    visual_starts = reinterpret_cast<const int64_t*>(base + at_visual_starts);
    visual_ends = reinterpret_cast<const int64_t*>(base + at_visual_ends);
    if (block_summary_runs_total > 0) {
      const int64_t bytes = block_summary_runs_total * static_cast<int64_t>(sizeof(BlockSummaryRun<int32_t>));
      block_summary_buffer = at::empty({bytes}, buffer.options());
      block_summary_runs = reinterpret_cast<BlockSummaryRun<int32_t>*>(block_summary_buffer.data_ptr());
      check_cuda(cuda::launch_block_summary_runs(passes, narrow32(static_cast<int64_t>(passes_h.size()), "passes"),
                                                 narrow32(max_tile_pieces, "block summary runs of a pass"), bands,
                                                 phase_tables, block_summary_runs, at::cuda::getCurrentCUDAStream()),
                 "block summary runs kernel");
    }
  }

  // The pass's key step with TMA descriptors: the step of its first column (or line) band with one > 1,
  // given descriptors while there are fewer than kMaxStridedMaps steps (the others gather with cp.async).
  static constexpr size_t kMaxStridedMaps = 8;
  void set_strided_map(const Pass& pass, int64_t n, cuda::DevicePass& dp) {
    dp.strided_map = -1;
    int64_t step = 0;
    for (const IndexMap* map : {&pass.cols, &pass.lines}) {
      for (const Band& b : map->bands()) {
        if (step == 0 && b.step > 1 && b.count > 1) step = b.step;
      }
    }
    if (step == 0) return;
    auto at = std::find(strides.begin(), strides.end(), static_cast<int32_t>(step));
    if (at == strides.end()) {
      if (strides.size() == kMaxStridedMaps) return;
      at = strides.insert(strides.end(), static_cast<int32_t>(step));
    }
    dp.strided_map = static_cast<int32_t>(at - strides.begin());
    dp.strided_step = static_cast<int32_t>(step);
    dp.strided_limit = static_cast<int32_t>(n / step * step);  // keys below it have a whole row q of s
  }

  // Every pass's row and column bands (and a range pass's line bands), a compact Vertical-Slash pass's
  // slash groups and verticals, and a compact grid line or block summary pass's tables (column bands as
  // indices into the band array), at the offsets its DevicePass names. Positions fit 32 bits (the plan
  // length was checked).
  static void write_bands_and_lists(const std::vector<Slot>& slots, const std::vector<cuda::DevicePass>& passes,
                                    cuda::DeviceBand* bands, cuda::DeviceSlashGroup* slash_groups, int32_t* verticals,
                                    int32_t* phase_tables) {
    auto write = [&](const IndexMap& map, int32_t at) {
      for (const Band& b : map.bands()) {
        bands[at++] = {static_cast<int32_t>(b.logical), static_cast<int32_t>(b.orig), static_cast<int32_t>(b.step),
                       static_cast<int32_t>(b.count)};
      }
    };
    for (const Slot& slot : slots) {
      if (slot.same_as >= 0) continue;
      const cuda::DevicePass& dp = passes[slot.index];
      write(slot.pass->rows, dp.row_bands);
      write(slot.pass->cols, dp.col_bands);
      if (!slot.pass->lines.empty()) write(slot.pass->lines, dp.line_band_begin);
      if (slot.pass->form == PassForm::kGridLine) {
        int32_t* table = phase_tables + dp.phase_table;
        for (int64_t row : slot.pass->phase_rows) *table++ = static_cast<int32_t>(row);
        for (int64_t band : slot.pass->phase_col_bands) *table++ = dp.col_bands + static_cast<int32_t>(band);
      }
      if (slot.pass->form == PassForm::kBlockSummary) {
        int32_t* table = phase_tables + dp.phase_table;
        for (int64_t band : slot.pass->piece_bands) *table++ = dp.col_bands + static_cast<int32_t>(band);
      }
      if (slot.pass->form != PassForm::kVerticalSlash) continue;
      const VerticalSlashIndex& index = *slot.pass->vertical_slash;
      for (size_t g = 0; g < index.slash_groups.size(); ++g) {
        slash_groups[dp.slash_group_begin + g] = {static_cast<int32_t>(index.slash_groups[g].lo),
                                                  static_cast<int32_t>(index.slash_groups[g].hi)};
      }
      for (size_t v = 0; v < index.verticals.size(); ++v) {
        verticals[dp.vertical_begin + v] = static_cast<int32_t>(index.verticals[v]);
      }
    }
  }

  // Converts one listed pass's runs and columns into its slot and weighs its tiles by their chunks.
  static void fill(const SparsePlan& plan, const Slot& slot, cuda::DeviceRun* runs, int32_t* columns, int32_t* chunks) {
    const Pass& pass = *slot.pass;
    for (size_t r = 0; r < pass.runs.size(); ++r) {
      const KeyRun& run = pass.runs[r];
      runs[slot.runs + r] = {static_cast<int32_t>(run.begin), static_cast<int32_t>(run.end),
                             static_cast<int32_t>(run.mask), slot.col_bands + pass.cols.band_at(run.begin)};
    }
    for (size_t c = 0; c < pass.columns.size(); ++c) columns[slot.columns + c] = static_cast<int32_t>(pass.columns[c]);
    weigh_by_structure(plan, pass, chunks);
  }

  // Tile t of a slot's pass, as the kernels read it.
  static cuda::DeviceTile device_tile(const Slot& slot, int64_t t) {
    const Pass& pass = *slot.pass;
    if (pass.form != PassForm::kListed) return {slot.index, static_cast<int32_t>(t), 0, 0, 0, 0};
    return {slot.index, static_cast<int32_t>(t), static_cast<int32_t>(slot.runs + pass.run_offsets[t]),
            static_cast<int32_t>(slot.runs + pass.run_offsets[t + 1]),
            static_cast<int32_t>(slot.columns + pass.column_offsets[t]),
            static_cast<int32_t>(slot.columns + pass.column_offsets[t + 1])};
  }

  // Writes the tiles of slots [first, last) that have any chunk to `out`, most chunks first, ties in
  // their order (a counting sort: weights are chunk counts, at most a few per key chunk); returns how
  // many.
  static int32_t heaviest_first(const Slot* first, const Slot* last, const std::vector<int32_t>& chunks,
                                cuda::DeviceTile* out) {
    auto each_tile = [&](auto visit) {  // visit(slot, t, chunks)
      for (const Slot* slot = first; slot != last; ++slot) {
        for (int64_t t = 0; t < slot->pass->num_tiles(); ++t) visit(*slot, t, chunks[slot->tiles + t]);
      }
    };
    int32_t heaviest = 0;
    each_tile([&](const Slot&, int64_t, int32_t w) { heaviest = std::max(heaviest, w); });
    std::vector<int32_t> start(heaviest + 2, 0);  // start[heaviest - w + 1]: tiles heavier than w
    each_tile([&](const Slot&, int64_t, int32_t w) { start[heaviest - w + 1] += w > 0; });
    for (size_t w = 1; w < start.size(); ++w) start[w] += start[w - 1];
    each_tile([&](const Slot& slot, int64_t t, int32_t w) {
      if (w > 0) out[start[heaviest - w]++] = device_tile(slot, t);
    });
    return start[heaviest];
  }

  // Each tile of a listed, range or grid line pass weighed by its chunks, counted from the pass's
  // structure (a few operations per tile).
  static void weigh_by_structure(const SparsePlan& plan, const Pass& pass, int32_t* chunks) {
    for (int64_t t = 0; t < pass.num_tiles(); ++t) chunks[t] = narrow32(tile_chunks(plan, pass, t), "chunks of a tile");
  }

  // A compact Vertical-Slash pass's tiles list nothing; for the ordering, each is weighed by an upper
  // bound of its chunks: the slash groups that reach it (each spans its distances plus a tile of rows)
  // and its verticals. Prefix sums over the groups make that O(log) per tile.
  static void weigh_vertical_slash(const Pass& pass, int64_t block_m, int64_t block_n, int32_t* chunks) {
    const VerticalSlashIndex& index = *pass.vertical_slash;
    std::vector<int64_t> lo, reach(1, 0);  // reach[g]: keys groups [0, g) span at most
    for (const VerticalSlashIndex::Group& g : index.slash_groups) {
      lo.push_back(g.lo);
      reach.push_back(reach.back() + g.hi - g.lo + block_m);
    }
    const Band& rows = pass.rows.bands().front();
    const int64_t key_min = pass.cols.bands().front().orig;
    for (int64_t t = 0; t < pass.num_tiles(); ++t) {
      const int64_t row_max = rows.orig + std::min(rows.count, (t + 1) * block_m) - 1;
      const int64_t groups = std::upper_bound(lo.begin(), lo.end(), row_max - key_min) - lo.begin();
      const int64_t verticals =
          std::upper_bound(index.verticals.begin(), index.verticals.end(), row_max) - index.verticals.begin();
      chunks[t] = static_cast<int32_t>((reach[groups] + block_n - 1) / block_n + (verticals + block_n - 1) / block_n);
    }
  }
};

}  // namespace

void prepare_plan_cuda(SparsePlan& plan, int64_t group, const at::Device& device) {
  plan.device = std::make_shared<const DevicePlan>(plan, group, device);
}

bool window_profile_accepts(const at::Tensor& q, const at::Tensor& k) {
  const auto type = q.scalar_type();
  if (type != k.scalar_type() || (type != at::kBFloat16 && type != at::kHalf && type != at::kFloat)) return false;
  if (!q.is_cuda() || !k.is_cuda() || q.stride(2) != 1 || k.stride(2) != 1 || q.size(1) % k.size(1) != 0) return false;
  auto rows_ok = [](const at::Tensor& t, int64_t head) {
    const auto base = reinterpret_cast<uintptr_t>(t.data_ptr()) + head * t.stride(1) * t.element_size();
    return cuda::window_profile_accepts(base, t.stride(0), static_cast<int>(t.size(2)), static_cast<int>(t.element_size()));
  };
  // Every head's rows: head offsets are multiples of stride(1).
  return rows_ok(q, 0) && rows_ok(k, 0) && (q.stride(1) * q.element_size()) % 16 == 0 &&
         (k.stride(1) * k.element_size()) % 16 == 0;
}

std::pair<at::Tensor, at::Tensor> window_profile_cuda(const at::Tensor& q, const at::Tensor& k,
                                                      const std::vector<int64_t>& heads, int64_t end, int64_t count,
                                                      const at::Tensor& key_filter, bool distances) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("window_profile_cuda: " + what); };
  if (!window_profile_accepts(q, k)) {
    fail("needs CUDA q, k of one dtype (bf16, fp16, fp32), D <= 128 contiguous values in 16-byte pieces, "
         "rows on 16 bytes");
  }
  for (int64_t h : heads) {
    if (h < 0 || h >= q.size(1)) fail("query head " + std::to_string(h) + " out of range");
  }
  const cuda::ProfileDType dtype = q.scalar_type() == at::kBFloat16 ? cuda::ProfileDType::kBFloat16
                                   : q.scalar_type() == at::kHalf   ? cuda::ProfileDType::kFloat16
                                                                    : cuda::ProfileDType::kFloat32;
  const int64_t num = static_cast<int64_t>(heads.size());
  const int32_t blocks = cuda::profile_blocks(narrow32(end, "window end"), dtype, static_cast<int>(q.size(2)));
  narrow32(static_cast<int64_t>(blocks) * std::min<int64_t>(num, cuda::kMaxProfileHeads), "CTAs of a profile launch");
  const auto f32 = q.options().dtype(at::kFloat), f64 = q.options().dtype(at::kDouble);
  at::Tensor block_max = at::empty({num, blocks, count}, f32), block_sum = at::empty({num, blocks, count}, f32);
  at::Tensor column = at::empty({num, end}, f64);
  at::Tensor distance = distances ? at::zeros({num, end}, f64) : at::Tensor();
  at::Tensor filter = key_filter.defined() ? key_filter.to(f64).contiguous() : at::Tensor();
  cuda::WindowProfileParams p{};
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.q_row_stride = q.stride(0);
  p.q_head_stride = q.stride(1);
  p.k_row_stride = k.stride(0);
  p.k_head_stride = k.stride(1);
  p.group = static_cast<int32_t>(q.size(1) / k.size(1));
  p.head_dim = static_cast<int32_t>(q.size(2));
  p.end = static_cast<int32_t>(end);
  p.count = narrow32(count, "window rows");
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(q.size(2))));
  p.key_filter = filter.defined() ? filter.data_ptr<double>() : nullptr;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  // Heads in processing order grouped by KV head (output rows keep the caller's order), in launches of
  // at most kMaxProfileHeads; teams of at most kMaxTeamHeads heads of one KV head share their key loads.
  std::vector<int64_t> order(num);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return heads[a] / p.group < heads[b] / p.group; });
  auto each_launch = [&](auto&& launch) {
    for (int64_t first = 0; first < num; first += cuda::kMaxProfileHeads) {
      const int32_t size = static_cast<int32_t>(std::min<int64_t>(cuda::kMaxProfileHeads, num - first));
      p.num_teams = 0;
      for (int32_t x = 0; x < size; ++x) {
        p.heads[x] = static_cast<int32_t>(heads[order[first + x]]);
        p.slots[x] = static_cast<int32_t>(order[first + x]);
        const bool new_team = x == 0 || p.heads[x] / p.group != p.heads[x - 1] / p.group ||
                              x - p.team_first[p.num_teams - 1] == cuda::kMaxTeamHeads;
        if (new_team) p.team_first[p.num_teams++] = x;
      }
      p.team_first[p.num_teams] = size;
      launch();
    }
  };
  // Pass 1 for every head, one reduction of the block statistics, then pass 2.
  p.block_max = block_max.data_ptr<float>();
  p.block_sum = block_sum.data_ptr<float>();
  each_launch([&] { check_cuda(cuda::launch_window_row_stats(p, dtype, stream), "window row statistics kernel"); });
  // Every row sees key 0, so its maximum is finite; blocks it sees nothing of hold -inf and add 0.
  const at::Tensor row_max = at::empty({num, count}, f32), row_sum = at::empty({num, count}, f32);
  check_cuda(cuda::launch_window_row_reduce(block_max.data_ptr<float>(), block_sum.data_ptr<float>(),
                                            static_cast<int32_t>(num), blocks, p.count, row_max.data_ptr<float>(),
                                            row_sum.data_ptr<float>(), stream),
             "window row reduction kernel");
  p.block_max = p.block_sum = nullptr;
  p.row_max = row_max.data_ptr<float>();
  p.row_sum = row_sum.data_ptr<float>();
  p.column = column.data_ptr<double>();
  p.distance = distances ? distance.data_ptr<double>() : nullptr;
  each_launch([&] { check_cuda(cuda::launch_window_profile(p, dtype, stream), "window profile kernel"); });
  return {column, distance};
}

bool cuda_available() { return at::hasCUDA() && at::cuda::device_count() > 0; }

namespace {
// Whether the current GPU runs sm_90a code (the wgmma kernel).
bool is_hopper() {
  int device = 0, major = 0;
  return cudaGetDevice(&device) == cudaSuccess &&
         cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess && major == 9;
}
}  // namespace

SparseKernel auto_sparse_kernel(int64_t head_dim) {
  return head_dim == 128 && is_hopper() ? SparseKernel::kWgmma : SparseKernel::kMmaSync;
}

AttentionOutput execute_plan_cuda(const SparsePlan& plan, const at::Tensor& q_in, const at::Tensor& k_in,
                                  const at::Tensor& v_in, SparseKernel kernel) {
  check_attention_inputs(q_in, k_in, v_in, "execute_plan_cuda");
  const int64_t n = q_in.size(0), hq = q_in.size(1), hkv = k_in.size(1), d = q_in.size(2);
  auto fail = [](const std::string& what) { throw std::invalid_argument("execute_plan_cuda: " + what); };
  if (!q_in.is_cuda()) fail("inputs must be CUDA tensors");
  const auto dtype = q_in.scalar_type();
  if (dtype != at::kBFloat16 && dtype != at::kHalf) fail("inputs must be bf16 or fp16");
  if (d != 64 && d != 80 && d != 128) fail("head_dim must be 64, 80 or 128, got " + std::to_string(d));
  if (plan.block_m != cuda::kBlockM || plan.block_n != cuda::kBlockN) {
    fail("plan tiles must be " + std::to_string(cuda::kBlockM) + "x" + std::to_string(cuda::kBlockN) + " (PlanOptions defaults)");
  }
  if (plan.length != n || static_cast<int64_t>(plan.heads.size()) != hq) fail("plan does not match the inputs");
  narrow32(n * std::max(hq, hkv), "tokens x heads");
  const SparseKernel best = auto_sparse_kernel(d);
  if (kernel == SparseKernel::kWgmma && best != kernel) fail("the wgmma kernel needs head_dim 128 on an sm_90 GPU");
  const bool use_wgmma = (kernel == SparseKernel::kAuto ? best : kernel) == SparseKernel::kWgmma;
  // The kernels load 16-byte pieces (cp.async) and TMA boxes, which need 16-byte aligned rows: a view
  // that starts mid-row is copied.
  auto aligned = [](const at::Tensor& t) {
    at::Tensor c = t.contiguous();
    return reinterpret_cast<uintptr_t>(c.data_ptr()) % 16 == 0 ? c : c.clone();
  };
  const at::Tensor q = aligned(q_in), k = aligned(k_in), v = aligned(v_in);
  // The upload made at planning time, or one made now.
  auto uploaded = std::static_pointer_cast<const DevicePlan>(plan.device);
  if (!uploaded || uploaded->group != hq / hkv || uploaded->device != q.device()) {
    uploaded = std::make_shared<const DevicePlan>(plan, hq / hkv, q.device());
  }
  const DevicePlan& dp = *uploaded;
  const auto f32 = q.options().dtype(at::kFloat);
  // A row's output is written before it is read (see sparse_attention.cuh), so only the lse is filled.
  at::Tensor lse = at::full({hq, n}, -std::numeric_limits<float>::infinity(), f32);
  at::Tensor out = at::empty({n, hq, d}, q.options());
  cuda::SparseAttentionParams p{};
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.lse_state = lse.data_ptr<float>();
  p.out = out.data_ptr();
  p.passes = dp.passes;
  p.bands = dp.bands;
  p.runs = dp.runs;
  p.columns = dp.columns;
  p.slash_groups = dp.slash_groups;
  p.verticals = dp.verticals;
  p.phase_tables = dp.phase_tables;
  p.block_summary_runs = dp.block_summary_runs;
  p.words = dp.words;
  p.visual_starts = dp.visual_starts;
  p.visual_ends = dp.visual_ends;
  p.num_visual_spans = static_cast<int32_t>(plan.visual_starts.size());
  p.n = static_cast<int32_t>(n);
  p.q_heads = static_cast<int32_t>(hq);
  p.kv_heads = static_cast<int32_t>(hkv);
  p.softmax_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  at::Tensor maps_buffer;  // the descriptors' device copy, alive until the launches below have run
  if (use_wgmma) {
    p.k_map = tensor_map(k, cuda::kBlockN);
    p.v_map = tensor_map(v, cuda::kBlockN);
    // Q, the output, then K and V per key step (DevicePass::strided_map).
    std::vector<CUtensorMap> maps = {tensor_map(q, cuda::kBlockM), tensor_map(out, cuda::kBlockM)};
    for (int32_t step : dp.strides) {
      maps.push_back(strided_tensor_map(k, step));
      maps.push_back(strided_tensor_map(v, step));
    }
    const int64_t bytes = static_cast<int64_t>(maps.size() * sizeof(CUtensorMap));
    maps_buffer = at::empty({bytes}, q.options().dtype(at::kByte));
    check_cuda(cudaMemcpyAsync(maps_buffer.data_ptr(), maps.data(), bytes, cudaMemcpyHostToDevice,
                               at::cuda::getCurrentCUDAStream()),
               "copying the TMA descriptors");
    p.q_map = static_cast<const CUtensorMap*>(maps_buffer.data_ptr());
    p.out_map = p.q_map + 1;
    p.strided_maps = p.q_map + 2;
  }
  const cuda::DType kind = dtype == at::kBFloat16 ? cuda::DType::kBFloat16 : cuda::DType::kFloat16;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const cuda::DeviceTile* tiles = dp.tiles;
  for (const DevicePlan::Level& level : dp.levels) {
    p.tiles = level.derived ? nullptr : tiles + level.first;
    p.num_tiles = level.derived ? narrow32(int64_t(level.passes) * level.tiles, "tiles of a launch") : level.last - level.first;
    p.level_pass_begin = level.pass_begin;
    p.level_passes = level.passes;
    p.level_tiles = level.tiles;
    check_cuda(use_wgmma ? cuda::launch_sparse_attention_sm90(p, kind, level.vertical_slash, stream)
                         : cuda::launch_sparse_attention(p, static_cast<int>(d), kind, stream),
               use_wgmma ? "sparse attention kernel (wgmma)" : "sparse attention kernel (mma.sync)");
  }
  check_cuda(cuda::launch_finalize(p, static_cast<int>(d), stream), "finalize kernel");
  return {out, lse};
}

double time_cuda_ms(const std::function<void()>& fn, int warmup, int repeats) {
  for (int r = 0; r < warmup; ++r) fn();
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  cudaEvent_t start, stop;
  check_cuda(cudaEventCreate(&start), "cudaEventCreate");
  check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<double> times;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    check_cuda(cudaEventRecord(start, stream), "cudaEventRecord");
    fn();
    check_cuda(cudaEventRecord(stop, stream), "cudaEventRecord");
    check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0.f;
    check_cuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

void cuda_synchronize() { check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

void cuda_release_cached_memory() { c10::cuda::CUDACachingAllocator::emptyCache(); }

void cuda_reset_peak_memory() { c10::cuda::CUDACachingAllocator::resetPeakStats(at::cuda::current_device()); }

int64_t cuda_peak_memory_bytes() {
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(at::cuda::current_device());
  return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
}

std::string cuda_device_description() {
  if (!cuda_available()) return "no CUDA device";
  cudaDeviceProp prop{};
  check_cuda(cudaGetDeviceProperties(&prop, at::cuda::current_device()), "cudaGetDeviceProperties");
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  auto version = [](int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); };
  return std::string(prop.name) + ", driver CUDA " + version(driver) + ", runtime CUDA " + version(runtime);
}

DenseInputs prepare_dense_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  check_attention_inputs(q, k, v, "dense attention");
  const int64_t group = q.size(1) / k.size(1);
  auto view = [](const at::Tensor& x) { return x.unsqueeze(0).transpose(1, 2); };  // [1, H, N, D]
  return {view(q), view(k.repeat_interleave(group, 1)), view(v.repeat_interleave(group, 1))};
}

at::Tensor run_dense_cuda(const DenseInputs& x, DenseBackend backend) {
  try {
    at::Tensor out;
    switch (backend) {
      case DenseBackend::kCudnn:
        out = std::get<0>(at::_scaled_dot_product_cudnn_attention(x.q, x.k, x.v, std::nullopt, false, 0.0, true));
        break;
      case DenseBackend::kFlash:
        out = std::get<0>(at::_scaled_dot_product_flash_attention(x.q, x.k, x.v, 0.0, true));
        break;
      case DenseBackend::kEfficient:
        out = std::get<0>(at::_scaled_dot_product_efficient_attention(x.q, x.k, x.v, std::nullopt, false, 0.0, true));
        break;
    }
    return out.squeeze(0).transpose(0, 1);  // [N, Hq, D]
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(dense_backend_name(backend)) + ": " + e.what());
  }
}

}  // namespace mmi
