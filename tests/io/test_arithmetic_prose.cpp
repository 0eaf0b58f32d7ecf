// The prose corpus of the R1-Zero recipe: worked solutions in prose, a small tagged share.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <tuple>

#include "runtime/io/arithmetic_prose.h"
#include "runtime/io/tokenizer.h"
#include "tests/support/expect_user_error.h"

namespace trident::io {
namespace {

const ArithmeticOptions kAdd2{2, 1};

// The number at the end of the text ("… So the answer is 125." -> "125").
std::string last_number(const std::string& text) {
  size_t end = text.find_last_of("0123456789");
  if (end == std::string::npos) return "";
  size_t begin = end;
  while (begin > 0 && text[begin - 1] >= '0' && text[begin - 1] <= '9') --begin;
  return text.substr(begin, end - begin + 1);
}

TEST(ArithmeticProse, KnownWordings) {
  const ArithmeticProblem add = build_problem(58, ArithmeticOp::Add, 67);
  EXPECT_EQ(prose_solution(add, {0, 0, 0, 0}),
            "8 plus 7 is 15, write 5 and carry 1. 5 plus 6 plus 1 is 12. So the answer is 125.");
  EXPECT_EQ(prose_solution(add, {4, 1, 2, 3}),
            "Columns: 8 + 7 = 15; 5 down, 1 carried. 5 + 6 + 1 = 12. So 58+67=125.");
  EXPECT_EQ(prose_solution(add, {7, 2, 1, 2}),
            "Start with the ones. 8 and 7 make 15, so put down 5 and carry 1. 5 and 6 and 1 make "
            "12. That gives 125.");
  EXPECT_EQ(prose_solution(build_problem(12, ArithmeticOp::Add, 34), {1, 0, 0, 4}),
            "Sum: 2 plus 4 is 6, write 6. 1 plus 3 is 4. Result: 46.");
  EXPECT_EQ(prose_solution(build_problem(52, ArithmeticOp::Sub, 17), {0, 0, 0, 1}),
            "12 minus 7 is 5, write 5 and borrow 1. 5 minus 1 minus 1 is 3. The answer is 35.");
  EXPECT_EQ(prose_solution(build_problem(52, ArithmeticOp::Sub, 17), {0, 2, 2, 1}),
            "12 take away 7 leaves 5; 5 down, 1 borrowed. 5 take away 1 take away 1 leaves 3. "
            "The answer is 35.");
  // The compact notation is the tagged working's, without the tags.
  EXPECT_EQ(prose_solution(build_problem(52, ArithmeticOp::Sub, 17), {5, 3, 1, 2}),
            "We get: 12-7=5;5-1-1=3. That gives 35.");
  EXPECT_EQ(prose_solution(build_problem(58, ArithmeticOp::Mul, 7), {0, 3, 2, 3}),
            "8*7=56;5*7+5=40. So 58*7=406.");
  EXPECT_EQ(prose_solution(build_problem(58, ArithmeticOp::Mul, 7), {0, 0, 0, 0}),
            "8 times 7 is 56, write 6 and carry 5. 5 times 7 plus 5 is 40. So the answer is 406.");
}

TEST(ArithmeticProse, DocumentsAreTheProblemsOfMakeProblem) {
  // GRPO samples the prompts of make_problem: the base model must have read the same ones.
  for (Split split : {Split::Train, Split::Eval}) {
    for (uint64_t i = 0; i < 500; ++i) {
      const ProseDocument doc = make_prose_document(9, split, i, kAdd2, ProseOptions{});
      const ArithmeticProblem p = make_problem(9, split, i, kAdd2);
      ASSERT_EQ(doc.problem.prompt, p.prompt);
      ASSERT_EQ(doc.problem.answer, p.answer);
      ASSERT_EQ(doc.problem.completion, p.completion);
    }
  }
}

TEST(ArithmeticProse, DeterministicPureFunction) {
  const ArithmeticOptions options{3, parse_ops("add,sub,mul")};
  for (uint64_t i : {0ull, 1ull, 17ull, 123456789ull}) {
    const ProseDocument a = make_prose_document(42, Split::Train, i, options, ProseOptions{});
    const ProseDocument b = make_prose_document(42, Split::Train, i, options, ProseOptions{});
    EXPECT_EQ(a.problem.prompt, b.problem.prompt);
    EXPECT_EQ(a.completion, b.completion);
    EXPECT_EQ(a.tagged, b.tagged);
  }
  int same = 0;
  for (uint64_t i = 0; i < 50; ++i) {
    same += make_prose_document(1, Split::Train, i, kAdd2, {}).completion ==
            make_prose_document(2, Split::Train, i, kAdd2, {}).completion;
  }
  EXPECT_LT(same, 5);
}

TEST(ArithmeticProse, TrainAndEvalAreDisjoint) {
  using Key = std::tuple<int64_t, int, int64_t>;
  std::set<Key> train, eval;
  for (uint64_t i = 0; i < 3000; ++i) {
    const ProseDocument t = make_prose_document(5, Split::Train, i, kAdd2, {});
    train.insert({t.problem.lhs, static_cast<int>(t.problem.op), t.problem.rhs});
    for (uint64_t seed : {5ull, 6ull}) {
      const ProseDocument e = make_prose_document(seed, Split::Eval, i, kAdd2, {});
      eval.insert({e.problem.lhs, static_cast<int>(e.problem.op), e.problem.rhs});
    }
  }
  for (const Key& key : eval) EXPECT_EQ(train.count(key), 0u);
  EXPECT_GT(train.size(), 1500u);
  EXPECT_GT(eval.size(), 200u);
}

TEST(ArithmeticProse, TaggedShareWithinTolerance) {
  // 20000 draws of p = 0.04: standard deviation 0.0014, so ±0.005 is 3.6 of them.
  for (double share : {0.04, 0.01, 0.05}) {
    int tagged = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
      const ProseDocument doc =
          make_prose_document(3, Split::Train, static_cast<uint64_t>(i), kAdd2, {share});
      tagged += doc.tagged;
      ASSERT_EQ(doc.tagged, doc.completion == doc.problem.completion);
    }
    EXPECT_NEAR(static_cast<double>(tagged) / n, share, 0.005) << share;
  }
  for (uint64_t i = 0; i < 300; ++i) {
    EXPECT_FALSE(make_prose_document(3, Split::Train, i, kAdd2, {0.0}).tagged);
    EXPECT_TRUE(make_prose_document(3, Split::Train, i, kAdd2, {1.0}).tagged);
  }
}

TEST(ArithmeticProse, ShareChangesOnlyWhichDocumentsAreTagged) {
  for (uint64_t i = 0; i < 300; ++i) {
    const ProseDocument low = make_prose_document(4, Split::Train, i, kAdd2, {0.02});
    const ProseDocument high = make_prose_document(4, Split::Train, i, kAdd2, {0.3});
    ASSERT_EQ(low.problem.prompt, high.problem.prompt);
    if (low.tagged) {
      ASSERT_TRUE(high.tagged);  // a lower share tags a subset
    }
    if (!high.tagged) {
      ASSERT_EQ(low.completion, high.completion);
    }
  }
}

TEST(ArithmeticProse, AnswersAreCorrectAndOnlyTaggedDocumentsPassTheFormatCheck) {
  const ArithmeticOptions all{3, parse_ops("add,sub,mul")};
  for (Split split : {Split::Train, Split::Eval}) {
    for (uint64_t i = 0; i < 3000; ++i) {
      const ProseDocument doc = make_prose_document(8, split, i, all, {0.1});
      if (doc.tagged) {
        ASSERT_TRUE(format_ok(doc.completion)) << doc.completion;
        ASSERT_TRUE(is_correct(doc.completion, doc.problem.answer)) << doc.completion;
        continue;
      }
      ASSERT_EQ(last_number(doc.completion), doc.problem.answer) << doc.completion;
      ASSERT_EQ(doc.completion.back(), '.');
      ASSERT_FALSE(format_ok(doc.completion)) << doc.completion;
      ASSERT_FALSE(extract_answer(doc.completion).has_value()) << doc.completion;
      ASSERT_EQ(doc.completion.find('<'), std::string::npos) << doc.completion;
    }
  }
}

TEST(ArithmeticProse, AdditionWorkingSpellsTheAnswer) {
  // The results of the columns ("… is 15", "… is 12"): the last whole, then the units digit of
  // each earlier one from the most significant column down, read as the answer.
  for (uint64_t i = 0; i < 2000; ++i) {
    const ArithmeticProblem p = make_problem(11, Split::Train, i, 4);
    const std::string text = prose_solution(
        p, {static_cast<int>(i % kProseOpenings), 0, static_cast<int>(i % kProseClauses), 0});
    std::vector<std::string> sums;
    for (size_t at = text.find(" is "); at != std::string::npos; at = text.find(" is ", at + 1)) {
      const size_t begin = at + 4;
      const size_t end = text.find_first_not_of("0123456789", begin);
      if (end > begin) sums.push_back(text.substr(begin, end - begin));
    }
    sums.pop_back();  // "So the answer is …"
    ASSERT_FALSE(sums.empty()) << text;
    std::string read = sums.back();
    for (size_t k = sums.size() - 1; k-- > 0;) read += sums[k].back();
    ASSERT_EQ(std::stoll(read), std::stoll(p.answer)) << text;
  }
}

TEST(ArithmeticProse, WordingVariesAcrossDocuments) {
  // Every wording is distinct: 8 openings × (3 wordings × 3 clauses + the compact notation,
  // which has no clause) × 5 closings.
  const ArithmeticProblem fixed = build_problem(58, ArithmeticOp::Add, 67);
  std::set<std::string> all_wordings;
  for (int o = 0; o < kProseOpenings; ++o) {
    for (int w = 0; w < kProseWords; ++w) {
      for (int c = 0; c < kProseClauses; ++c) {
        for (int e = 0; e < kProseClosings; ++e) {
          all_wordings.insert(prose_solution(fixed, {o, w, c, e}));
        }
      }
    }
  }
  EXPECT_EQ(all_wordings.size(), 400u);
  EXPECT_EQ(prose_solution(fixed, {1, 3, 0, 0}), "Sum: 8+7=15;5+6+1=12. So the answer is 125.");
  // The documents draw every wording, each with its own style's text.
  std::set<std::tuple<int, int, int, int>> drawn;
  for (uint64_t i = 0; i < 3000; ++i) {
    const ProseDocument doc = make_prose_document(2, Split::Train, i, kAdd2, {});
    if (doc.tagged) continue;
    ASSERT_EQ(doc.completion, prose_solution(doc.problem, doc.style));
    drawn.insert({doc.style.opening, doc.style.words, doc.style.clause, doc.style.closing});
  }
  // 480 styles, 2900 prose documents: each style is drawn about 6 times.
  EXPECT_GE(drawn.size(), 470u);
}

TEST(ArithmeticProse, TwoDigitDocumentsFitTheRecipeRows) {
  // configs/r1-zero.textproto trains on rows of seq_len + 1 = 129 tokens: prompt, completion and
  // EOS of every 2-digit addition document fit whole.
  size_t longest = 0;
  for (uint64_t i = 0; i < 5000; ++i) {
    const ProseDocument doc = make_prose_document(6, Split::Train, i, kAdd2, {});
    longest =
        std::max(longest, ByteTokenizer::encode(doc.problem.prompt + doc.completion).size() + 1);
  }
  EXPECT_LE(longest, 129u);
}

TEST(ArithmeticProse, RejectsAShareOutsideZeroToOne) {
  for (double share : {-0.01, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    trident::testing::expect_user_error(
        [&] { make_prose_document(1, Split::Train, 0, kAdd2, {share}); },
        {"data.prose_tagged_share", "must be in [0, 1]"});
  }
}

}  // namespace
}  // namespace trident::io
