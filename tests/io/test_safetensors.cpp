#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "runtime/core/error.h"
#include "runtime/io/half.h"
#include "runtime/io/safetensors.h"
#include "tests/io/temp_dir.h"
#include "tests/support/expect_user_error.h"

namespace trident::io {
namespace {

using testing::TempDir;
using trident::testing::expect_user_error;

// A safetensors file from a header string and raw data, byte by byte.
void write_raw(const std::string& path, const std::string& header, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const uint64_t length = header.size();
  out.write(reinterpret_cast<const char*>(&length), 8);
  out << header << data;
}

std::vector<float> arange_values() {
  std::vector<float> values(24);
  for (int i = 0; i < 24; ++i) values[i] = (static_cast<float>(i) - 11.5f) / 7.0f;
  return values;
}

Tensor int_tensor(DType dtype) {
  Tensor t = Tensor::empty({4, 6}, dtype);
  for (int64_t i = 0; i < 24; ++i) {
    const int64_t v = i * 1000003 - 7;
    if (dtype == DType::I32)
      t.data<int32_t>()[i] = static_cast<int32_t>(v);
    else
      t.data<int64_t>()[i] = v;
  }
  return t;
}

// Writes the five dtypes from the same values; also the file the numpy check reads.
void write_all_dtypes(const std::string& path) {
  const Tensor source = Tensor::from_vector(arange_values(), {4, 6});
  SafetensorsWriter writer(path,
                           {{"a.f32", StDType::F32, {4, 6}},
                            {"b.f16", StDType::F16, {4, 6}},
                            {"c.bf16", StDType::BF16, {4, 6}},
                            {"d.i32", StDType::I32, {4, 6}},
                            {"e.i64", StDType::I64, {4, 6}}},
                           {{"format", "pt"}, {"writer", "trident"}});
  writer.write("e.i64", int_tensor(DType::I32));  // any order; I32 widened to I64
  writer.write("c.bf16", source);                 // F32 rounded to BF16
  writer.write("b.f16", source);                  // F32 rounded to F16
  writer.write("a.f32", source);
  writer.write("d.i32", int_tensor(DType::I64));
  writer.finish();
}

TEST(Half, EveryF16RoundTripsThroughFloat) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const float value = f16_to_float(static_cast<uint16_t>(bits));
    if (std::isnan(value)) {
      EXPECT_TRUE(std::isnan(f16_to_float(float_to_f16(value))));
      continue;
    }
    ASSERT_EQ(float_to_f16(value), bits) << std::hex << bits << " -> " << value;
  }
}

