// Every op × several shapes: each backward (input and weight separately) against central finite
// differences of L = <out, R>. ctest lists one case per op, shape and gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <sstream>

#include "gradient_check.h"
#include "ops/cpu/ops.h"

namespace trident::ops::testing {
namespace {

using namespace trident::ops::cpu;

struct SweepCase {
  std::string name;  // op_shape_gradient
  std::function<GradientProblem()> make;
};

// Tolerances: ops that are linear in the probed input are exact up to fp32 rounding of L;
// smooth nonlinear ops also carry the O(eps²) truncation error.
constexpr double kLinearTolerance = 2e-3;
constexpr double kSmoothTolerance = 1e-2;

Tensor garbage_like(const Tensor& t) {
  // Overwriting backward ops must not read their output: start from junk.
  return Tensor::full(t.shape(), 1234.5f);
}

std::vector<SweepCase> linear_cases(int64_t tokens, int64_t in, int64_t out, bool bf16_weight) {
  std::ostringstream shape;
  shape << "T" << tokens << "_K" << in << "_N" << out << (bf16_weight ? "_bf16w" : "");
  auto make = [=](int wrt) {
    return [=]() {
      std::mt19937 rng(static_cast<uint32_t>(tokens * 131 + in * 17 + out));
      GradientProblem p;
      Tensor w = random_tensor({out, in}, rng);
      p.inputs = {random_tensor({tokens, in}, rng), bf16_weight ? w.to(DType::BF16) : w};
      p.wrt = wrt;
      p.tolerance = kLinearTolerance;
      p.forward = [tokens, out](const std::vector<Tensor>& x) {
        Tensor y = Tensor::empty({tokens, out});
        linear_forward(x[0], x[1], y);
        return y;
      };
      if (wrt == 0) {
        p.gradient = [](const std::vector<Tensor>& x, const Tensor& r) {
          Tensor dx = garbage_like(x[0]);
          linear_backward_input(r, x[1], dx);
          return dx;
        };
      } else {
        p.gradient = [](const std::vector<Tensor>& x, const Tensor& r) {
          std::mt19937 prior_rng(77);
          const Tensor prior = random_tensor(x[1].shape(), prior_rng);
          Tensor dw = prior.clone();
          linear_backward_weight(r, x[0], dw);  // accumulates onto prior
          return subtract(dw, prior);
        };
      }
      return p;
    };
  };
  std::vector<SweepCase> cases = {{"linear_" + shape.str() + "_dx", make(0)}};
  if (!bf16_weight) cases.push_back({"linear_" + shape.str() + "_dw", make(1)});
  return cases;
}

std::vector<SweepCase> grouped_linear_cases(std::vector<int64_t> counts, int64_t in, int64_t out) {
  std::ostringstream shape;
  shape << "G";
  for (int64_t c : counts) shape << "_" << c;
  shape << "_K" << in << "_N" << out;
  const int64_t tokens = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  const int64_t groups = static_cast<int64_t>(counts.size());
  auto make = [=](int wrt) {
    return [=]() {
      std::mt19937 rng(static_cast<uint32_t>(tokens * 7 + in * 5 + out * 3 + groups));
      GradientProblem p;
      p.inputs = {random_tensor({tokens, in}, rng), random_tensor({groups, out, in}, rng)};
      p.wrt = wrt;
      p.tolerance = kLinearTolerance;
      p.forward = [=](const std::vector<Tensor>& x) {
        Tensor y = Tensor::empty({tokens, out});
        grouped_linear_forward(x[0], x[1], counts, y);
        return y;
      };
      if (wrt == 0) {
        p.gradient = [=](const std::vector<Tensor>& x, const Tensor& r) {
          Tensor dx = garbage_like(x[0]);
          grouped_linear_backward_input(r, x[1], counts, dx);
          return dx;
        };
      } else {
        p.gradient = [=](const std::vector<Tensor>& x, const Tensor& r) {
          std::mt19937 prior_rng(99);
          const Tensor prior = random_tensor(x[1].shape(), prior_rng);
          Tensor dw = prior.clone();
          grouped_linear_backward_weight(r, x[0], counts, dw);
          return subtract(dw, prior);
        };
      }
      return p;
    };
  };
  return {{"grouped_linear_" + shape.str() + "_dx", make(0)},
          {"grouped_linear_" + shape.str() + "_dw", make(1)}};
}

std::vector<SweepCase> embedding_cases(int64_t vocab, int64_t dim, std::vector<int32_t> ids) {
  std::ostringstream shape;
  shape << "V" << vocab << "_D" << dim << "_T" << ids.size();
  const int64_t tokens = static_cast<int64_t>(ids.size());
  auto make = [=]() {
    std::mt19937 rng(static_cast<uint32_t>(vocab * 3 + dim));
    GradientProblem p;
    p.inputs = {random_tensor({vocab, dim}, rng), Tensor::from_ints(ids, {tokens})};
    p.wrt = 0;
    p.tolerance = kLinearTolerance;
    p.forward = [=](const std::vector<Tensor>& x) {
      Tensor y = Tensor::empty({tokens, dim});
      embedding_forward(x[1], x[0], y);
      return y;
    };
    p.gradient = [](const std::vector<Tensor>& x, const Tensor& r) {
      std::mt19937 prior_rng(5);
      const Tensor prior = random_tensor(x[0].shape(), prior_rng);
      Tensor dtable = prior.clone();
      embedding_backward_weight(x[1], r, dtable);
      return subtract(dtable, prior);
    };
    return p;
  };
  return {{"embedding_" + shape.str() + "_dtable", make}};
}

std::vector<SweepCase> rmsnorm_cases(int64_t tokens, int64_t dim) {
  std::ostringstream shape;
  shape << "T" << tokens << "_D" << dim;
  auto make = [=](int wrt) {
    return [=]() {
      std::mt19937 rng(static_cast<uint32_t>(tokens * 11 + dim));
      GradientProblem p;
      Tensor w = random_tensor({dim}, rng, 0.5f);
      for (int64_t i = 0; i < dim; ++i) w.data<float>()[i] += 1.0f;
      p.inputs = {random_tensor({tokens, dim}, rng), w};
      p.wrt = wrt;
      p.eps = 1e-3;
      p.tolerance = wrt == 0 ? kSmoothTolerance : kLinearTolerance;
      p.forward = [=](const std::vector<Tensor>& x) {
        Tensor y = Tensor::empty({tokens, dim});
        Tensor rstd = Tensor::empty({tokens});
        rmsnorm_forward(x[0], x[1], 1e-6f, y, rstd);
        return y;
      };
      p.gradient = [=](const std::vector<Tensor>& x, const Tensor& r) {
        Tensor y = Tensor::empty({tokens, dim});
        Tensor rstd = Tensor::empty({tokens});
        rmsnorm_forward(x[0], x[1], 1e-6f, y, rstd);
        if (wrt == 0) {
          Tensor dx = garbage_like(x[0]);
          rmsnorm_backward_input(r, x[0], x[1], rstd, dx);
          return dx;
        }
        Tensor dw = Tensor::full({dim}, 0.25f);
        rmsnorm_backward_weight(r, x[0], rstd, dw);
        return subtract(dw, Tensor::full({dim}, 0.25f));
      };
      return p;
    };
  };
  return {{"rmsnorm_" + shape.str() + "_dx", make(0)}, {"rmsnorm_" + shape.str() + "_dw", make(1)}};
}

std::vector<SweepCase> swiglu_cases(int64_t tokens, int64_t width) {
  std::ostringstream shape;
  shape << "T" << tokens << "_F" << width;
  auto make = [=](int wrt) {
    return [=]() {
      std::mt19937 rng(static_cast<uint32_t>(tokens * 13 + width));
      GradientProblem p;
      p.inputs = {random_tensor({tokens, width}, rng, 3.0f), random_tensor({tokens, width}, rng)};
      p.wrt = wrt;
      p.eps = 1e-3;
      p.tolerance = wrt == 0 ? kSmoothTolerance : kLinearTolerance;
      p.forward = [=](const std::vector<Tensor>& x) {
        Tensor y = Tensor::empty({tokens, width});
        swiglu_forward(x[0], x[1], y);
        return y;
      };
      p.gradient = [=](const std::vector<Tensor>& x, const Tensor& r) {
        Tensor dgate = garbage_like(x[0]);
        Tensor dup = garbage_like(x[1]);
        swiglu_backward(r, x[0], x[1], dgate, dup);
        return wrt == 0 ? dgate : dup;
      };
      return p;
    };
  };
  return {{"swiglu_" + shape.str() + "_dgate", make(0)},
          {"swiglu_" + shape.str() + "_dup", make(1)}};
}

// axpy and scale are their own adjoints: the gradient is the same op applied to R.
std::vector<SweepCase> vector_update_cases(int64_t n) {
  const std::string shape = "N" + std::to_string(n);
  auto axpy_case = [=]() {
    std::mt19937 rng(static_cast<uint32_t>(n));
    GradientProblem p;
    p.inputs = {random_tensor({n}, rng), random_tensor({n}, rng)};
    p.tolerance = kLinearTolerance;
    p.forward = [](const std::vector<Tensor>& x) {
      Tensor y = x[1].clone();
      axpy(-0.75f, x[0], y);
      return y;
    };
    p.gradient = [](const std::vector<Tensor>&, const Tensor& r) {
      Tensor dx = Tensor::zeros(r.shape());
      axpy(-0.75f, r, dx);
      return dx;
    };
    return p;
  };
  auto scale_case = [=]() {
    std::mt19937 rng(static_cast<uint32_t>(n + 1));
    GradientProblem p;
    p.inputs = {random_tensor({n}, rng)};
    p.tolerance = kLinearTolerance;
    p.forward = [](const std::vector<Tensor>& x) {
      Tensor y = Tensor::empty(x[0].shape());
      scale(x[0], 2.5f, y);
      return y;
    };
    p.gradient = [](const std::vector<Tensor>&, const Tensor& r) {
      Tensor dx = Tensor::empty(r.shape());
      scale(r, 2.5f, dx);
      return dx;
    };
    return p;
  };
  return {{"axpy_" + shape + "_dx", axpy_case}, {"scale_" + shape + "_dx", scale_case}};
}

std::vector<SweepCase> rope_cases(int64_t tokens, int64_t heads, int64_t dim, bool yarn,
                                  bool in_place) {
  std::ostringstream shape;
  shape << "T" << tokens << "_H" << heads << "_R" << dim << (yarn ? "_yarn" : "")
        << (in_place ? "_inplace" : "");
  auto make = [=]() {
    std::mt19937 rng(static_cast<uint32_t>(tokens * 5 + heads * 3 + dim));
    YarnSettings settings;
    if (yarn) {
      settings.factor = 40.0;
      settings.original_max_position = 64;
      settings.mscale = 0.8;
      settings.mscale_all_dim = 1.0;
    }
    const RopeTable table = make_rope_table(dim, 1000, settings);
    std::vector<int32_t> positions(static_cast<size_t>(tokens));
    std::uniform_int_distribution<int32_t> pos(0, 999);
    for (auto& value : positions) value = pos(rng);
    GradientProblem p;
    p.inputs = {random_tensor({tokens, heads, dim}, rng), Tensor::from_ints(positions, {tokens})};
    p.tolerance = kLinearTolerance;
    p.forward = [=](const std::vector<Tensor>& x) {
      Tensor y = in_place ? x[0].clone() : Tensor::empty(x[0].shape());
      rope_forward(in_place ? y : x[0], x[1], table, y);
      return y;
    };
    p.gradient = [=](const std::vector<Tensor>& x, const Tensor& r) {
      Tensor dx = in_place ? r.clone() : garbage_like(x[0]);
      rope_backward(in_place ? dx : r, x[1], table, dx);
      return dx;
    };
    return p;
  };
  return {{"rope_" + shape.str() + "_dx", make}};
}

std::vector<SweepCase> attention_cases(AttentionShape s) {
  std::ostringstream shape;
  shape << "B" << s.batch << "_S" << s.seq << "_H" << s.heads << "_Dqk" << s.qk_dim << "_Dv"
        << s.v_dim;
  s.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.qk_dim)));
  const int64_t tokens = s.batch * s.seq;
  auto make = [=](int wrt) {
    return [=]() {
      std::mt19937 rng(static_cast<uint32_t>(tokens * 3 + s.heads * 7 + s.qk_dim + wrt));
      GradientProblem p;
      p.inputs = {random_tensor({tokens, s.heads, s.qk_dim}, rng, 1.5f),
                  random_tensor({tokens, s.heads, s.qk_dim}, rng, 1.5f),
                  random_tensor({tokens, s.heads, s.v_dim}, rng)};
      p.wrt = wrt;
      p.eps = 1e-3;
      p.tolerance = wrt == 2 ? kLinearTolerance : kSmoothTolerance;
      // With one key per sequence the softmax is constant: q and k get no gradient.
      p.zero_gradient = s.seq == 1 && wrt != 2;
      p.forward = [=](const std::vector<Tensor>& x) {
        Tensor out = Tensor::empty({tokens, s.heads, s.v_dim});
        Tensor lse = Tensor::empty({s.batch, s.heads, s.seq});
        attention_forward(s, x[0], x[1], x[2], out, lse);
        return out;
      };
      p.gradient = [=](const std::vector<Tensor>& x, const Tensor& r) {
        Tensor out = Tensor::empty({tokens, s.heads, s.v_dim});
        Tensor lse = Tensor::empty({s.batch, s.heads, s.seq});
        attention_forward(s, x[0], x[1], x[2], out, lse);
        Tensor dq = garbage_like(x[0]);
        Tensor dk = garbage_like(x[1]);
        Tensor dv = garbage_like(x[2]);
        attention_backward(s, r, x[0], x[1], x[2], out, lse, dq, dk, dv);
        return wrt == 0 ? dq : wrt == 1 ? dk : dv;
      };
      return p;
    };
  };
  const std::string base = "attention_" + shape.str();
  return {{base + "_dq", make(0)}, {base + "_dk", make(1)}, {base + "_dv", make(2)}};
}

