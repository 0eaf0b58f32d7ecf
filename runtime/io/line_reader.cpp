#include "runtime/io/line_reader.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "runtime/core/error.h"

namespace trident::io {

namespace {
constexpr size_t kBufferBytes = size_t{1} << 20;
}

LineReader::LineReader(const std::string& path, size_t max_line_bytes)
    : path_(path), max_line_bytes_(max_line_bytes), buffer_(kBufferBytes) {
  file_ = std::fopen(path.c_str(), "rb");
  TRIDENT_USER_CHECK(file_ != nullptr, "cannot open '", path, "': ", std::strerror(errno));
  struct stat info {};
  if (::fstat(::fileno(file_), &info) == 0 && S_ISREG(info.st_mode)) {
    file_size_ = static_cast<uint64_t>(info.st_size);
  }
}

LineReader::~LineReader() {
  if (file_) std::fclose(file_);
}

bool LineReader::fill() {
  if (eof_) return false;
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  const size_t got = std::fread(buffer_.data() + end_, 1, buffer_.size() - end_, file_);
  TRIDENT_CHECK_IO(!std::ferror(file_), "reading '", path_, "' failed: ", std::strerror(errno));
  if (got == 0) eof_ = true;
  end_ += got;
  return got > 0;
}

bool LineReader::next(Line& line) {
  line.text.clear();
  line.too_long = false;
  bool any = false;
  while (true) {
    if (begin_ == end_ && !fill()) {
      if (!any) return false;
      break;  // the last line has no '\n'
    }
    any = true;
    const char* start = buffer_.data() + begin_;
    const char* newline = static_cast<const char*>(std::memchr(start, '\n', end_ - begin_));
    const size_t take = newline ? static_cast<size_t>(newline - start) : end_ - begin_;
    if (!line.too_long) {
      if (line.text.size() + take > max_line_bytes_) {
        line.too_long = true;
        line.text.clear();
        line.text.shrink_to_fit();
      } else {
        line.text.append(start, take);
      }
    }
    consumed_ += take;
    begin_ += take;
    if (newline) {
      ++begin_;
      ++consumed_;
      break;
    }
  }
  line.number = ++number_;
  return true;
}

}  // namespace trident::io