TEST(Half, KnownValuesAndRounding) {
  EXPECT_EQ(f16_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(f16_to_float(0x03ff), 1023.0f * std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_float(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(f16_to_float(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_float(0x3555), 0.333251953125f);
  EXPECT_EQ(f16_to_float(0xc000), -2.0f);
  EXPECT_TRUE(std::signbit(f16_to_float(0x8000)));
  EXPECT_EQ(f16_to_float(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16_to_float(0x7e00)));
  EXPECT_EQ(float_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even
  EXPECT_EQ(float_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(float_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(float_to_f16(65520.0f), 0x7c00);               // rounds to infinity
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // tie -> even (zero)
  EXPECT_EQ(float_to_f16(1.5f * std::ldexp(1.0f, -25)), 0x0001);
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(float_to_f16(-1e-10f), 0x8000);
  EXPECT_EQ(float_to_f16(std::ldexp(1023.5f, -24)), 0x0400);  // subnormal carries up
}

TEST(Safetensors, HandBuiltF16File) {
  TempDir dir;
  const std::string path = dir.file("f16.safetensors");
  const std::vector<uint16_t> bits = {0x3c00, 0xc000, 0x0001, 0x8001, 0x03ff, 0x0400,
                                      0x7bff, 0x3555, 0x7c00, 0xfc00, 0x0000, 0x8000};
  const std::vector<float> expected = {1.0f,
                                       -2.0f,
                                       5.9604644775390625e-08f,
                                       -5.9604644775390625e-08f,
                                       6.097555160522461e-05f,
                                       6.103515625e-05f,
                                       65504.0f,
                                       0.333251953125f,
                                       std::numeric_limits<float>::infinity(),
                                       -std::numeric_limits<float>::infinity(),
                                       0.0f,
                                       -0.0f};
  std::string data(bits.size() * 2, '\0');
  std::memcpy(data.data(), bits.data(), data.size());
  write_raw(path,
            R"({"w":{"dtype":"F16","shape":[3,4],"data_offsets":[0,24]},)"
            R"("__metadata__":{"format":"pt"}})",
            data);
  const SafetensorsFile file(path);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.info("w").dtype, StDType::F16);
  const Tensor w = file.load("w");
  ASSERT_EQ(w.dtype(), DType::F32);
  ASSERT_EQ(w.shape(), (Shape{3, 4}));
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(w.data<float>()[i], expected[i]) << i;
    EXPECT_EQ(std::signbit(w.data<float>()[i]), std::signbit(expected[i])) << i;
  }
  EXPECT_EQ(file.load("w", DType::BF16).item(7), bf16_to_float(float_to_bf16(0.333251953125f)));
  expect_user_error([&] { file.view("w"); }, {path, "'w'", "load()"});
  expect_user_error([&] { file.load("w", DType::I32); }, {"floats and integers"});
}

TEST(Safetensors, RoundTripEachDtype) {
  TempDir dir;
  const std::string path = dir.file("all.safetensors");
  write_all_dtypes(path);
  const SafetensorsFile file(path);
  EXPECT_EQ(file.names(), (std::vector<std::string>{"a.f32", "b.f16", "c.bf16", "d.i32", "e.i64"}));
  EXPECT_EQ(file.metadata().at("writer"), "trident");
  const std::vector<float> values = arange_values();

  const Tensor a = file.view("a.f32");
  EXPECT_TRUE(a.is_view());
  EXPECT_EQ(a.to_vector(), values);
  const Tensor c = file.view("c.bf16");
  ASSERT_EQ(c.dtype(), DType::BF16);
  const Tensor b = file.load("b.f16");
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(b.data<float>()[i], f16_to_float(float_to_f16(values[i])));
    EXPECT_EQ(c.item(static_cast<int64_t>(i)), bf16_to_float(float_to_bf16(values[i])));
  }
  EXPECT_LT(relative_error(b, Tensor::from_vector(values, {4, 6})), 1e-3);
  const Tensor d = file.view("d.i32"), e = file.view("e.i64");
  for (int64_t i = 0; i < 24; ++i) {
    EXPECT_EQ(d.data<int32_t>()[i], i * 1000003 - 7);
    EXPECT_EQ(e.data<int64_t>()[i], i * 1000003 - 7);
  }
  EXPECT_EQ(file.load("e.i64", DType::I32).data<int32_t>()[23], 23 * 1000003 - 7);
  EXPECT_EQ(file.load("a.f32", DType::BF16).item(3), c.item(3));
}

TEST(Safetensors, WriterChecksItsInputs) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  {
    SafetensorsWriter writer(path, {{"x", StDType::F32, {2}}, {"y", StDType::I64, {1}}});
    expect_user_error([&] { writer.write("x", Tensor::zeros({3})); }, {"'x'", "[2]"});
    expect_user_error([&] { writer.write("z", Tensor::zeros({2})); }, {"'z'", "not declared"});
    expect_user_error([&] { writer.write("y", Tensor::zeros({1})); }, {"floats and integers"});
    writer.write("x", Tensor::zeros({2}));
    expect_user_error([&] { writer.finish(); }, {"'y'", "never written"});
  }
  EXPECT_FALSE(std::filesystem::exists(path));  // an unfinished file never appears
  expect_user_error(
      [&] {
        SafetensorsWriter w(path, {{"x", StDType::F32, {1}}, {"x", StDType::F32, {1}}});
      },
      {"declared twice"});
  SafetensorsWriter narrow(path, {{"n", StDType::I32, {1}}});
  Tensor big = Tensor::empty({1}, DType::I64);
  big.data<int64_t>()[0] = int64_t{1} << 40;
  expect_user_error([&] { narrow.write("n", big); }, {"does not fit in I32"});
}

TEST(Safetensors, EmptyAndScalarTensors) {
  TempDir dir;
  const std::string path = dir.file("e.safetensors");
  SafetensorsWriter writer(path, {{"empty", StDType::F32, {0, 3}}, {"scalar", StDType::F32, {}}});
  writer.write("empty", Tensor::zeros({0, 3}));
  writer.write("scalar", Tensor::full({}, 2.5f));
  writer.finish();
  const SafetensorsFile file(path);
  EXPECT_EQ(file.load("empty").numel(), 0);
  EXPECT_EQ(file.load("scalar").item(0), 2.5f);
}

class CorruptSafetensors : public ::testing::Test {
 protected:
  std::string path() const { return dir_.file("bad.safetensors"); }
  void expect_rejected(const std::string& header, const std::string& data,
                       std::initializer_list<std::string> fragments) {
    write_raw(path(), header, data);
    expect_user_error([&] { SafetensorsFile file(path()); }, {path()});
    expect_user_error([&] { SafetensorsFile file(path()); }, fragments);
  }
  TempDir dir_;
};

TEST_F(CorruptSafetensors, HeaderLength) {
  std::ofstream(path(), std::ios::binary) << "abc";
  expect_user_error([&] { SafetensorsFile file(path()); }, {path(), "too short"});
  {
    std::ofstream out(path(), std::ios::binary | std::ios::trunc);
    const uint64_t length = 1000;
    out.write(reinterpret_cast<const char*>(&length), 8);
    out << "{}";
  }
  expect_user_error([&] { SafetensorsFile file(path()); }, {path(), "header length 1000"});
}

TEST_F(CorruptSafetensors, BadJson) {
  expect_rejected(R"({"w": {"dtype": "F32",)", "", {"not valid JSON"});
  expect_rejected(R"([1, 2])", "", {"JSON object"});
}

TEST_F(CorruptSafetensors, UnknownDtypeNamesTheTensor) {
  expect_rejected(R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", "xx",
                  {"'w'", "F8_E4M3", "F32, BF16, F16, I32, I64"});
}

TEST_F(CorruptSafetensors, OffsetsAndSizes) {
  expect_rejected(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234",
                  {"'w'", "outside the data section"});
  expect_rejected(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "12345678",
                  {"'w'", "needs 12"});
  expect_rejected(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", "12345678",
                  {"'w'", "data_offsets"});
  expect_rejected(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", "12345678",
                  {"'w'", "non-negative"});
  expect_rejected(R"({"w":{"dtype":"F32","shape":[2]}})", "12345678", {"'w'", "data_offsets"});
  expect_rejected(R"({"v":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                  R"("w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                  "123456789abc", {"'v'", "'w'", "overlap"});
}

TEST_F(CorruptSafetensors, TruncatedFileNamesTheTensor) {
  TempDir dir;
  const std::string good = dir.file("good.safetensors");
  write_all_dtypes(good);
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  bytes.resize(bytes.size() - 10);
  std::ofstream(path(), std::ios::binary | std::ios::trunc) << bytes;
  expect_user_error([&] { SafetensorsFile file(path()); }, {path(), "tensor '", "truncated"});
}

TEST(SafetensorsDirectory, ShardedIndex) {
  TempDir dir;
  {
    SafetensorsWriter first(dir.file("model-00001-of-00002.safetensors"),
                            {{"model.embed_tokens.weight", StDType::BF16, {4, 2}},
                             {"model.norm.weight", StDType::F32, {2}}});
    first.write("model.embed_tokens.weight", Tensor::full({4, 2}, 0.5f));
    first.write("model.norm.weight", Tensor::full({2}, 1.0f));
    first.finish();
    SafetensorsWriter second(dir.file("model-00002-of-00002.safetensors"),
                             {{"lm_head.weight", StDType::F16, {4, 2}}});
    second.write("lm_head.weight", Tensor::full({4, 2}, -0.25f));
    second.finish();
    write_safetensors_index(dir.path().string(),
                            {{"model.embed_tokens.weight", "model-00001-of-00002.safetensors"},
                             {"model.norm.weight", "model-00001-of-00002.safetensors"},
                             {"lm_head.weight", "model-00002-of-00002.safetensors"}},
                            16 + 8 + 16);
  }
  const SafetensorsDirectory model(dir.path().string());
  EXPECT_EQ(model.names(), (std::vector<std::string>{"lm_head.weight", "model.embed_tokens.weight",
                                                     "model.norm.weight"}));
  EXPECT_EQ(model.load("lm_head.weight").to_vector(), std::vector<float>(8, -0.25f));
  EXPECT_EQ(model.view("model.embed_tokens.weight").item(7), 0.5f);
  EXPECT_EQ(model.info("model.norm.weight").dtype, StDType::F32);
  EXPECT_NE(model.file_of("lm_head.weight").path().find("00002"), std::string::npos);
  expect_user_error([&] { model.load("missing.weight"); }, {"missing.weight"});

  // An index that points a tensor at the wrong shard, or at a shard that does not exist.
  write_safetensors_index(dir.path().string(),
                          {{"lm_head.weight", "model-00001-of-00002.safetensors"}}, 0);
  expect_user_error([&] { SafetensorsDirectory d(dir.path().string()); },
                    {"lm_head.weight", "does not hold it"});
  write_safetensors_index(dir.path().string(), {{"lm_head.weight", "nope.safetensors"}}, 0);
  expect_user_error([&] { SafetensorsDirectory d(dir.path().string()); }, {"nope.safetensors"});
  std::ofstream(dir.file("model.safetensors.index.json")) << "{\"metadata\": {}}";
  expect_user_error([&] { SafetensorsDirectory d(dir.path().string()); }, {"weight_map"});
}

TEST(SafetensorsDirectory, SingleFileAndMissing) {
  TempDir dir;
  expect_user_error([&] { SafetensorsDirectory d(dir.path().string()); },
                    {"model.safetensors", "index.json"});
  write_all_dtypes(dir.file("model.safetensors"));
  const SafetensorsDirectory model(dir.path().string());
  EXPECT_EQ(model.names().size(), 5u);
  EXPECT_EQ(model.load("a.f32").to_vector(), arange_values());
}

#ifdef TRIDENT_TEST_PYTHON
std::string script() { return std::string(TRIDENT_IO_TEST_DIR) + "/safetensors_numpy.py"; }

std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

TEST(SafetensorsNumpy, ReadsAFileWrittenByNumpy) {
  TempDir dir;
  const std::string command =
      std::string(TRIDENT_TEST_PYTHON) + " " + script() + " write " + dir.path().string();
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const SafetensorsFile file(dir.file("numpy.safetensors"));
  EXPECT_EQ(file.metadata().at("source"), "numpy");
  for (const std::string name : {"half", "bf16", "float"}) {
    const std::vector<char> raw = read_file(dir.file("expected_" + name + ".f32"));
    std::vector<float> expected(raw.size() / 4);
    std::memcpy(expected.data(), raw.data(), raw.size());
    const Tensor loaded = file.load(name, DType::F32);
    ASSERT_EQ(static_cast<size_t>(loaded.numel()), expected.size()) << name;
    for (size_t i = 0; i < expected.size(); ++i) {
      if (std::isnan(expected[i])) continue;
      EXPECT_EQ(loaded.data<float>()[i], expected[i]) << name << "[" << i << "]";
    }
  }
  for (const std::string name : {"i64", "i32"}) {
    const std::vector<char> raw = read_file(dir.file("expected_" + name + ".i64"));
    std::vector<int64_t> expected(raw.size() / 8);
    std::memcpy(expected.data(), raw.data(), raw.size());
    const Tensor loaded = file.load(name, DType::I64);
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(loaded.data<int64_t>()[i], expected[i]) << name << "[" << i << "]";
    }
  }
}

TEST(SafetensorsNumpy, NumpyReadsAFileWrittenByTrident) {
  TempDir dir;
  write_all_dtypes(dir.file("t.safetensors"));
  const std::string command =
      std::string(TRIDENT_TEST_PYTHON) + " " + script() + " check " + dir.file("t.safetensors");
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}
#endif

}  // namespace
}  // namespace trident::io