// The bias is 4 · 2^rank(e) for a random ranking: every biased score, and every sum of two
// of them, differs from the others by more than 1, while scores live in (0, 1). So the
// (non-differentiable) selection is the same for every token and at x ± eps, and the check
// sees only the differentiable part: normalisation, scaling and sigmoid/softmax.
GradientProblem router_problem(const RouterSettings& settings, int64_t tokens, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t experts = settings.experts;
  Tensor logits = random_tensor({tokens, experts}, rng, 2.0f);
  std::vector<int64_t> rank(static_cast<size_t>(experts));
  std::iota(rank.begin(), rank.end(), 0);
  std::shuffle(rank.begin(), rank.end(), rng);
  Tensor bias = Tensor::empty({experts});
  for (int64_t e = 0; e < experts; ++e) {
    bias.data<float>()[e] = std::ldexp(4.0f, static_cast<int>(rank[static_cast<size_t>(e)]));
  }
  GradientProblem p;
  p.inputs = {logits, bias};
  p.eps = 1e-3;
  p.tolerance = kSmoothTolerance;
  p.forward = [=](const std::vector<Tensor>& x) {
    Tensor s = Tensor::empty({tokens, experts});
    Tensor idx = Tensor::empty({tokens, settings.top_k}, DType::I32);
    Tensor w = Tensor::empty({tokens, settings.top_k});
    router_forward(settings, x[0], x[1], idx, w, s);
    return w;
  };
  p.gradient = [=](const std::vector<Tensor>& x, const Tensor& r) {
    Tensor s = Tensor::empty({tokens, experts});
    Tensor idx = Tensor::empty({tokens, settings.top_k}, DType::I32);
    Tensor w = Tensor::empty({tokens, settings.top_k});
    router_forward(settings, x[0], x[1], idx, w, s);
    Tensor dlogits = garbage_like(x[0]);
    router_backward(settings, r, idx, s, dlogits);
    return dlogits;
  };
  return p;
}

