// A small persistent thread pool with dynamic chunk scheduling. Compiled for the baseline.
//
// Waiting: a worker that finishes a job, and a caller waiting for its workers, first spin
// for up to kSpin (checking an atomic, with a pause instruction), then sleep on a condition
// variable. Without the spin every call paid a sleep/wake-up round trip per worker: on a
// virtual machine whose idle vCPUs the host deschedules, that costs 50-150 us per call, a
// third or more of a 0.25 ms kernel (OpenMP runtimes spin for the same reason). A spinning
// worker burns its core for at most kSpin after the last call.
//
// Scheduling: chunks are split into one contiguous home range per thread (the caller is
// thread 0), and a thread takes the chunks of its own range first, in order, then helps the
// others by taking chunks from the front of their ranges. So the same thread touches the same
// part of the data call after call, as with OpenMP's static schedule, and a slow or late
// thread still cannot hold up the call. The affinity matters where the two vCPUs do not share
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

// One thread's home range of chunks [next, end), on its own cache line.
struct alignas(64) Home {
  std::atomic<int64_t> next{0};
  int64_t end = 0;
};

constexpr int kMaxHomes = 32;
// The thread-count cap: 4 threads per usable CPU, at least 256 (see max_num_threads).
constexpr int kMaxThreadsFloor = 256;  // more threads share home ranges (thread i takes home i % 32)

struct Job {
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t begin = 0, end = 0, grain = 1, nchunks = 0;
  int nhomes = 1;
  Home homes[kMaxHomes];
  std::atomic<int64_t> done{0};
  std::mutex err_mutex;
  std::exception_ptr error;  // first exception thrown by fn; rethrown in the caller
};

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

class Pool {
 public:
  // Starts up to `nworkers` threads. When the system refuses one (address-space or process
  // limits: std::system_error, or std::bad_alloc), the pool keeps the threads it has and the
  // kernels run with fewer; throwing out of here would destroy the condition variables under
  // the workers already waiting on them (pthread_cond_destroy then never returns).
  explicit Pool(int nworkers) : requested_(nworkers) {
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
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return static_cast<int>(workers_.size()); }
  int requested() const { return requested_; }

  // Caller holds run_mutex_.
  // `threads`: how many take part (the caller and the first threads - 1 workers; the others
  // leave the job alone).
  void run(Job& job, int threads) {
    job.nhomes = std::min({size() + 1, kMaxHomes, threads});
    for (int h = 0; h < job.nhomes; ++h) {
      job.homes[h].next.store(job.nchunks * h / job.nhomes, std::memory_order_relaxed);
      job.homes[h].end = job.nchunks * (h + 1) / job.nhomes;
    }
    {
      std::lock_guard<std::mutex> lk(m_);
      job_ = &job;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    work(job, 0);
    // Wait for every chunk to finish, then for every worker to leave the job.
    auto finished = [&] { return job.done.load() == job.nchunks && active_.load() == 0; };
    spin_until(finished);
    std::unique_lock<std::mutex> lk(m_);
    done_cv_.wait(lk, finished);
    job_ = nullptr;
  }

  std::mutex run_mutex_;

 private:
  // Thread `tid` (0: the caller) runs chunks: its home range first, then the others'.
  static void work(Job& job, int tid) {
    t_in_parallel = true;
    const int h0 = tid % job.nhomes;
    for (int k = 0; k < job.nhomes; ++k) {
      Home& home = job.homes[(h0 + k) % job.nhomes];
      for (;;) {
        // A relaxed load first: once a range is exhausted, other threads stop writing its line.
        if (home.next.load(std::memory_order_relaxed) >= home.end) break;
        const int64_t c = home.next.fetch_add(1);
        if (c >= home.end) break;
        const int64_t lo = job.begin + c * job.grain;
        const int64_t hi = lo + job.grain < job.end ? lo + job.grain : job.end;
        try {
          (*job.fn)(lo, hi);
        } catch (...) {
          std::lock_guard<std::mutex> lk(job.err_mutex);
          if (!job.error) job.error = std::current_exception();
        }
        job.done.fetch_add(1);
      }
    }
    t_in_parallel = false;
  }
  void loop(int tid) {
    uint64_t seen = 0;
    for (;;) {
      Job* job;
      spin_until([&] { return stop_.load() || generation_.load(std::memory_order_acquire) != seen; });
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return stop_ || (job_ && generation_ != seen); });
        if (stop_) return;
        seen = generation_;
        job = job_;
        ++active_;
      }
      if (tid < job->nhomes) work(*job, tid);
      {
        std::lock_guard<std::mutex> lk(m_);
        --active_;
      }
      done_cv_.notify_all();
    }
  }

  int requested_;
  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  Job* job_ = nullptr;                    // written under m_
  std::atomic<uint64_t> generation_{0};   // bumped under m_ with each job; read while spinning
  std::atomic<int> active_{0};            // workers inside the current job (changed under m_)
  std::atomic<bool> stop_{false};
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
  if (g_threads <= 0) g_threads = default_num_threads();
  return t_local_threads > 0 ? std::min(g_threads, t_local_threads) : g_threads;
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
  Job job;
  job.fn = &fn;
  job.begin = begin;
  job.end = end;
  job.grain = grain;
  job.nchunks = parallel_chunks(begin, end, grain);

  auto serial = [&] {
    for (int64_t c = 0; c < job.nchunks; ++c) {
      int64_t lo = begin + c * grain;
      fn(lo, lo + grain < end ? lo + grain : end);
    }
  };
  if (job.nchunks == 1 || t_in_parallel || t_local_threads == 1) return serial();

  Pool* pool;
  int threads;
  {
    std::lock_guard<std::mutex> lk(g_cfg_mutex);
    if (g_threads <= 0) g_threads = default_num_threads();
    threads = g_threads;
    pool = acquire_pool(g_threads);  // sized by the global count: a local limit never rebuilds it
  }
  if (!pool) return serial();
  std::unique_lock<std::mutex> run_lock(pool->run_mutex_, std::adopt_lock);
  pool->run(job, t_local_threads > 0 ? std::min(threads, t_local_threads) : threads);
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace imkern
