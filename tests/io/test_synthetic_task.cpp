#include <gtest/gtest.h>

#include <set>
#include <tuple>

#include "runtime/core/error.h"
#include "runtime/io/synthetic_task.h"

namespace trident::io {
namespace {

ArithmeticOptions all_ops(int digits) {
  return ArithmeticOptions{digits, parse_ops("add,sub,mul")};
}

int64_t evaluate(const ArithmeticProblem& p) {
  switch (p.op) {
    case ArithmeticOp::Add:
      return p.lhs + p.rhs;
    case ArithmeticOp::Sub:
      return p.lhs - p.rhs;
    case ArithmeticOp::Mul:
      return p.lhs * p.rhs;
  }
  return -1;
}

TEST(ArithmeticTask, KnownCompletions) {
  const ArithmeticProblem add = build_problem(58, ArithmeticOp::Add, 67);
  EXPECT_EQ(add.prompt, "58+67=");
  EXPECT_EQ(add.completion, "<think>8+7=15;5+6+1=12</think><answer>125</answer>");
  EXPECT_EQ(add.answer, "125");
  EXPECT_EQ(build_problem(12, ArithmeticOp::Add, 345).completion,
            "<think>2+5=7;1+4=5;0+3=3</think><answer>357</answer>");
  EXPECT_EQ(build_problem(0, ArithmeticOp::Add, 0).completion,
            "<think>0+0=0</think><answer>0</answer>");
  EXPECT_EQ(build_problem(52, ArithmeticOp::Sub, 17).completion,
            "<think>12-7=5;5-1-1=3</think><answer>35</answer>");
  EXPECT_EQ(build_problem(100, ArithmeticOp::Sub, 99).completion,
            "<think>10-9=1;10-9-1=0;1-0-1=0</think><answer>1</answer>");
  EXPECT_EQ(build_problem(58, ArithmeticOp::Mul, 7).completion,
            "<think>8*7=56;5*7+5=40</think><answer>406</answer>");
  EXPECT_EQ(build_problem(58, ArithmeticOp::Mul, 7).prompt, "58*7=");
}

TEST(ArithmeticTask, CarriesCountTheColumnsThatPassOneOn) {
  EXPECT_EQ(build_problem(58, ArithmeticOp::Add, 67).carries, 2);  // 15, 12
  EXPECT_EQ(build_problem(12, ArithmeticOp::Add, 345).carries, 0);
  EXPECT_EQ(build_problem(52, ArithmeticOp::Sub, 17).carries, 1);   // 12-7 borrows
  EXPECT_EQ(build_problem(100, ArithmeticOp::Sub, 99).carries, 2);  // two borrows
  EXPECT_EQ(build_problem(58, ArithmeticOp::Mul, 7).carries, 2);    // 56, 40
  EXPECT_EQ(build_problem(11, ArithmeticOp::Mul, 3).carries, 0);
}

TEST(ArithmeticTask, EveryOpInTheSetIsDrawn) {
  bool seen[3] = {false, false, false};
  for (uint64_t i = 0; i < 100; ++i) {
    seen[static_cast<int>(make_problem(7, Split::Train, i, all_ops(2)).op) >> 1] = true;
  }
  EXPECT_TRUE(seen[0] && seen[1] && seen[2]);
  for (uint64_t i = 0; i < 100; ++i) {
    EXPECT_EQ(make_problem(7, Split::Train, i, ArithmeticOptions{2, parse_ops("sub")}).op,
              ArithmeticOp::Sub);
  }
}

TEST(ArithmeticTask, CompletionsAreCorrectAndWellFormed) {
  for (Split split : {Split::Train, Split::Eval}) {
    for (uint64_t i = 0; i < 2000; ++i) {
      const ArithmeticProblem p = make_problem(3, split, i, all_ops(4));
      ASSERT_EQ(p.answer, std::to_string(evaluate(p))) << p.prompt;
      ASSERT_GE(evaluate(p), 0) << p.prompt;
      ASSERT_LT(p.lhs, 10000);
      ASSERT_TRUE(format_ok(p.completion)) << p.completion;
      ASSERT_TRUE(is_correct(p.completion, p.answer)) << p.completion;
      ASSERT_EQ(p.prompt.back(), '=');
      ASSERT_EQ(problem_split(p.lhs, p.op, p.rhs), split);
    }
  }
}

TEST(ArithmeticTask, AdditionWorkingSpellsTheAnswer) {
  // The last column's sum followed by the units digit of each earlier column's sum, read
  // from the most significant column down, is the answer.
  for (uint64_t i = 0; i < 3000; ++i) {
    const ArithmeticProblem p = make_problem(11, Split::Train, i, 5);
    const std::string think = p.completion.substr(7, p.completion.find("</think>") - 7);
    std::vector<std::string> sums;
    for (size_t start = 0; start <= think.size();) {
      const size_t end = std::min(think.find(';', start), think.size());
      const std::string term = think.substr(start, end - start);
      sums.push_back(term.substr(term.find('=') + 1));
      start = end + 1;
    }
    std::string read = sums.back();
    for (size_t k = sums.size() - 1; k-- > 0;) read += sums[k].back();
    ASSERT_EQ(std::stoll(read), std::stoll(p.answer)) << p.completion;
  }
}

TEST(ArithmeticTask, DeterministicPureFunction) {
  const ArithmeticOptions options = all_ops(3);
  for (uint64_t i : {0ull, 1ull, 17ull, 123456789ull}) {
    const ArithmeticProblem a = make_problem(42, Split::Train, i, options);
    const ArithmeticProblem b = make_problem(42, Split::Train, i, options);
    EXPECT_EQ(a.prompt, b.prompt);
    EXPECT_EQ(a.completion, b.completion);
  }
  // Different seeds give different streams.
  int same = 0;
  for (uint64_t i = 0; i < 50; ++i) {
    same +=
        make_problem(1, Split::Train, i, 3).prompt == make_problem(2, Split::Train, i, 3).prompt;
  }
  EXPECT_LT(same, 5);
  // The digits-only overload is addition.
  EXPECT_NE(make_problem(1, Split::Eval, 5, 3).prompt.find('+'), std::string::npos);
}

TEST(ArithmeticTask, TrainAndEvalAreDisjoint) {
  using Key = std::tuple<int64_t, int, int64_t>;
  std::set<Key> train, eval;
  for (uint64_t i = 0; i < 3000; ++i) {
    const ArithmeticProblem t = make_problem(5, Split::Train, i, all_ops(2));
    train.insert({t.lhs, static_cast<int>(t.op), t.rhs});
    for (uint64_t seed : {5ull, 6ull}) {  // disjoint across seeds too
      const ArithmeticProblem e = make_problem(seed, Split::Eval, i, all_ops(2));
      eval.insert({e.lhs, static_cast<int>(e.op), e.rhs});
    }
  }
  for (const Key& key : eval) EXPECT_EQ(train.count(key), 0u);
  // The 2-digit space is small, so both splits must have covered a good part of it.
  EXPECT_GT(train.size(), 1500u);
  EXPECT_GT(eval.size(), 200u);
}

TEST(ArithmeticTask, RejectsBadOptions) {
  EXPECT_THROW(make_problem(1, Split::Train, 0, 0), UserError);
  EXPECT_THROW(make_problem(1, Split::Train, 0, 10), UserError);
  EXPECT_THROW(make_problem(1, Split::Train, 0, ArithmeticOptions{3, 0}), UserError);
  EXPECT_THROW(parse_ops("add,div"), UserError);
  EXPECT_THROW(parse_ops(""), UserError);
  EXPECT_EQ(parse_ops("mul, add"), 5);
}

TEST(Rewards, ExtractAnswer) {
  EXPECT_EQ(extract_answer("<think>x</think><answer>357</answer>"), "357");
  EXPECT_EQ(extract_answer("junk <answer> 12 </answer> more"), " 12 ");
  EXPECT_EQ(extract_answer("<answer>1</answer><answer>2</answer>"), "1");
  EXPECT_FALSE(extract_answer("<answer>357").has_value());
  EXPECT_FALSE(extract_answer("357</answer>").has_value());
  EXPECT_FALSE(extract_answer("").has_value());
}

TEST(Rewards, NumericAwareMatch) {
  EXPECT_TRUE(answers_match("0357", "357"));
  EXPECT_TRUE(answers_match("  357\n", "357"));
  EXPECT_TRUE(answers_match("+357", "357"));
  EXPECT_TRUE(answers_match("-0", "0"));
  EXPECT_TRUE(answers_match("000", "0"));
  EXPECT_TRUE(answers_match("-012", "-12"));
  EXPECT_FALSE(answers_match("-12", "12"));
  EXPECT_FALSE(answers_match("3570", "357"));
  EXPECT_FALSE(answers_match("35 7", "357"));
  EXPECT_FALSE(answers_match("", "0"));
  EXPECT_FALSE(answers_match("357.0", "357"));  // integers only
  EXPECT_TRUE(answers_match(" abc ", "abc"));   // non-numeric: trimmed text
  EXPECT_TRUE(answers_match("123456789012345678901234567890", "0123456789012345678901234567890"));
  EXPECT_TRUE(is_correct("<think>t</think><answer> 0357 </answer>", "357"));
  EXPECT_FALSE(is_correct("<think>t</think><answer>358</answer>", "357"));
  EXPECT_FALSE(is_correct("<think>t</think>357", "357"));
}

TEST(Rewards, FormatCheck) {
  EXPECT_TRUE(format_ok("<think>a</think><answer>1</answer>"));
  EXPECT_TRUE(format_ok("  <think>\na\n</think>\n<answer> 1 </answer>\n"));
  EXPECT_TRUE(format_ok("<think></think><answer>1</answer>\x03"));
  EXPECT_FALSE(format_ok("<answer>1</answer>"));
  EXPECT_FALSE(format_ok("<think>a</think>"));
  EXPECT_FALSE(format_ok("<answer>1</answer><think>a</think>"));
  EXPECT_FALSE(format_ok("<think>a</think><answer></answer>"));
  EXPECT_FALSE(format_ok("<think>a</think><answer>  </answer>"));
  EXPECT_FALSE(format_ok("<think>a</think>x<answer>1</answer>"));
  EXPECT_FALSE(format_ok("<think>a</think><answer>1</answer>x"));
  EXPECT_FALSE(format_ok("x<think>a</think><answer>1</answer>"));
  EXPECT_FALSE(format_ok("<think>a<think>b</think><answer>1</answer>"));
  EXPECT_FALSE(format_ok("<think>a</think><answer>1</answer><answer>2</answer>"));
  EXPECT_FALSE(format_ok("<think>a</think><think>b</think><answer>1</answer>"));
  EXPECT_FALSE(format_ok("<think>a</think><answer>1<answer>2</answer>"));
  EXPECT_FALSE(format_ok("<think>a<answer>1</answer>"));
  EXPECT_FALSE(format_ok(""));
}

}  // namespace
}  // namespace trident::io