std::vector<SweepCase> router_cases(RouterSettings settings, int64_t tokens) {
  std::ostringstream shape;
  shape << "E" << settings.experts << "_k" << settings.top_k << "_G" << settings.n_group << "_"
        << settings.topk_group << "_T" << tokens << (settings.sigmoid ? "" : "_softmax")
        << (settings.normalize ? "" : "_unnormalised");
  const uint32_t seed = static_cast<uint32_t>(settings.experts * 7 + settings.top_k + tokens);
  return {{"router_" + shape.str() + "_dlogits",
           [=]() { return router_problem(settings, tokens, seed); }}};
}

std::vector<int32_t> random_choices(int64_t tokens, int64_t k, int64_t experts, uint32_t seed) {
  // k distinct experts per token, as the router produces.
  std::mt19937 rng(seed);
  std::vector<int32_t> out;
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<int32_t> all(static_cast<size_t>(experts));
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng);
    out.insert(out.end(), all.begin(), all.begin() + k);
  }
  return out;
}

std::vector<SweepCase> permute_cases(int64_t tokens, int64_t k, int64_t experts, int64_t dim) {
  std::ostringstream shape;
  shape << "T" << tokens << "_k" << k << "_E" << experts << "_D" << dim;
  const std::vector<int32_t> choice =
      random_choices(tokens, k, experts, static_cast<uint32_t>(tokens + k + experts));
  const Tensor indices = Tensor::from_ints(choice, {tokens, k});
  const PermutePlan plan = make_permute_plan(indices, experts);
  auto permute_case = [=]() {
    std::mt19937 rng(static_cast<uint32_t>(dim));
    GradientProblem p;
    p.inputs = {random_tensor({tokens, dim}, rng)};
    p.tolerance = kLinearTolerance;
    p.forward = [=](const std::vector<Tensor>& x) {
      Tensor out = Tensor::empty({tokens * k, dim});
      permute_forward(plan, x[0], out);
      return out;
    };
    p.gradient = [=](const std::vector<Tensor>& x, const Tensor& r) {
      Tensor dx = garbage_like(x[0]);
      permute_backward(plan, r, dx);
      return dx;
    };
    return p;
  };
  auto unpermute_case = [=](int wrt) {
    return [=]() {
      std::mt19937 rng(static_cast<uint32_t>(dim + 1));
      GradientProblem p;
      p.inputs = {random_tensor({tokens * k, dim}, rng), random_tensor({tokens, k}, rng)};
      p.wrt = wrt;
      p.tolerance = kLinearTolerance;
      p.forward = [=](const std::vector<Tensor>& x) {
        Tensor out = Tensor::empty({tokens, dim});
        unpermute_forward(plan, x[0], x[1], out);
        return out;
      };
      p.gradient = [=](const std::vector<Tensor>& x, const Tensor& r) {
        Tensor dy = garbage_like(x[0]);
        Tensor dw = garbage_like(x[1]);
        unpermute_backward(plan, r, x[0], x[1], dy, dw);
        return wrt == 0 ? dy : dw;
      };
      return p;
    };
  };
  return {{"permute_" + shape.str() + "_dx", permute_case},
          {"unpermute_" + shape.str() + "_dy", unpermute_case(0)},
          {"unpermute_" + shape.str() + "_dweights", unpermute_case(1)}};
}

