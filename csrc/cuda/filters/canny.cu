// Canny on CUDA, the same edge map as cv2.Canny (and as csrc/cpu/filters/canny.cpp), with the
// hysteresis on the device: no host round trip, a fixed sequence of launches on one stream.
//
// Algorithm:
//   1. grad: one thread per pixel computes the integer Sobel dx, dy of every channel
//      (replicated borders, ksize 3/5/7, 7 scaled by 1/16 with round-half-even), the L1/L2
//      magnitude, keeps the strongest channel (the first on ties) -> dx, dy, mag (int32).
//   2. nms: cv2's fixed-point sector test on the 3x3 magnitudes (0 outside the image) ->
//      state 0 (not an edge), 1 (candidate: a maximum > low), 2 (strong: also > high); a
//      candidate's label starts as its own pixel index.
//   3. Hysteresis as connected components: the edges are the candidates 8-connected to a
//      strong one, a set independent of any traversal order. union: each candidate unites
//      with its candidate neighbours left, up-left, up, up-right (this covers the 8 links)
//      by lock-free union-find (roots are the smallest index; linking by atomicMin,
//      Playne & Hawick 2018); compress: label = root; mark: a strong pixel flags its root;
//      final: out = 255 where a candidate's root is flagged, else 0.
// Cost per pixel: 1 byte read (x C x ksize^2 through L1), 12 bytes of dx/dy/mag written and
// read, a 4-byte label and 1-byte state; union/find work is near-linear in the candidates.
// Labels are int32: a batch of at most 2^31 - 1 pixels (else OverflowError). Not yet run on
// a GPU.
#include "common/common.cuh"
#include "imkern/filters.hpp"

