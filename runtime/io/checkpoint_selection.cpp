#include "runtime/io/checkpoint_selection.h"

#include "runtime/core/error.h"

namespace trident::io {

namespace {
// Appends boxes for row-major elements [begin, end) of a tensor of `dims`, with `prefix` the
// fixed leading coordinates already chosen.
void split_range(const std::vector<int64_t>& dims, size_t depth, std::vector<hsize_t>& prefix,
                 int64_t begin, int64_t end, std::vector<Box>& out) {
  if (begin >= end) return;
  if (depth + 1 == dims.size()) {
    Box box;
    box.start = prefix;
    box.start.push_back(static_cast<hsize_t>(begin));
    box.count.assign(prefix.size(), 1);
    box.count.push_back(static_cast<hsize_t>(end - begin));
    out.push_back(std::move(box));
    return;
  }
  int64_t inner = 1;
  for (size_t i = depth + 1; i < dims.size(); ++i) inner *= dims[i];
  int64_t first = begin / inner;
  const int64_t last = end / inner;  // rows [first, last) may be whole
  if (first == last) {
    prefix.push_back(static_cast<hsize_t>(first));
    split_range(dims, depth + 1, prefix, begin % inner, end % inner, out);
    prefix.pop_back();
    return;
  }
  if (begin % inner != 0) {
    prefix.push_back(static_cast<hsize_t>(first));
    split_range(dims, depth + 1, prefix, begin % inner, inner, out);
    prefix.pop_back();
    ++first;
  }
  if (last > first) {
    Box box;
    box.start = prefix;
    box.start.push_back(static_cast<hsize_t>(first));
    box.count.assign(prefix.size(), 1);
    box.count.push_back(static_cast<hsize_t>(last - first));
    for (size_t i = depth + 1; i < dims.size(); ++i) {
      box.start.push_back(0);
      box.count.push_back(static_cast<hsize_t>(dims[i]));
    }
    out.push_back(std::move(box));
  }
  if (end % inner != 0) {
    prefix.push_back(static_cast<hsize_t>(last));
    split_range(dims, depth + 1, prefix, 0, end % inner, out);
    prefix.pop_back();
  }
}
}  // namespace

std::vector<Box> local_range_boxes(const Shape& shape, const models::ShardSlice& slice,
                                   int64_t begin, int64_t end) {
  std::vector<Box> boxes;
  if (begin >= end) return boxes;
  if (shape.empty()) {  // a scalar: the whole tensor or nothing
    boxes.push_back(Box{});
    return boxes;
  }
  std::vector<int64_t> local(shape.begin(), shape.end());
  if (slice.dim >= 0) local[static_cast<size_t>(slice.dim)] = slice.extent;
  std::vector<hsize_t> prefix;
  split_range(local, 0, prefix, begin, end, boxes);
  if (slice.dim >= 0) {
    for (Box& box : boxes)
      box.start[static_cast<size_t>(slice.dim)] += static_cast<hsize_t>(slice.begin);
  }
  return boxes;
}

void select_boxes(hid_t space, const std::vector<Box>& boxes) {
  if (boxes.empty()) {
    TRIDENT_CHECK(H5Sselect_none(space) >= 0);
    return;
  }
  if (boxes.front().start.empty()) {
    TRIDENT_CHECK(H5Sselect_all(space) >= 0);
    return;
  }
  for (size_t i = 0; i < boxes.size(); ++i) {
    const herr_t rc =
        H5Sselect_hyperslab(space, i == 0 ? H5S_SELECT_SET : H5S_SELECT_OR, boxes[i].start.data(),
                            nullptr, boxes[i].count.data(), nullptr);
    TRIDENT_CHECK(rc >= 0, "selecting a hyperslab failed");
  }
}

}  // namespace trident::io