std::vector<SweepCase> cross_entropy_cases(int64_t tokens, int64_t vocab, int ignored_every) {
  std::ostringstream shape;
  shape << "T" << tokens << "_V" << vocab << (ignored_every ? "_ignore" : "");
  auto make = [=]() {
    std::mt19937 rng(static_cast<uint32_t>(tokens * 3 + vocab));
    std::vector<int32_t> targets(static_cast<size_t>(tokens));
    std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(vocab - 1));
    for (size_t t = 0; t < targets.size(); ++t) {
      const bool ignore = ignored_every > 0 && t % static_cast<size_t>(ignored_every) == 1;
      targets[t] = ignore ? kIgnoreIndex : pick(rng);
    }
    const float grad_scale = 1.0f / static_cast<float>(tokens);
    GradientProblem p;
    p.inputs = {random_tensor({tokens, vocab}, rng, 3.0f), Tensor::from_ints(targets, {tokens})};
    p.eps = 1e-3;
    p.tolerance = kSmoothTolerance;
    // The output is the loss relative to its unperturbed value, so the fp32 output keeps the
    // digits that a finite difference needs.
    Tensor lse0 = Tensor::empty({tokens});
    const double base = cross_entropy_forward(p.inputs[0], p.inputs[1], lse0).loss_sum;
    p.forward = [=](const std::vector<Tensor>& x) {
      Tensor lse = Tensor::empty({tokens});
      const CrossEntropyResult result = cross_entropy_forward(x[0], x[1], lse);
      return Tensor::from_vector({static_cast<float>((result.loss_sum - base) * grad_scale)}, {1});
    };
    p.gradient = [=](const std::vector<Tensor>& x, const Tensor& r) {
      Tensor lse = Tensor::empty({tokens});
      cross_entropy_forward(x[0], x[1], lse);
      Tensor dlogits = garbage_like(x[0]);
      cross_entropy_backward(x[0], x[1], lse, grad_scale * r.item(0), dlogits);
      return dlogits;
    };
    return p;
  };
  return {{"cross_entropy_" + shape.str() + "_dlogits", make}};
}