namespace imkern {
namespace cuda {

namespace {


struct Taps7 {
  int sm[7], dv[7];
};

inline Taps7 sobel_taps(int k) {
  Taps7 t{};
  const int s3[3] = {1, 2, 1}, d3[3] = {-1, 0, 1};
  const int s5[5] = {1, 4, 6, 4, 1}, d5[5] = {-1, -2, 0, 2, 1};
  const int s7[7] = {1, 6, 15, 20, 15, 6, 1}, d7[7] = {-1, -4, -5, 0, 5, 4, 1};
  for (int i = 0; i < k; ++i) {
    t.sm[i] = k == 3 ? s3[i] : (k == 5 ? s5[i] : s7[i]);
    t.dv[i] = k == 3 ? d3[i] : (k == 5 ? d5[i] : d7[i]);
  }
  return t;
}

__device__ __forceinline__ int div16_rne(int v) {
  const int q = v >> 4, r = v & 15;
  return q + ((r > 8) | ((r == 8) & (q & 1)));
}

struct CGeom {
  int64_t n, h, w, c;
  int64_t s_bs, s_rs, d_bs, d_rs;
  int64_t pixels;  // n * h * w
};

template <int K>
__global__ void canny_grad_kernel(const uint8_t* __restrict__ src, CGeom g, Taps7 t, bool l2, int* __restrict__ gdx,
                                  int* __restrict__ gdy, int* __restrict__ gmag) {
  constexpr int r = K / 2;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; p < g.pixels;
       p += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t x = p % g.w, q = p / g.w, y = q % g.h, b = q / g.h;
    const uint8_t* sb = src + b * g.s_bs;
    int bdx = 0, bdy = 0, bm = -1;
    for (int64_t c = 0; c < g.c; ++c) {
      int dx = 0, dy = 0;
#pragma unroll
      for (int i = 0; i < K; ++i) {
        int64_t yy = y - r + i;
        yy = yy < 0 ? 0 : (yy >= g.h ? g.h - 1 : yy);
        const uint8_t* row = sb + yy * g.s_rs;
        int hd = 0, hs = 0;
#pragma unroll
        for (int j = 0; j < K; ++j) {
          int64_t xx = x - r + j;
          xx = xx < 0 ? 0 : (xx >= g.w ? g.w - 1 : xx);
          const int v = row[xx * g.c + c];
          hd += t.dv[j] * v;
          hs += t.sm[j] * v;
        }
        dx += t.sm[i] * hd;
        dy += t.dv[i] * hs;
      }
      if (K == 7) {
        dx = div16_rne(dx);
        dy = div16_rne(dy);
      }
      const int m = l2 ? dx * dx + dy * dy : abs(dx) + abs(dy);
      if (m > bm) {
        bm = m;
        bdx = dx;
        bdy = dy;
      }
    }
    gdx[p] = bdx;
    gdy[p] = bdy;
    gmag[p] = bm;
  }
}

__device__ __forceinline__ int mag_at(const int* __restrict__ gmag, const CGeom& g, int64_t b, int64_t y, int64_t x) {
  if (y < 0 || y >= g.h || x < 0 || x >= g.w) return 0;
  return gmag[(b * g.h + y) * g.w + x];
}

__global__ void canny_nms_kernel(CGeom g, const int* __restrict__ gdx, const int* __restrict__ gdy,
                                 const int* __restrict__ gmag, int low, int high, uint8_t* __restrict__ state,
                                 int* __restrict__ label) {
  constexpr int TG22 = 13573;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; p < g.pixels;
       p += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t x = p % g.w, q = p / g.w, y = q % g.h, b = q / g.h;
    const int m = gmag[p];
    int st = 0;
    if (m > low) {
      const int xs = gdx[p], ys = gdy[p];
      const int ax = abs(xs), ay = abs(ys) << 15;
      const int tg22x = ax * TG22;
      bool keep;
      if (ay < tg22x) {
        keep = m > mag_at(gmag, g, b, y, x - 1) && m >= mag_at(gmag, g, b, y, x + 1);
      } else {
        const int tg67x = tg22x + (ax << 16);
        if (ay > tg67x) {
          keep = m > mag_at(gmag, g, b, y - 1, x) && m >= mag_at(gmag, g, b, y + 1, x);
        } else {
          const int s = (xs ^ ys) < 0 ? -1 : 1;
          keep = m > mag_at(gmag, g, b, y - 1, x - s) && m > mag_at(gmag, g, b, y + 1, x + s);
        }
      }
      if (keep) st = m > high ? 2 : 1;
    }
    state[p] = static_cast<uint8_t>(st);
    label[p] = st ? static_cast<int>(p) : -1;
  }
}

__device__ __forceinline__ int find_root(const volatile int* L, int x) {
  int y = L[x];
  while (y != x) {
    x = y;
    y = L[x];
  }
  return x;
}

// Lock-free union: the larger root is linked under the smaller with atomicMin; a failed link
// (the root changed meanwhile) retries from the roots.
__device__ void unite(int* L, int a, int b) {
  bool done = false;
  while (!done) {
    a = find_root(L, a);
    b = find_root(L, b);
    if (a < b) {
      const int old = atomicMin(&L[b], a);
      done = old == b;
      b = old;
    } else if (b < a) {
      const int old = atomicMin(&L[a], b);
      done = old == a;
      a = old;
    } else {
      done = true;
    }
  }
}

__global__ void canny_union_kernel(CGeom g, const uint8_t* __restrict__ state, int* label) {
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; p < g.pixels;
       p += static_cast<int64_t>(gridDim.x) * kThreads) {
    if (!state[p]) continue;
    const int64_t x = p % g.w, y = (p / g.w) % g.h;
    if (x > 0 && state[p - 1]) unite(label, static_cast<int>(p), static_cast<int>(p - 1));
    if (y > 0) {
      const int64_t u = p - g.w;
      if (state[u]) unite(label, static_cast<int>(p), static_cast<int>(u));
      if (x > 0 && state[u - 1]) unite(label, static_cast<int>(p), static_cast<int>(u - 1));
      if (x + 1 < g.w && state[u + 1]) unite(label, static_cast<int>(p), static_cast<int>(u + 1));
    }
  }
}

