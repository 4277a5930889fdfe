// The output cache behind imkern._arrays.empty (docs/performance.md, "Output memory"): large
// NumPy outputs come from blocks whose pages are already mapped, kept after their array dies.
//
// A new large array is a fresh mmap on every call with glibc (above its 32 MiB dynamic mmap
// threshold: every allocation, however often the same size repeats) and the kernel then spends
// as long taking page faults and zeroing pages as computing (a 4K RGB float32 output: 100 MB,
// 8-15 ms of faults on a 9 ms op). Freed blocks stay here, up to a byte budget, and the next
// request of about the same size reuses one. The array's base is a capsule owning the block:
// the block comes back only when the last view of it is gone.
//
// Everything here runs with the GIL held (the array factory and the capsule destructor); the
// mutex also guards against a caller without the GIL (none today).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(_WIN32)
#include <malloc.h>
#endif

#include "registry.hpp"

namespace py = pybind11;

namespace {

constexpr size_t kHuge = size_t(2) << 20;  // blocks of a huge page or more: whole THP mappings
constexpr size_t kPage = size_t(4) << 10;  // smaller ones (a threshold set low): whole pages

size_t granule(size_t bytes) { return bytes >= kHuge ? kHuge : kPage; }

void* block_alloc(size_t bytes) {
#if defined(_WIN32)
  return _aligned_malloc(bytes, granule(bytes));
#else
  void* p = nullptr;
  if (posix_memalign(&p, granule(bytes), bytes) != 0) return nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= kHuge) madvise(p, bytes, MADV_HUGEPAGE);  // as NumPy does for large arrays: fewer faults
#endif
  return p;
#endif
}

void block_free(void* p) {
#if defined(_WIN32)
  _aligned_free(p);
#else
  std::free(p);
#endif
}

struct Block {
  void* ptr;
  size_t bytes;  // the allocated size (the request rounded up to its granule)
};

class OutputCache {
 public:
  // A block for `bytes`: a cached one of at least that size and at most 1.25x (+ one granule),
  // the smallest such; else a new one. Throws std::bad_alloc when memory is exhausted.
  Block acquire(size_t bytes) {
    const size_t want = round_up(bytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      size_t best = free_.size();
      for (size_t i = 0; i < free_.size(); ++i) {
        const size_t b = free_[i].bytes;
        if (b >= want && b <= want + want / 4 + granule(want) && (best == free_.size() || b < free_[best].bytes)) best = i;
      }
      if (best != free_.size()) {
        const Block blk = free_[best];
        free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(best));
        held_ -= blk.bytes;
        ++hits_;
        return blk;
      }
      ++misses_;
    }
    void* p = block_alloc(want);
    if (!p) {
      clear();  // give the cached blocks back and try once more
      p = block_alloc(want);
      if (!p) throw std::bad_alloc();
    }
    return Block{p, want};
  }

  // The block of a dead array: kept (newest last) while the cache holds at most `max_bytes`,
  // the oldest blocks freed first.
  void release(const Block& blk) {
    std::vector<void*> drop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (blk.bytes > max_bytes_) {
        drop.push_back(blk.ptr);
      } else {
        free_.push_back(blk);
        held_ += blk.bytes;
        trim_locked(drop);
      }
    }
    for (void* p : drop) block_free(p);
  }

  void set_max_bytes(size_t max_bytes) {
    std::vector<void*> drop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      max_bytes_ = max_bytes;
      trim_locked(drop);
    }
    for (void* p : drop) block_free(p);
  }

  void clear() {
    std::vector<void*> drop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const Block& b : free_) drop.push_back(b.ptr);
      free_.clear();
      held_ = 0;
    }
    for (void* p : drop) block_free(p);
  }

  py::dict stats() {
    std::lock_guard<std::mutex> lock(mu_);
    py::dict d;
    d["max_bytes"] = max_bytes_;
    d["held_bytes"] = held_;
    d["held_blocks"] = free_.size();
    d["hits"] = hits_;
    d["misses"] = misses_;
    return d;
  }

 private:
  static size_t round_up(size_t bytes) {
    if (bytes > SIZE_MAX - kHuge) throw std::bad_alloc();
    const size_t g = granule(bytes);
    return (std::max<size_t>(bytes, 1) + g - 1) / g * g;
  }
  void trim_locked(std::vector<void*>& drop) {
    while (held_ > max_bytes_ && !free_.empty()) {
      drop.push_back(free_.front().ptr);
      held_ -= free_.front().bytes;
      free_.erase(free_.begin());
    }
  }

  std::mutex mu_;
  std::vector<Block> free_;  // oldest first
  size_t held_ = 0;
  size_t max_bytes_ = 0;  // set by imkern._runtime at import
  uint64_t hits_ = 0, misses_ = 0;
};

// Never destroyed: capsules of arrays alive at interpreter exit still return their blocks here.
OutputCache& cache() {
  static OutputCache* c = new OutputCache();
  return *c;
}

}  // namespace

IMKERN_BINDINGS(output_cache) {
  // A 1-D uint8 array of `nbytes` on a cached (or new) block; the caller views it as it needs.
  // (Which requests come here, the size threshold, is imkern._arrays' decision.)
  m.def("cached_empty", [](int64_t nbytes) {
    if (nbytes < 0) throw std::invalid_argument("nbytes: expected >= 0");
    Block* blk = new Block(cache().acquire(static_cast<size_t>(nbytes)));
    py::capsule owner(blk, [](void* p) {
      Block* b = static_cast<Block*>(p);
      cache().release(*b);
      delete b;
    });
    return py::array(py::dtype("uint8"), {static_cast<py::ssize_t>(nbytes)}, {static_cast<py::ssize_t>(1)},
                     blk->ptr, owner);
  });
  // np.empty(shape, dtype), C-contiguous, starting on a 64-byte line (imkern._arrays.numpy_empty,
  // for outputs from 64 KiB up to the output cache's threshold): a view of a NumPy uint8 block 64
  // bytes longer, so NumPy's allocator and its reuse of freed blocks serve it as they serve
  // np.empty. One call (0.65 us for a 224x224 RGB output): the block's address and the view,
  // from Python, took 6.3 us there (the __array_interface__ dict 1.8, a slice, .view and
  // .reshape 0.9, and the rest of the call), several times the allocation.
  m.def("aligned_empty", [](const std::vector<py::ssize_t>& shape, const py::dtype& dt) {
    int64_t nbytes = dt.itemsize();
    for (py::ssize_t d : shape) {
      if (d < 0) throw py::value_error("shape: expected sizes >= 0");
      if (d != 0 && nbytes > (int64_t(1) << 62) / int64_t(d)) throw py::value_error("shape: too many bytes");
      nbytes *= d;
    }
    py::array_t<uint8_t> raw(static_cast<py::ssize_t>(nbytes + 64));
    uint8_t* p = raw.mutable_data();
    p += (64 - reinterpret_cast<uintptr_t>(p) % 64) % 64;
    return py::array(dt, shape, p, raw);
  });
  // The byte budget of the blocks kept (0: none kept; the oldest beyond it are freed now).
  m.def("output_cache_set_max_bytes", [](int64_t max_bytes) {
    if (max_bytes < 0) throw std::invalid_argument("max_bytes: expected >= 0");
    cache().set_max_bytes(static_cast<size_t>(max_bytes));
  });
  m.def("output_cache_stats", [] { return cache().stats(); });
}
