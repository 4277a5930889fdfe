// A per-call table with its storage in place for small sizes: a kernel that builds a few short
// tables per call (resize_halve's plans) takes no heap allocation for the common sizes, where
// malloc / free were a large part of a small image's call.
#pragma once
#include <algorithm>
#include <cstddef>

#include "common/simd.hpp"

namespace imkern {
namespace IMKERN_ISA {

// n elements: in place (64-byte aligned) up to N, on the heap past that. Not copyable or
// movable: data() may point into the object.
template <typename T, size_t N>
class SmallBuffer {
 public:
  SmallBuffer() = default;
  explicit SmallBuffer(size_t n) { resize(n); }
  SmallBuffer(const SmallBuffer&) = delete;
  SmallBuffer& operator=(const SmallBuffer&) = delete;
  // n elements, left as they are in place (trivial T) or value-initialized on the heap.
  T* resize(size_t n) {
    if (n > N) {
      heap_.resize(n);
      p_ = heap_.data();
    } else {
      p_ = local_;
    }
    n_ = n;
    return p_;
  }
  // n copies of v
  void assign(size_t n, T v) { std::fill_n(resize(n), n, v); }
  // the n values from p, converted to T
  template <typename U>
  void assign(const U* p, size_t n) {
    T* q = resize(n);
    for (size_t i = 0; i < n; ++i) q[i] = static_cast<T>(p[i]);
  }
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return p_[i]; }
  const T& operator[](size_t i) const { return p_[i]; }

 private:
  alignas(64) T local_[N];
  aligned_vector<T> heap_;
  T* p_ = local_;
  size_t n_ = 0;
};

}  // namespace IMKERN_ISA
}  // namespace imkern
