// A small persistent thread pool with dynamic chunk scheduling. Compiled for the baseline.
//
// Waiting: a worker that finishes a job, and a caller waiting for the chunks other threads
// claimed, first spin for up to kSpin (checking an atomic, with a pause instruction), then
// sleep on a condition variable (one per worker: a job wakes only the workers it has a home
// range for). Without the spin every call paid a sleep/wake-up round trip per worker: on a
// virtual machine whose idle vCPUs the host deschedules, that costs 50-150 us per call, a
// third or more of a 0.25 ms kernel (OpenMP runtimes spin for the same reason). A spinning
// worker burns its core for at most kSpin after the last call.
//
// Scheduling: chunks are split into one contiguous home range per thread (the caller is
// thread 0), and a thread takes the chunks of its own range first, in order, then helps the
// others by taking chunks from the front of their ranges. So the same thread touches the same
// part of the data call after call, as with OpenMP's static schedule, and a slow or late
// thread still cannot hold up the call: the caller waits for the chunks, never for a worker
// that holds none (one the host descheduled after it woke, before or after its chunks, had
// held up 2-thread calls: threshold_otsu 1080p once 3.2 ms instead of 1.35 ms). The affinity matters where the two vCPUs do not share
// a last-level cache: with a single shared counter the 12.8 MB output of the first-layer
// conv2d benchmark was written by whichever thread got a chunk, every line migrated between
// the two caches each call, and the call took 1.7-4x its usual time (0.4-1 ms vs 0.21 ms).
//
// Why not OpenMP: see docs/CONTRIBUTING.md (two runtimes in one process, fork safety).
// Thread creation can fail (address-space or process limits): the pool then runs with the
// threads it got (none: the caller alone), it never throws out of half-built state.
// Fork: the child gets a fresh, lazily recreated pool (pthread_atfork), never the parent's
// dead threads.
#include "imkern/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#endif

namespace imkern {
namespace {

int cpus_usable() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

// Claims. A chunk is claimed by a compare-and-swap on its home's `next` word, which holds the
// job's tag (its epoch, modulo 2^kTagBits) above the chunk index; the home's `end` word holds
// the same tag above the range's end. A claim succeeds only while the word still carries the
// claiming thread's tag and an index below the end, so a successful claim proves the job is
// still running (its caller waits for that chunk): only then does the thread read the job's
// fields (fn, bounds). A thread that sees another tag, in either word, leaves at once: that
// job has ended. The index never passes the end (no fetch_add overshoot), so it cannot carry
// into the tag. A thread descheduled for exactly 2^32 jobs inside one claim could be fooled by
// a tag that wrapped around to its own (and the same index): about an hour of back-to-back
// calls, not a real risk. More than 2^32 - 1 chunks run as several jobs (same chunks).
#ifndef IMKERN_POOL_INDEX_BITS  // a small value only in the pool's C++ stress test
#define IMKERN_POOL_INDEX_BITS 32
#endif
constexpr int kIndexBits = IMKERN_POOL_INDEX_BITS;
constexpr uint64_t kIndexMask = (uint64_t(1) << kIndexBits) - 1;
constexpr uint64_t kTagMask = ~kIndexMask;
constexpr int64_t kMaxJobChunks = static_cast<int64_t>(kIndexMask);

// One thread's home range of chunks [next, end), on its own cache line (see Claims).
struct alignas(64) Home {
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> end{0};
};

// One worker's wake-up: its own condition variable, so a job wakes only the workers that take
// part in it (a thread-local limit, or more threads than home ranges, leaves the others asleep).
struct alignas(64) Sleeper {
  std::condition_variable cv;
  bool asleep = false;  // under Pool::m_
};

constexpr int kMaxHomes = 32;  // the job word keeps the home count in its low 8 bits
// The thread-count cap: 4 threads per usable CPU, at least 256 (see max_num_threads).
constexpr int kMaxThreadsFloor = 256;  // threads 32 and above never take part (kMaxHomes)

using Fn = std::function<void(int64_t, int64_t)>;

thread_local bool t_in_parallel = false;
thread_local int t_local_threads = 0;  // set_thread_local_num_threads (0: no limit)

constexpr std::chrono::microseconds kSpin{200};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Spins until done() or kSpin has passed; returns done().
template <typename Done>
bool spin_until(Done&& done) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() - t0 > kSpin) return done();
  }
}

