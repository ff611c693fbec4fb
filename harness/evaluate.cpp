#include "harness/evaluate.h"

#include <ATen/ATen.h>

#include "kernels/method.h"
#include "tasks/answers.h"
#include "tasks/caption_metrics.h"

namespace mmi {

bool teacher_forced(const AnswerSpec& answer) {
  return answer.kind == AnswerSpec::Kind::kChoice || answer.kind == AnswerSpec::Kind::kShort;
}

ModelInputs prepare_sample(const Qwen25VLModel& model, const TaskSample& sample,
                           const PixelBudget& budget) {
  PrepareOptions options;
  options.budget = budget;
  if (teacher_forced(sample.answer)) options.answer = sample.answer.target;
  return model.prepare(sample.prompt, options);
}

namespace {

Evaluation teacher_forced_evaluation(const Qwen25VLModel& model, const ModelInputs& inputs,
                                     const at::Tensor& embeds, const AttentionMethod& method) {
  if (inputs.answer_ids.empty()) throw std::invalid_argument("the sample's answer has no tokens");
  PrefillOptions options;
  options.method = &method;
  options.logit_positions = inputs.answer_positions;
  Evaluation e;
  e.prefill = model.prefill(inputs, embeds, options);
  const at::Tensor predicted = e.prefill.logits.argmax(-1).to(at::kCPU);
  std::vector<int64_t> tokens(predicted.data_ptr<int64_t>(),
                              predicted.data_ptr<int64_t>() + predicted.numel());
  e.prediction = model.decode(tokens);
  e.score = tokens == inputs.answer_ids ? 1.0 : 0.0;
  return e;
}

Evaluation generated_evaluation(const Qwen25VLModel& model, const TaskSample& sample,
                                const ModelInputs& inputs, const at::Tensor& embeds,
                                const AttentionMethod& method, int64_t max_new_tokens) {
  PrefillOptions options;
  options.method = &method;
  options.keep_kv_cache = true;
  options.decode_capacity = max_new_tokens;
  Evaluation e;
  e.prefill = model.prefill(inputs, embeds, options);
  std::vector<int64_t> tokens = model.decoder().greedy(
      e.prefill.logits[0], e.prefill.cache, max_new_tokens, {model.config().text.eos_token_id});
  e.prefill.cache = KVCache{};  // free it now: the next method's pre-fill needs the memory
  e.prediction = model.decode(tokens);
  const AnswerSpec& a = sample.answer;
  if (a.kind == AnswerSpec::Kind::kCaption) {
    std::vector<std::vector<std::string>> refs(1);
    for (const std::string& r : a.references) refs[0].push_back(r);
    e.score = rouge_l({e.prediction}, refs);
  } else {
    e.score = token_f1(e.prediction, a.target);
  }
  return e;
}

}  // namespace

Evaluation evaluate_sample(const Qwen25VLModel& model, const TaskSample& sample,
                           const ModelInputs& inputs, const at::Tensor& embeds,
                           const AttentionMethod& method, int64_t max_new_tokens) {
  return teacher_forced(sample.answer)
             ? teacher_forced_evaluation(model, inputs, embeds, method)
             : generated_evaluation(model, sample, inputs, embeds, method, max_new_tokens);
}

}  // namespace mmi