__global__ void canny_mark_kernel(CGeom g, const uint8_t* __restrict__ state, int* label, uint8_t* __restrict__ flag) {
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; p < g.pixels;
       p += static_cast<int64_t>(gridDim.x) * kThreads) {
    if (!state[p]) continue;
    const int root = find_root(label, static_cast<int>(p));
    label[p] = root;  // compress: the final pass reads the root directly
    if (state[p] == 2) flag[root] = 1;
  }
}

__global__ void canny_final_kernel(CGeom g, const uint8_t* __restrict__ state, const int* __restrict__ label,
                                   const uint8_t* __restrict__ flag, uint8_t* __restrict__ dst) {
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; p < g.pixels;
       p += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t x = p % g.w, q = p / g.w, y = q % g.h, b = q / g.h;
    uint8_t v = 0;
    if (state[p]) v = flag[label[p]] ? 255 : 0;
    dst[b * g.d_bs + y * g.d_rs + x] = v;
  }
}

}  // namespace

void canny_cuda(const uint8_t* src, const ImageDesc& s, uint8_t* dst, const ImageDesc& d, int ksize, bool l2, int low,
                int high, void* stream) {
  if (ksize != 3 && ksize != 5 && ksize != 7) throw std::invalid_argument("canny: ksize must be 3, 5 or 7");
  if (d.n != s.n || d.h != s.h || d.w != s.w || d.c != 1) throw std::invalid_argument("canny: out shape mismatch");
  if (s.n == 0 || s.h == 0 || s.w == 0 || s.c == 0) return;
  if (!src || !dst) throw std::invalid_argument("canny: null pointer");
  const int64_t pixels = checked_mul(checked_mul(s.n, s.h), s.w);
  if (pixels > 0x7fffffff) throw std::overflow_error("canny: more than 2^31 - 1 pixels in one call on CUDA");
  const CGeom g{s.n, s.h, s.w, s.c, s.batch_stride, s.row_stride, d.batch_stride, d.row_stride, pixels};
  const cudaStream_t st = as_stream(stream);
  const size_t np = static_cast<size_t>(pixels);
  DeviceBuffer ints(np * 4 * sizeof(int), st);  // dx, dy, mag, label
  DeviceBuffer bytes(np * 2, st);               // state, root flags
  int* gdx = ints.get<int>();
  int* gdy = gdx + np;
  int* gmag = gdy + np;
  int* label = gmag + np;
  uint8_t* state = bytes.get<uint8_t>();
  uint8_t* flag = state + np;
  IMKERN_CUDA_CHECK(cudaMemsetAsync(flag, 0, np, st));
  const unsigned grid = grid_for(ceil_div<int64_t>(pixels, kThreads));
  const Taps7 t = sobel_taps(ksize);
  switch (ksize) {
    case 3: canny_grad_kernel<3><<<grid, kThreads, 0, st>>>(src, g, t, l2, gdx, gdy, gmag); break;
    case 5: canny_grad_kernel<5><<<grid, kThreads, 0, st>>>(src, g, t, l2, gdx, gdy, gmag); break;
    default: canny_grad_kernel<7><<<grid, kThreads, 0, st>>>(src, g, t, l2, gdx, gdy, gmag); break;
  }
  IMKERN_CUDA_CHECK_LAUNCH();
  canny_nms_kernel<<<grid, kThreads, 0, st>>>(g, gdx, gdy, gmag, low, high, state, label);
  IMKERN_CUDA_CHECK_LAUNCH();
  canny_union_kernel<<<grid, kThreads, 0, st>>>(g, state, label);
  IMKERN_CUDA_CHECK_LAUNCH();
  canny_mark_kernel<<<grid, kThreads, 0, st>>>(g, state, label, flag);
  IMKERN_CUDA_CHECK_LAUNCH();
  canny_final_kernel<<<grid, kThreads, 0, st>>>(g, state, label, flag, dst);
  IMKERN_CUDA_CHECK_LAUNCH();
  bytes.release();
  ints.release();
}

}  // namespace cuda
}  // namespace imkern