// The job's state lives in the pool, not on the caller's stack: the caller returns as soon as
// every chunk is done, while a worker that entered the job late (descheduled by the host after
// it woke) may still be looking at the home words; it can claim nothing more (see Claims) and
// never reads the ended job's fields. Only the caller (holding run_mutex_) writes the fields,
// between jobs.
class Pool {
 public:
  // Starts up to `nworkers` threads. When the system refuses one (address-space or process
  // limits: std::system_error, or std::bad_alloc), the pool keeps the threads it has and the
  // kernels run with fewer; throwing out of here would destroy the condition variables under
  // the workers already waiting on them (pthread_cond_destroy then never returns).
  explicit Pool(int nworkers)
      : requested_(nworkers), sleepers_(new Sleeper[static_cast<size_t>(nworkers) + 1]) {
    try {
      workers_.reserve(static_cast<size_t>(nworkers));
    } catch (const std::exception&) {
    }
    for (int i = 0; i < nworkers; ++i) {
      try {
        workers_.emplace_back([this, i] { loop(i + 1); });
      } catch (const std::exception&) {
        break;
      }
    }
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    for (int t = 1; t <= size(); ++t) sleepers_[t].cv.notify_one();
    for (auto& t : workers_) t.join();
  }
  int size() const { return static_cast<int>(workers_.size()); }
  int requested() const { return requested_; }

  // Caller holds run_mutex_. Runs fn over the `nchunks` (<= kMaxJobChunks) chunks of
  // [begin, end) and returns when every chunk is done, rethrowing the first exception.
  // `threads`: how many take part (the caller and workers 1 .. threads - 1; the others sleep).
  void run(const Fn& fn, int64_t begin, int64_t end, int64_t grain, int64_t nchunks, int threads) {
    const int nhomes = std::min({size() + 1, kMaxHomes, threads});
    const uint64_t epoch = ++epoch_;
    const uint64_t tag = epoch << kIndexBits;  // the low bits of the epoch above the index
    // The previous job has ended (every chunk ran), so no thread holds a claim: the fields are
    // free to write. They reach a worker through its claim (acquire) of a home word stored
    // below (release), ends before indices: a thread that sees this job's tag in `next` sees
    // its `end` too.
    fn_ = &fn;
    begin_ = begin;
    end_ = end;
    grain_ = grain;
    nchunks_ = nchunks;
    error_ = nullptr;
    done_.store(0, std::memory_order_relaxed);
    for (int h = 0; h < nhomes; ++h) {
      homes_[h].end.store(tag | static_cast<uint64_t>(nchunks * (h + 1) / nhomes), std::memory_order_relaxed);
      homes_[h].next.store(tag | static_cast<uint64_t>(nchunks * h / nhomes), std::memory_order_release);
    }
    uint32_t wake = 0;  // the sleeping workers that take part (tid < nhomes <= 32)
    {
      std::lock_guard<std::mutex> lk(m_);
      job_.store(epoch << 8 | static_cast<uint64_t>(nhomes), std::memory_order_release);
      for (int t = 1; t < nhomes; ++t)
        if (sleepers_[t].asleep) wake |= uint32_t(1) << t;
    }
    for (int t = 1; t < nhomes; ++t)
      if (wake >> t & 1) sleepers_[t].cv.notify_one();
    work(epoch, nhomes, 0);
    // Wait for the chunks other threads claimed; never for a worker that holds none.
    auto finished = [&] { return done_.load() == nchunks; };
    if (!spin_until(finished)) {
      std::unique_lock<std::mutex> lk(m_);
      caller_asleep_.store(true);  // seq_cst, against the last chunk's done_ (see work)
      done_cv_.wait(lk, finished);
      caller_asleep_.store(false, std::memory_order_relaxed);
    }
    if (error_) {
      std::exception_ptr e = std::move(error_);
      error_ = nullptr;
      std::rethrow_exception(e);
    }
  }

