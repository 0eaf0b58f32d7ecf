#pragma once
// Shared pieces of the MPI tests: the world size and rank, sums and agreement over the world,
// and payloads that encode who sent which element so a misplaced block is caught, not just a
// wrong sum.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace trident::testing {

inline int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

inline int world_size() {
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

// Whether every rank holds exactly this value (max and min over the world equal it).
inline bool same_on_every_rank(double value) {
  double hi = 0, lo = 0;
  MPI_Allreduce(&value, &hi, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  MPI_Allreduce(&value, &lo, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
  return hi == value && lo == value;
}

// The sum of `value` over every rank of the job.
inline double sum_over_world(double value) {
  double total = 0;
  MPI_Allreduce(&value, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return total;
}

// |a − b| / |b| (|b| floored at 1e-12).
inline double relative_difference(double a, double b) {
  return std::abs(a - b) / std::max(std::abs(b), 1e-12);
}

// Small integers, exact in f32 and, below 256, in bf16.
inline int64_t encode(int sender, int64_t index) { return sender * 1000 + index; }
inline int64_t encode_small(int sender, int64_t index) { return sender * 16 + index % 16; }

}  // namespace trident::testing
