#include "kernels/cpu/executor.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace mmi {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

float dot(const float* a, const float* b, int64_t n) {
  // Eight independent partial sums let the compiler vectorise without reassociating one sum.
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t x = 0;
  for (; x + 8 <= n; x += 8) {
    for (int u = 0; u < 8; ++u) s[u] += a[x + u] * b[x + u];
  }
  float total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; x < n; ++x) total += a[x] * b[x];
  return total;
}

// Online-softmax state of every row of one head.
struct RowState {
  std::vector<float> max, sum, acc;  // [N], [N], [N * D]
  RowState(int64_t n, int64_t d) : max(n, kNegInf), sum(n, 0.f), acc(n * d, 0.f) {}
};

// fp32 [N, H, D] contiguous view of an input.
struct Rows {
  at::Tensor tensor;
  const float* data;
  int64_t heads, dim;
  explicit Rows(const at::Tensor& t)
      : tensor(t.to(at::kFloat).contiguous()), data(tensor.data_ptr<float>()), heads(t.size(1)), dim(t.size(2)) {}
  const float* row(int64_t pos, int64_t head) const { return data + (pos * heads + head) * dim; }
};

}  // namespace

void check_attention_inputs(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const char* who) {
  auto fail = [who](const std::string& what) { throw std::invalid_argument(std::string(who) + ": " + what); };
  if (q.dim() != 3 || k.dim() != 3 || v.dim() != 3) fail("q, k, v must be [N, heads, head_dim]");
  if (k.sizes() != v.sizes()) fail("k and v must have the same shape");
  if (q.size(0) != k.size(0)) fail("q and k must have the same number of tokens");
  if (q.size(2) != k.size(2)) fail("q and k must have the same head_dim");
  if (k.size(1) == 0 || q.size(1) % k.size(1) != 0) {
    fail("query heads (" + std::to_string(q.size(1)) + ") must be a multiple of KV heads (" +
         std::to_string(k.size(1)) + ")");
  }
  if (q.scalar_type() != k.scalar_type() || q.scalar_type() != v.scalar_type()) fail("q, k, v must share a dtype");
  if (!at::isFloatingType(q.scalar_type())) fail("q, k, v must be floating point");
  if (q.device() != k.device() || q.device() != v.device()) fail("q, k, v must be on one device");
}

AttentionOutput execute_plan_cpu(const SparsePlan& plan, const at::Tensor& q, const at::Tensor& k,
                                 const at::Tensor& v) {
  check_attention_inputs(q, k, v, "execute_plan_cpu");
  const int64_t n = q.size(0), hq = q.size(1), d = q.size(2), group = hq / k.size(1);
  if (plan.length != n || static_cast<int64_t>(plan.heads.size()) != hq) {
    throw std::invalid_argument("execute_plan_cpu: plan is for " + std::to_string(plan.length) + " tokens x " +
                                std::to_string(plan.heads.size()) + " heads, inputs have " + std::to_string(n) +
                                " x " + std::to_string(hq));
  }
  const Rows qs(q.cpu()), ks(k.cpu()), vs(v.cpu());
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  at::Tensor out = at::zeros({n, hq, d}, at::kFloat);
  at::Tensor lse = at::full({hq, n}, kNegInf, at::kFloat);
  float* out_data = out.data_ptr<float>();
  float* lse_data = lse.data_ptr<float>();

  at::parallel_for(0, hq, 1, [&](int64_t head_begin, int64_t head_end) {
    std::vector<float> scores(plan.block_m * plan.block_n);
    for (int64_t h = head_begin; h < head_end; ++h) {
      const int64_t kv = h / group;
      RowState st(n, d);
      for_each_chunk(plan, static_cast<int>(h), [&](const Pass& pass, const std::vector<int64_t>& rows,
                                                    const std::vector<int64_t>& cols, ChunkMask mask) {
        const int64_t nc = static_cast<int64_t>(cols.size());
        for (size_t r = 0; r < rows.size(); ++r) {
          const int64_t i = rows[r];
          const float* qi = qs.row(i, h);
          float* s = scores.data() + r * plan.block_n;
          float row_max = kNegInf;
          for (int64_t c = 0; c < nc; ++c) {
            s[c] = chunk_counts(plan, pass, mask, i, cols[c]) ? dot(qi, ks.row(cols[c], kv), d) * scale : kNegInf;
            row_max = std::max(row_max, s[c]);
          }
          if (row_max == kNegInf) continue;
          const float new_max = std::max(st.max[i], row_max);
          const float correction = std::exp(st.max[i] - new_max);  // 0 when the row was empty
          float* acc = st.acc.data() + i * d;
          float sum = st.sum[i] * correction;
          for (int64_t x = 0; x < d; ++x) acc[x] *= correction;
          for (int64_t c = 0; c < nc; ++c) {
            if (s[c] == kNegInf) continue;
            const float p = std::exp(s[c] - new_max);
            sum += p;
            const float* vj = vs.row(cols[c], kv);
            for (int64_t x = 0; x < d; ++x) acc[x] += p * vj[x];
          }
          st.sum[i] = sum;
          st.max[i] = new_max;
        }
      });
      for (int64_t i = 0; i < n; ++i) {
        if (st.sum[i] <= 0.f) continue;
        float* o = out_data + (i * hq + h) * d;
        const float inv = 1.0f / st.sum[i];
        for (int64_t x = 0; x < d; ++x) o[x] = st.acc[i * d + x] * inv;
        lse_data[h * n + i] = st.max[i] + std::log(st.sum[i]);
      }
    }
  });
  return {out.to(q.scalar_type()), lse};
}