  std::mutex run_mutex_;

 private:
  // Thread `tid` (0: the caller) runs chunks of job `epoch`: its home range first, then the
  // others', from the front. Returns when no chunk is left to claim or the job has ended.
  void work(uint64_t epoch, int nhomes, int tid) {
    const uint64_t tag = epoch << kIndexBits;
    const Fn* fn = nullptr;  // the job's fields, read after the first claim
    int64_t begin = 0, end = 0, grain = 1, nchunks = 0;
    t_in_parallel = true;
    const int h0 = tid % nhomes;
    for (int k = 0; k < nhomes; ++k) {
      Home& home = homes_[(h0 + k) % nhomes];
      uint64_t cur = home.next.load(std::memory_order_acquire);
      const uint64_t lim = home.end.load(std::memory_order_relaxed);
      if ((cur & kTagMask) != tag || (lim & kTagMask) != tag) break;  // the job has ended
      // Same tag in both words: the index comparison is the words' comparison. Once a range is
      // exhausted, nobody writes its line any more (a failed CAS would).
      while (cur < lim) {
        if (!home.next.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel,
                                             std::memory_order_acquire)) {
          if ((cur & kTagMask) != tag) goto ended;
          continue;
        }
        if (!fn) {
          fn = fn_;
          begin = begin_;
          end = end_;
          grain = grain_;
          nchunks = nchunks_;
        }
        const int64_t lo = begin + static_cast<int64_t>(cur & kIndexMask) * grain;
        const int64_t hi = lo + grain < end ? lo + grain : end;
        try {
          (*fn)(lo, hi);
        } catch (...) {
          std::lock_guard<std::mutex> lk(err_mutex_);
          if (!error_) error_ = std::current_exception();
        }
        // The last chunk wakes a sleeping caller. After this the job may end: only locals and
        // the pool's own atomics from here on.
        if (done_.fetch_add(1) + 1 == nchunks && caller_asleep_.load()) {
          { std::lock_guard<std::mutex> lk(m_); }
          done_cv_.notify_one();
        }
        cur = home.next.load(std::memory_order_acquire);
        if ((cur & kTagMask) != tag) goto ended;
      }
    }
  ended:
    t_in_parallel = false;
  }

  void loop(int tid) {
    Sleeper& me = sleepers_[tid];
    uint64_t seen = 0, w = 0;
    // A job for this worker: a new one that has a home for it (tid < the job's home count).
    auto ready = [&] {
      w = job_.load(std::memory_order_acquire);
      return stop_.load(std::memory_order_relaxed) || (w != seen && tid < static_cast<int>(w & 0xff));
    };
    for (;;) {
      if (!spin_until(ready)) {
        std::unique_lock<std::mutex> lk(m_);
        me.asleep = true;
        me.cv.wait(lk, ready);
        me.asleep = false;
      }
      if (stop_.load()) return;
      seen = w;
      work(w >> 8, static_cast<int>(w & 0xff), tid);
    }
  }

  int requested_;
  std::vector<std::thread> workers_;
  std::unique_ptr<Sleeper[]> sleepers_;  // by tid (1 .. size(); [0] unused)
  Home homes_[kMaxHomes];
  std::mutex m_;  // guards the sleepers' flags and the waits
  std::condition_variable done_cv_;
  // Written by the caller between jobs (see run); read by a thread only after it claimed a chunk.
  const Fn* fn_ = nullptr;
  int64_t begin_ = 0, end_ = 0, grain_ = 1, nchunks_ = 0;
  std::exception_ptr error_;  // the first exception thrown by fn (under err_mutex_); rethrown by the caller
  std::mutex err_mutex_;
  uint64_t epoch_ = 0;  // the caller's job counter (under run_mutex_)
  alignas(64) std::atomic<uint64_t> job_{0};  // epoch << 8 | home count, stored under m_
  std::atomic<bool> stop_{false};
  alignas(64) std::atomic<int64_t> done_{0};  // chunks finished in the current job
  std::atomic<bool> caller_asleep_{false};    // the caller sleeps on done_cv_ (set under m_)
};

