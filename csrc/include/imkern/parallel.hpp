// imkern's own small thread pool (no OpenMP: two OpenMP runtimes in one process slow down
// or deadlock, and libgomp is not fork-safe). The calling thread takes part in the work.
#pragma once
#include <cstdint>
#include <functional>

namespace imkern {

int get_num_threads();
void set_num_threads(int n);  // n <= 0 restores the default (OMP_NUM_THREADS, else CPUs usable);
                              // capped at max_num_threads()
int default_num_threads();
// A limit for the calling thread alone (0, the default: none). Kernels called from this thread
// plan for and use at most min(n, get_num_threads()) threads, and get_num_threads() called here
// says so; n == 1 runs them in the caller without waking the pool. For callers that are
// already parallel across items (load_folder's decoding threads), where the pool's worker
// would only compete with them for the CPUs. Results do not depend on it: the chunking never
// depends on the thread count.
void set_thread_local_num_threads(int n);
int get_thread_local_num_threads();
// The largest thread count: max(256, 4 x the CPUs this process may run on). Beyond the CPUs
// more threads only add overhead; the cap keeps a typo (1000, 2**31) from building a pool of
// thousands of threads. If the system refuses to start threads, the pool runs with those it
// got (possibly none: the kernels then run in the calling thread), never hangs or throws.
int max_num_threads();

// Calls fn(lo, hi) on disjoint chunks covering [begin, end), each at least `grain` long
// (except possibly the last). The chunking depends only on the range and grain, never on
// the thread count, so any per-chunk reduction gives the same result with 1 or N threads.
// Nested calls (from inside fn) and calls made while another thread owns the pool run
// serially in the caller.
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

// Chunk count parallel_for would use; for kernels that keep per-chunk scratch.
int64_t parallel_chunks(int64_t begin, int64_t end, int64_t grain);

}  // namespace imkern