AttentionOutput dense_attention_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  check_attention_inputs(q, k, v, "dense_attention_cpu");
  constexpr int64_t kRowChunk = 256, kKeyChunk = 2048;
  const int64_t n = q.size(0), hq = q.size(1), hkv = k.size(1), d = q.size(2), group = hq / hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const at::Tensor qf = q.cpu().to(at::kFloat), kf = k.cpu().to(at::kFloat), vf = v.cpu().to(at::kFloat);
  at::Tensor out = at::empty({n, hq, d}, at::kFloat);
  at::Tensor lse = at::empty({hq, n}, at::kFloat);
  for (int64_t kv = 0; kv < hkv; ++kv) {
    const at::Tensor qg = qf.narrow(1, kv * group, group).permute({1, 0, 2});  // [G, N, D]
    const at::Tensor kh = kf.select(1, kv), vh = vf.select(1, kv);             // [N, D]
    for (int64_t r0 = 0; r0 < n; r0 += kRowChunk) {
      const int64_t r1 = std::min(n, r0 + kRowChunk);
      const at::Tensor qc = qg.narrow(1, r0, r1 - r0);  // [G, R, D]
      at::Tensor m = at::full({group, r1 - r0}, kNegInf, at::kFloat);
      at::Tensor l = at::zeros({group, r1 - r0}, at::kFloat);
      at::Tensor acc = at::zeros({group, r1 - r0, d}, at::kFloat);
      const at::Tensor rows = at::arange(r0, r1, at::kLong).unsqueeze(1);
      for (int64_t c0 = 0; c0 < r1; c0 += kKeyChunk) {
        const int64_t c1 = std::min(r1, c0 + kKeyChunk);
        at::Tensor s = at::matmul(qc, kh.narrow(0, c0, c1 - c0).t()) * scale;  // [G, R, C]
        if (c1 > r0 + 1) s = s.masked_fill(at::arange(c0, c1, at::kLong).unsqueeze(0) > rows, kNegInf);
        const at::Tensor m_new = at::maximum(m, std::get<0>(s.max(2)));
        const at::Tensor p = at::exp(s - m_new.unsqueeze(2));
        const at::Tensor correction = at::exp(m - m_new);
        l = l * correction + p.sum(2);
        acc = acc * correction.unsqueeze(2) + at::matmul(p, vh.narrow(0, c0, c1 - c0));
        m = m_new;
      }
      out.narrow(0, r0, r1 - r0).narrow(1, kv * group, group).copy_((acc / l.unsqueeze(2)).permute({1, 0, 2}));
      lse.narrow(0, kv * group, group).narrow(1, r0, r1 - r0).copy_(m + at::log(l));
    }
  }
  return {out.to(q.scalar_type()), lse};
}

AttentionOutput masked_attention_reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                           const at::Tensor& mask) {
  check_attention_inputs(q, k, v, "masked_attention_reference");
  const int64_t hq = q.size(1), group = hq / k.size(1);
  const at::Tensor qf = q.to(at::kDouble).permute({1, 0, 2});                                  // [Hq, N, D]
  const at::Tensor kf = k.to(at::kDouble).permute({1, 0, 2}).repeat_interleave(group, 0);      // [Hq, N, D]
  const at::Tensor vf = v.to(at::kDouble).permute({1, 0, 2}).repeat_interleave(group, 0);
  const at::Tensor s = (at::matmul(qf, kf.transpose(1, 2)) / std::sqrt(double(q.size(2))))
                           .masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
  const at::Tensor lse = at::logsumexp(s, 2);  // [Hq, N]
  at::Tensor p = at::exp(s - lse.unsqueeze(2)).nan_to_num(0.0);
  const at::Tensor out = at::matmul(p, vf).permute({1, 0, 2});
  return {out.to(q.scalar_type()), lse.to(at::kFloat)};
}

}  // namespace mmi