std::mutex g_cfg_mutex;
int g_threads = 0;  // 0: not yet decided
Pool* g_pool = nullptr;  // leaked on purpose at exit: joining threads during teardown can hang

#if defined(__linux__)
void after_fork_child() {
  // The parent's workers do not exist here; forget the pool (its memory is leaked, its
  // mutexes may be held by threads that are gone) and build a new one on first use.
  new (&g_cfg_mutex) std::mutex();
  g_pool = nullptr;
}
struct AtForkInstaller {
  AtForkInstaller() { pthread_atfork(nullptr, nullptr, after_fork_child); }
} g_atfork_installer;
#endif

// Returns the pool with its run_mutex_ locked by the caller, or nullptr (run serially).
// Caller holds g_cfg_mutex, so no other thread can swap the pool while we lock it.
Pool* acquire_pool(int threads) {
  if (threads <= 1) return nullptr;
  if (g_pool && g_pool->requested() != threads - 1) {
    if (!g_pool->run_mutex_.try_lock()) return nullptr;  // in use: resize later
    g_pool->run_mutex_.unlock();
    delete g_pool;
    g_pool = nullptr;
  }
  if (!g_pool) {
    try {
      g_pool = new Pool(threads - 1);
    } catch (const std::exception&) {
      return nullptr;  // no memory for the pool itself: run serially
    }
  }
  if (g_pool->size() == 0) return nullptr;  // no thread could be started: run serially
  if (!g_pool->run_mutex_.try_lock()) return nullptr;  // another Python thread is using it
  return g_pool;
}

// The threads the calling thread's kernels may use: the global count, capped by its
// thread-local limit. Caller holds g_cfg_mutex.
int caller_threads() {
  if (g_threads <= 0) g_threads = default_num_threads();
  return t_local_threads > 0 ? std::min(g_threads, t_local_threads) : g_threads;
}

}  // namespace

int max_num_threads() {
  const int c = cpus_usable();
  return c > kMaxThreadsFloor / 4 ? 4 * c : kMaxThreadsFloor;
}

int default_num_threads() {
  if (const char* s = std::getenv("OMP_NUM_THREADS")) {
    int n = std::atoi(s);
    if (n > 0) return std::min(n, max_num_threads());
  }
  return cpus_usable();
}

int get_num_threads() {
  std::lock_guard<std::mutex> lk(g_cfg_mutex);
  return caller_threads();
}

void set_thread_local_num_threads(int n) { t_local_threads = n > 0 ? std::min(n, max_num_threads()) : 0; }

int get_thread_local_num_threads() { return t_local_threads; }

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lk(g_cfg_mutex);
  g_threads = n > 0 ? std::min(n, max_num_threads()) : default_num_threads();
}

int64_t parallel_chunks(int64_t begin, int64_t end, int64_t grain) {
  if (end <= begin) return 0;
  if (grain < 1) grain = 1;
  return (end - begin + grain - 1) / grain;
}

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  if (grain < 1) grain = 1;
  const int64_t nchunks = parallel_chunks(begin, end, grain);
  auto serial = [&] {
    for (int64_t c = 0; c < nchunks; ++c) {
      int64_t lo = begin + c * grain;
      fn(lo, lo + grain < end ? lo + grain : end);
    }
  };
  if (nchunks == 1 || t_in_parallel || t_local_threads == 1) return serial();

  Pool* pool;
  int threads;
  {
    std::lock_guard<std::mutex> lk(g_cfg_mutex);
    threads = caller_threads();
    // Sized by the global count: a local limit never rebuilds it.
    pool = threads > 1 ? acquire_pool(g_threads) : nullptr;
  }
  if (!pool) return serial();
  std::unique_lock<std::mutex> run_lock(pool->run_mutex_, std::adopt_lock);
  // Jobs of at most kMaxJobChunks chunks (the claim words' index bits), the same chunks.
  for (int64_t c0 = 0; c0 < nchunks; c0 += kMaxJobChunks)
    pool->run(fn, begin + c0 * grain, end, grain, std::min(kMaxJobChunks, nchunks - c0), threads);
}

}  // namespace imkern