std::vector<SweepCase> all_cases() {
  std::vector<SweepCase> cases;
  auto add = [&cases](std::vector<SweepCase> more) {
    cases.insert(cases.end(), more.begin(), more.end());
  };
  add(linear_cases(1, 1, 1, false));
  add(linear_cases(1, 7, 3, false));
  add(linear_cases(5, 3, 9, false));
  add(linear_cases(17, 33, 12, false));
  add(linear_cases(6, 19, 5, true));
  add(grouped_linear_cases({2, 0, 3}, 5, 4));
  add(grouped_linear_cases({0, 0, 1}, 3, 7));
  add(grouped_linear_cases({4, 1, 0, 2}, 9, 6));
  add(embedding_cases(7, 5, {3}));
  add(embedding_cases(11, 9, {2, 5, 2, 0, 10, 5, 2}));
  add(rmsnorm_cases(1, 3));
  add(rmsnorm_cases(2, 2));
  add(rmsnorm_cases(1, 8));
  add(rmsnorm_cases(5, 17));
  add(rmsnorm_cases(3, 130));
  add(swiglu_cases(1, 1));
  add(swiglu_cases(4, 13));
  add(vector_update_cases(1));
  add(vector_update_cases(37));
  add(rope_cases(1, 1, 2, false, false));
  add(rope_cases(5, 3, 8, false, false));
  add(rope_cases(4, 1, 16, true, false));
  add(rope_cases(3, 2, 6, true, true));
  add(attention_cases({1, 1, 1, 1, 1, 1.0f}));
  add(attention_cases({1, 5, 2, 3, 2, 1.0f}));
  add(attention_cases({2, 7, 3, 6, 4, 1.0f}));
  add(attention_cases({1, 33, 1, 8, 5, 1.0f}));
  add(attention_cases({1, 131, 1, 4, 3, 1.0f}));  // crosses the 128-row query block
  add(attention_cases({1, 37, 2, 8, 8, 1.0f}));   // crosses a 32-row backward block
  add(attention_cases({1, 9, 1, 65, 3, 1.0f}));   // wide heads: sgemm
  RouterSettings plain;
  plain.experts = 8;
  plain.top_k = 2;
  add(router_cases(plain, 1));
  RouterSettings grouped = plain;
  grouped.n_group = 4;
  grouped.topk_group = 2;
  grouped.scaling = 2.5f;
  add(router_cases(grouped, 5));
  RouterSettings wide;
  wide.experts = 16;
  wide.top_k = 4;
  wide.n_group = 4;
  wide.topk_group = 3;
  add(router_cases(wide, 3));
  RouterSettings softmax = grouped;
  softmax.sigmoid = false;
  add(router_cases(softmax, 4));
  RouterSettings unnormalised = wide;
  unnormalised.normalize = false;
  add(router_cases(unnormalised, 2));
  add(permute_cases(1, 1, 1, 3));
  add(permute_cases(6, 2, 5, 4));
  add(permute_cases(9, 3, 8, 7));
  add(cross_entropy_cases(1, 2, 0));
  add(cross_entropy_cases(7, 11, 3));
  add(cross_entropy_cases(16, 50, 4));
  return cases;
}

class OpGradient : public ::testing::TestWithParam<SweepCase> {};

TEST_P(OpGradient, MatchesFiniteDifferences) {
  GradientProblem problem = GetParam().make();
  const GradientCheckResult result = check_gradient(problem, 2024);
  ASSERT_GT(result.checked, 0);
  RecordProperty("relative_error", std::to_string(result.relative_error));
  RecordProperty("numeric_norm", std::to_string(result.numeric_norm));
  if (problem.zero_gradient) {
    EXPECT_LT(result.analytic_norm, 1e-5) << GetParam().name;
    EXPECT_LT(result.numeric_norm, 1e-2) << GetParam().name;
    return;
  }
  ASSERT_GT(result.numeric_norm, 1e-4) << GetParam().name << ": degenerate case, no gradient";
  EXPECT_LE(result.relative_error, problem.tolerance)
      << GetParam().name << ": |numeric| " << result.numeric_norm << " |analytic| "
      << result.analytic_norm << " max |diff| " << result.max_abs_difference << " over "
      << result.checked << " elements";
}

INSTANTIATE_TEST_SUITE_P(Sweep, OpGradient, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<SweepCase>& case_info) {
                           return case_info.param.name;
                         });

}  // namespace
}  // namespace trident::ops::testing
