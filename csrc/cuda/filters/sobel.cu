// Derivative filters on CUDA (sobel, scharr, prewitt, laplacian, gradient, gradient_magnitude):
// the CPU's deriv_filter (csrc/cpu/filters/sobel.cpp), one fused kernel.
//
// Algorithm: one thread per output element (row element e = x * C + c of row y of image b).
// Each thread reads its kh x kw window once (global loads through L1: neighbouring threads
// share most of it), forms the two horizontal sums per window row (kx0, kx1) and their
// vertical combinations (ky0, ky1), and writes the combined result (mode single / sum / pair /
// L1 or L2 magnitude) as float32 (float64 for float64 images). Taps (<= 7 each) are kernel
// arguments (constant bank). Borders by filter_common's src_col / load_px.
// Cost per output element: kh * kw loads (L1 hits but the first), 2 (or 4) kh kw FLOPs;
// DRAM: sizeof(T) read + sizeof(A) (two outputs for `pair`) written. Not yet run on a GPU:
// a shared-memory tile (as sep_filter.cu) is the next step if a profile shows L1 bound.
// Variants: input dtype (u8, u16, f16, f32 -> float; f64 -> double) x mode.
#include "common/common.cuh"
#include "imkern/filters.hpp"

namespace imkern {
namespace cuda {

namespace {


template <typename A>
struct DerivTaps {
  A kx0[kMaxDerivTaps], ky0[kMaxDerivTaps], kx1[kMaxDerivTaps], ky1[kMaxDerivTaps];
};

constexpr int kBlockX = 32, kBlockY = 8;

template <typename T, typename A, int MODE>
__global__ void __launch_bounds__(kBlockX * kBlockY)
    deriv_filter_kernel(const T* __restrict__ src, A* __restrict__ dst0, A* __restrict__ dst1, Geom g,
                        int64_t d1_bs, int64_t d1_rs, DerivTaps<A> t, int kw, int kh, A delta, Border border,
                        A cval, int64_t rows) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * kBlockX + threadIdx.x;
  if (e >= g.wc) return;
  const int ay = kh / 2, ax = kw / 2;
  for (int64_t r = static_cast<int64_t>(blockIdx.y) * kBlockY + threadIdx.y; r < rows;
       r += static_cast<int64_t>(gridDim.y) * kBlockY) {
    const int64_t b = r / g.h, y = r % g.h;
    const T* sb = src + b * g.s_bs;
    A acc0 = 0, acc1 = 0;
    for (int i = 0; i < kh; ++i) {
      A h0 = 0, h1 = 0;
      for (int j = 0; j < kw; ++j) {
        const int64_t xo = src_col(e + static_cast<int64_t>(j - ax) * g.c, g, border);
        const A v = load_px<A>(sb, y - ay + i, xo, g, border, cval);
        h0 += t.kx0[j] * v;
        if (MODE != 0) h1 += t.kx1[j] * v;
      }
      acc0 += t.ky0[i] * h0;
      if (MODE != 0) acc1 += t.ky1[i] * h1;
    }
    A* o0 = dst0 + b * g.d_bs + y * g.d_rs + e;
    if (MODE == 0) {
      *o0 = acc0 + delta;
    } else if (MODE == 1) {
      *o0 = (acc0 + acc1) + delta;
    } else if (MODE == 2) {
      *o0 = acc0;
      dst1[b * d1_bs + y * d1_rs + e] = acc1;
    } else if (MODE == 3) {
      *o0 = abs(acc0) + abs(acc1);
    } else {
      *o0 = sqrt(acc0 * acc0 + acc1 * acc1);
    }
  }
}

template <typename T, typename A, int MODE>
void launch(const T* src, A* d0, A* d1, const Geom& g, const ImageDesc& dd1, const DerivTaps<A>& t, int kw, int kh,
            A delta, Border border, A cval, cudaStream_t st) {
  const int64_t rows = checked_mul(g.n, g.h);
  const int64_t bx = ceil_div<int64_t>(g.wc, kBlockX);
  if (bx > 0x7fffffff) throw std::overflow_error("imkern: image rows too long for the CUDA grid");
  const int64_t by = std::min<int64_t>(ceil_div<int64_t>(rows, kBlockY), 65535);
  deriv_filter_kernel<T, A, MODE><<<dim3(static_cast<unsigned>(bx), static_cast<unsigned>(by)),
                                   dim3(kBlockX, kBlockY), 0, st>>>(src, d0, d1, g, dd1.batch_stride, dd1.row_stride, t,
                                                                    kw, kh, delta, border, cval, rows);
  IMKERN_CUDA_CHECK_LAUNCH();
}

}  // namespace

void deriv_filter_cuda(DType dtype, const void* src, const ImageDesc& s, void* dst0, const ImageDesc& d0, void* dst1,
                       const ImageDesc& d1, const double* kx0, const double* ky0, const double* kx1,
                       const double* ky1, int kw, int kh, DerivMode mode, double delta, Border border, double cval,
                       void* stream) {
  if (kw < 1 || kh < 1 || kw > kMaxDerivTaps || kh > kMaxDerivTaps)
    throw std::invalid_argument("deriv_filter: kernel sizes must be in [1, 7]");
  if (!check_images(src, s, dst0, d0, kh, kw, kh / 2, kw / 2)) return;
  if (mode == DerivMode::pair) {
    if (d1.n != s.n || d1.h != s.h || d1.w != s.w || d1.c != s.c)
      throw std::invalid_argument("deriv_filter: second output shape differs");
    if (!dst1) throw std::invalid_argument("deriv_filter: null second output");
  }
  const Geom g = make_geom(s, d0);
  const cudaStream_t st = as_stream(stream);
  visit_dtype<kImageDTypes>(dtype, "deriv_filter", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = typename AccOf<T>::type;
    DerivTaps<A> t{};
    for (int j = 0; j < kw; ++j) {
      t.kx0[j] = static_cast<A>(kx0[j]);
      t.kx1[j] = static_cast<A>(kx1[j]);
    }
    for (int i = 0; i < kh; ++i) {
      t.ky0[i] = static_cast<A>(ky0[i]);
      t.ky1[i] = static_cast<A>(ky1[i]);
    }
    const T* sp = static_cast<const T*>(src);
    A* p0 = static_cast<A*>(dst0);
    A* p1 = static_cast<A*>(dst1);
    const A dl = static_cast<A>(delta), cv = static_cast<A>(cval);
    switch (mode) {
      case DerivMode::single: launch<T, A, 0>(sp, p0, p1, g, d1, t, kw, kh, dl, border, cv, st); break;
      case DerivMode::sum: launch<T, A, 1>(sp, p0, p1, g, d1, t, kw, kh, dl, border, cv, st); break;
      case DerivMode::pair: launch<T, A, 2>(sp, p0, p1, g, d1, t, kw, kh, dl, border, cv, st); break;
      case DerivMode::mag_l1: launch<T, A, 3>(sp, p0, p1, g, d1, t, kw, kh, dl, border, cv, st); break;
      case DerivMode::mag_l2: launch<T, A, 4>(sp, p0, p1, g, d1, t, kw, kh, dl, border, cv, st); break;
      default: throw std::invalid_argument("deriv_filter: unknown mode");
    }
  });
}

}  // namespace cuda
}  // namespace imkern
