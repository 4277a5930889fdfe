// conv2d forward, backward-data and backward-weight as implicit GEMMs (NCHW, groups,
// stride, padding, dilation; PyTorch semantics), on the tiles of gemm_tiles.cuh.
//
// Per group g (blockIdx.z), with Cg = C / groups, Kg = K / groups, RS = R * S:
//   forward  y[b, gKg+m, p]   = sum_{k<CgRS} W[gKg+m, k] * im2col(x)[k, (b, p)]   M=Kg   N=B*OH*OW  K=Cg*RS
//   data     gx[b, gCg+c, q]  = sum_{(k, rs)} W[gKg+k, c, rs] * col2im(gy)       M=Cg   N=B*H*W    K=Kg*RS
//   weight   gW[gKg+m, n]     = sum_{(b, p)} gy[b, gKg+m, p] * im2col(x)[n, (b,p)] M=Kg   N=Cg*RS    K=B*OH*OW
// The im2col / col2im operands are gathered element by element while the tile is loaded
// (zero for padding, and for data-gradient taps that do not hit a stride multiple), so no
// workspace holds the unfolded tensor. Each thread decomposes its tile coordinate once per
// tile (the loaders' State) and the reduction index per element with 32-bit divisions.
// Cost: 2 * B * K * Cg * R * S * OH * OW FLOPs per pass; bytes ~ x + W + y once each when
// the tiles hit in L2. Variants: see gemm_tiles.cuh (float32 SIMT/TF32, float16, bfloat16);
// the weight gradient uses deterministic split-K (long reductions, few output tiles).
// Limits (checked): Cg * R * S, Kg * R * S, H * W, OH * OW < 2^31.
#include "nn/gemm_tiles.cuh"
#include "imkern/nn.hpp"

namespace imkern {
namespace cuda {

namespace {

using gemm::BK;
using gemm::NT;

struct Geo {
  int C, H, W, K, R, S, OH, OW, sh, sw, pt, pl, dh, dw, Cg, Kg, RS, HW, OHW;
};

// Steps a GEMM index k = (outer, r, s) (outer: the channel or the filter) by `step` in place,
// carrying s into r and r into outer: the loaders decompose k once and then only step it.
__device__ __forceinline__ void step_rs(const Geo& g, int step, int& outer, int& r, int& s) {
  s += step;
  while (s >= g.S) {
    s -= g.S;
    ++r;
  }
  while (r >= g.R) {
    r -= g.R;
    ++outer;
  }
}

// ---- forward ------------------------------------------------------------------------------
// B operand: im2col(x)[k = (c, r, s), n = (b, oh, ow)]; contiguous along n (ow).
template <typename T>
struct Im2colLoader {
  static constexpr bool kContigK = false;
  const T* x;
  Geo g;
  int64_t ncols;  // B * OH * OW
  struct State {
    const T* base;  // x + (b * C + group * Cg) * HW, or nullptr past the last column
    int ih0, iw0;
  };
  __device__ State init(int64_t n0, int z) const {
    // kContigK == false: this thread's column is n0 + tid % BN for every element.
    const int64_t n = n0 + threadIdx.x % gemm::BN;
    State s{nullptr, 0, 0};
    if (n < ncols) {
      const int64_t b = n / g.OHW;
      const int p = static_cast<int>(n - b * g.OHW);
      const int oh = p / g.OW, ow = p - oh * g.OW;
      s.base = x + (b * g.C + static_cast<int64_t>(z) * g.Cg) * g.HW;
      s.ih0 = oh * g.sh - g.pt;
      s.iw0 = ow * g.sw - g.pl;
    }
    return s;
  }
  template <int BMN, int PER, typename V>
  __device__ void load(const State& st, int64_t k0, int64_t kend, V (&v)[PER]) const {
    static_assert(BMN == gemm::BN, "im2col is the B operand");
    // k = k0 + tid / BMN + i * STEP: decompose once, then step (c, r, s) incrementally.
    constexpr int STEP = NT / BMN;
    int64_t k = k0 + threadIdx.x / BMN;
    const int kq = static_cast<int>(k < kend ? k : 0);
    int c = kq / g.RS, s = kq - c * g.RS, r = s / g.S;
    s -= r * g.S;
#pragma unroll
    for (int i = 0; i < PER; ++i) {
      float val = 0.f;
      if (st.base && k < kend) {
        const int ih = st.ih0 + r * g.dh, iw = st.iw0 + s * g.dw;
        if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
          val = to_f(st.base[static_cast<int64_t>(c) * g.HW + ih * g.W + iw]);
      }
      v[i] = from_f<V>(val);
      k += STEP;
      step_rs(g, STEP, c, r, s);
    }
  }
};

template <typename T>
struct ConvFwdEpi {
  T* y;
  const T* bias;
  Geo g;
  bool relu;
  __device__ void operator()(int64_t m, int64_t n, int z, float v) const {
    const int64_t k = static_cast<int64_t>(z) * g.Kg + m;
    if (bias) v += to_f(bias[k]);
    if (relu && v < 0.f) v = 0.f;
    const int64_t b = n / g.OHW, p = n - b * g.OHW;
    y[(b * g.K + k) * g.OHW + p] = from_f<T>(v);
  }
};

// ---- backward data --------------------------------------------------------------------------
// A operand: A(m = c, k = (kk, rs)) = W[((gKg + kk) * Cg + c) * RS + rs]; contiguous along rs.
template <typename T>
struct WeightTLoader {
  static constexpr bool kContigK = true;
  const T* w;
  Geo g;
  struct State {
    const T* base;  // w + group * Kg * Cg * RS
    int64_t m0;
  };
  __device__ State init(int64_t m0, int z) const {
    return {w + static_cast<int64_t>(z) * g.Kg * g.Cg * g.RS, m0};
  }
  template <int BMN, int PER, typename V>
  __device__ void load(const State& st, int64_t k0, int64_t kend, V (&v)[PER]) const {
    const int64_t k = k0 + threadIdx.x % BK;  // fixed per thread (kContigK)
    int kk = 0, rs = 0;
    if (k < kend) {
      kk = static_cast<int>(k) / g.RS;
      rs = static_cast<int>(k) - kk * g.RS;
    }
#pragma unroll
    for (int i = 0; i < PER; ++i) {
      const int64_t c = st.m0 + threadIdx.x / BK + i * (NT / BK);
      float val = 0.f;
      if (k < kend && c < g.Cg) val = to_f(st.base[(static_cast<int64_t>(kk) * g.Cg + c) * g.RS + rs]);
      v[i] = from_f<V>(val);
    }
  }
};

// B operand: col2im(gy)[k = (kk, r, s), n = (b, ih, iw)] = gy[b, gKg + kk, oh, ow] where
// ih = oh * sh - pt + r * dh (and likewise for w), or 0 when no such (oh, ow) exists.
template <typename T>
struct Col2imLoader {
  static constexpr bool kContigK = false;
  const T* gy;
  Geo g;
  int64_t ncols;  // B * H * W
  struct State {
    const T* base;  // gy + (b * K + group * Kg) * OHW
    int th0, tw0;   // ih + pt, iw + pl
  };
  __device__ State init(int64_t n0, int z) const {
    const int64_t n = n0 + threadIdx.x % gemm::BN;
    State s{nullptr, 0, 0};
    if (n < ncols) {
      const int64_t b = n / g.HW;
      const int q = static_cast<int>(n - b * g.HW);
      const int ih = q / g.W, iw = q - ih * g.W;
      s.base = gy + (b * g.K + static_cast<int64_t>(z) * g.Kg) * g.OHW;
      s.th0 = ih + g.pt;
      s.tw0 = iw + g.pl;
    }
    return s;
  }
  template <int BMN, int PER, typename V>
  __device__ void load(const State& st, int64_t k0, int64_t kend, V (&v)[PER]) const {
    static_assert(BMN == gemm::BN, "col2im is the B operand");
    constexpr int STEP = NT / BMN;  // see Im2colLoader::load
    int64_t k = k0 + threadIdx.x / BMN;
    const int kq = static_cast<int>(k < kend ? k : 0);
    int kk = kq / g.RS, s = kq - kk * g.RS, r = s / g.S;
    s -= r * g.S;
#pragma unroll
    for (int i = 0; i < PER; ++i, k += STEP) {
      float val = 0.f;
      if (st.base && k < kend) {
        const int th = st.th0 - r * g.dh, tw = st.tw0 - s * g.dw;
        if (th >= 0 && tw >= 0) {
          const int oh = g.sh == 1 ? th : th / g.sh, ow = g.sw == 1 ? tw : tw / g.sw;
          if (oh * g.sh == th && ow * g.sw == tw && oh < g.OH && ow < g.OW)
            val = to_f(st.base[static_cast<int64_t>(kk) * g.OHW + oh * g.OW + ow]);
        }
      }
      v[i] = from_f<V>(val);
      step_rs(g, STEP, kk, r, s);
    }
  }
};

template <typename T>
struct ConvDataEpi {
  T* gx;
  Geo g;
  __device__ void operator()(int64_t m, int64_t n, int z, float v) const {
    const int64_t c = static_cast<int64_t>(z) * g.Cg + m;
    const int64_t b = n / g.HW, q = n - b * g.HW;
    gx[(b * g.C + c) * g.HW + q] = from_f<T>(v);
  }
};

// ---- backward weight -----------------------------------------------------------------------
// A operand: A(m, k = (b, p)) = gy[(b * K + gKg + m) * OHW + p]; contiguous along p.
template <typename T>
struct GradOutLoader {
  static constexpr bool kContigK = true;
  const T* gy;
  Geo g;
  struct State {
    const T* base;  // gy + (group * Kg) * OHW
    int64_t m0;
  };
  __device__ State init(int64_t m0, int z) const {
    return {gy + static_cast<int64_t>(z) * g.Kg * g.OHW, m0};
  }
  template <int BMN, int PER, typename V>
  __device__ void load(const State& st, int64_t k0, int64_t kend, V (&v)[PER]) const {
    const int64_t k = k0 + threadIdx.x % BK;
    int64_t off = 0;
    if (k < kend) {
      const int64_t b = k / g.OHW;
      off = b * g.K * g.OHW + (k - b * g.OHW);
    }
#pragma unroll
    for (int i = 0; i < PER; ++i) {
      const int64_t m = st.m0 + threadIdx.x / BK + i * (NT / BK);
      float val = 0.f;
      if (k < kend && m < g.Kg) val = to_f(st.base[off + m * g.OHW]);
      v[i] = from_f<V>(val);
    }
  }
};

// B operand: B(k = (b, oh, ow), n = (c, r, s)) = x[b, gCg + c, oh*sh - pt + r*dh, ow*sw - pl + s*dw].
template <typename T>
struct Im2colTLoader {
  static constexpr bool kContigK = true;
  const T* x;
  Geo g;
  struct State {
    int64_t n0;
    int z;
  };
  __device__ State init(int64_t n0, int z) const { return {n0, z}; }
  template <int BMN, int PER, typename V>
  __device__ void load(const State& st, int64_t k0, int64_t kend, V (&v)[PER]) const {
    const int64_t k = k0 + threadIdx.x % BK;
    const T* base = nullptr;
    int ih0 = 0, iw0 = 0;
    if (k < kend) {
      const int64_t b = k / g.OHW;
      const int p = static_cast<int>(k - b * g.OHW);
      const int oh = p / g.OW, ow = p - oh * g.OW;
      base = x + (b * g.C + static_cast<int64_t>(st.z) * g.Cg) * g.HW;
      ih0 = oh * g.sh - g.pt;
      iw0 = ow * g.sw - g.pl;
    }
    const int64_t ncols = static_cast<int64_t>(g.Cg) * g.RS;
    // n = n0 + tid / BK + i * STEP: decompose once, then step (c, r, s) incrementally.
    constexpr int STEP = NT / BK;
    int64_t n = st.n0 + threadIdx.x / BK;
    const int nq = static_cast<int>(n < ncols ? n : 0);
    int c = nq / g.RS, s = nq - c * g.RS, r = s / g.S;
    s -= r * g.S;
#pragma unroll
    for (int i = 0; i < PER; ++i, n += STEP) {
      float val = 0.f;
      if (base && n < ncols) {
        const int ih = ih0 + r * g.dh, iw = iw0 + s * g.dw;
        if (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W)
          val = to_f(base[static_cast<int64_t>(c) * g.HW + ih * g.W + iw]);
      }
      v[i] = from_f<V>(val);
      step_rs(g, STEP, c, r, s);
    }
  }
};

template <typename T>
struct ConvWeightEpi {
  T* gw;
  Geo g;
  __device__ void operator()(int64_t m, int64_t n, int z, float v) const {
    gw[(static_cast<int64_t>(z) * g.Kg + m) * (static_cast<int64_t>(g.Cg) * g.RS) + n] = from_f<T>(v);
  }
};

Geo make_geo(const Conv2dShape& s, const char* op) {
  if (s.n < 0 || s.c <= 0 || s.h < 0 || s.w < 0 || s.k <= 0 || s.r <= 0 || s.s <= 0 || s.oh < 0 || s.ow < 0)
    throw std::invalid_argument(std::string(op) + ": bad shape");
  if (s.sh <= 0 || s.sw <= 0 || s.dh <= 0 || s.dw <= 0 || s.pt < 0 || s.pl < 0)
    throw std::invalid_argument(std::string(op) + ": stride and dilation must be positive, padding non-negative");
  if (s.groups <= 0 || s.c % s.groups || s.k % s.groups)
    throw std::invalid_argument(std::string(op) + ": groups must divide the input and output channels");
  const int64_t cg = s.c / s.groups, kg = s.k / s.groups;
  require_int32(s.c, "channels");
  require_int32(s.k, "output channels");
  require_int32(checked_mul(checked_mul(cg, s.r), s.s), "C/groups * R * S");
  require_int32(checked_mul(checked_mul(kg, s.r), s.s), "K/groups * R * S");
  require_int32(checked_mul(s.h, s.w), "H * W");
  require_int32(checked_mul(s.oh, s.ow), "OH * OW");
  // Padded coordinates (oh * stride + r * dilation, ih + pad) must fit in int as well.
  require_int32(checked_add(checked_add(checked_mul(s.oh, s.sh), checked_mul(s.r, s.dh)), s.h + s.pt),
                    "padded height");
  require_int32(checked_add(checked_add(checked_mul(s.ow, s.sw), checked_mul(s.s, s.dw)), s.w + s.pl),
                    "padded width");
  require_int32(s.sh, "stride");
  require_int32(s.sw, "stride");
  require_int32(s.dh, "dilation");
  require_int32(s.dw, "dilation");
  checked_mul(checked_mul(checked_mul(s.n, s.c), s.h), s.w);
  checked_mul(checked_mul(checked_mul(s.n, s.k), s.oh), s.ow);
  Geo g;
  g.C = static_cast<int>(s.c);
  g.H = static_cast<int>(s.h);
  g.W = static_cast<int>(s.w);
  g.K = static_cast<int>(s.k);
  g.R = static_cast<int>(s.r);
  g.S = static_cast<int>(s.s);
  g.OH = static_cast<int>(s.oh);
  g.OW = static_cast<int>(s.ow);
  g.sh = static_cast<int>(s.sh);
  g.sw = static_cast<int>(s.sw);
  g.pt = static_cast<int>(s.pt);
  g.pl = static_cast<int>(s.pl);
  g.dh = static_cast<int>(s.dh);
  g.dw = static_cast<int>(s.dw);
  g.Cg = static_cast<int>(cg);
  g.Kg = static_cast<int>(kg);
  g.RS = g.R * g.S;
  g.HW = g.H * g.W;
  g.OHW = g.OH * g.OW;
  return g;
}

}  // namespace

void conv2d_forward_cuda(DType dt, const Conv2dShape& s, const void* x, const void* weight, const void* bias,
                         bool relu, void* y, bool allow_tf32, void* stream) {
  const Geo g = make_geo(s, "conv2d");
  const int64_t ncols = checked_mul(s.n, static_cast<int64_t>(g.OHW));
  if (ncols == 0) return;
  gemm::dispatch_mma(dt, allow_tf32, "conv2d", [&](auto tag, auto mma) {
    using T = typename decltype(tag)::type;
    constexpr gemm::Mma MMA = decltype(mma)::value;
    const int64_t kdim = static_cast<int64_t>(g.Cg) * g.RS;
    gemm::MatLoader<T, true> la{static_cast<const T*>(weight), kdim, g.Kg, static_cast<int64_t>(g.Kg) * kdim};
    Im2colLoader<T> lb{static_cast<const T*>(x), g, ncols};
    ConvFwdEpi<T> epi{static_cast<T*>(y), static_cast<const T*>(bias), g, relu};
    gemm::launch_gemm<MMA>(g.Kg, ncols, kdim, s.groups, la, lb, epi, false, as_stream(stream));
  });
}

void conv2d_backward_data_cuda(DType dt, const Conv2dShape& s, const void* grad_y, const void* weight,
                               void* grad_x, bool allow_tf32, void* stream) {
  const Geo g = make_geo(s, "conv2d_backward");
  const int64_t ncols = checked_mul(s.n, static_cast<int64_t>(g.HW));
  if (ncols == 0) return;
  if (g.OHW == 0) {  // no output pixels: the gradient is zero
    IMKERN_CUDA_CHECK(cudaMemsetAsync(grad_x, 0, static_cast<size_t>(ncols) * g.C * (dt == DType::f32 ? 4 : 2),
                                      as_stream(stream)));
    return;
  }
  gemm::dispatch_mma(dt, allow_tf32, "conv2d_backward", [&](auto tag, auto mma) {
    using T = typename decltype(tag)::type;
    constexpr gemm::Mma MMA = decltype(mma)::value;
    WeightTLoader<T> la{static_cast<const T*>(weight), g};
    Col2imLoader<T> lb{static_cast<const T*>(grad_y), g, ncols};
    ConvDataEpi<T> epi{static_cast<T*>(grad_x), g};
    gemm::launch_gemm<MMA>(g.Cg, ncols, static_cast<int64_t>(g.Kg) * g.RS, s.groups, la, lb, epi, false,
                           as_stream(stream));
  });
}

void conv2d_backward_weight_cuda(DType dt, const Conv2dShape& s, const void* grad_y, const void* x, void* grad_w,
                                 bool allow_tf32, void* stream) {
  const Geo g = make_geo(s, "conv2d_backward");
  const int64_t kdim = checked_mul(s.n, static_cast<int64_t>(g.OHW));
  // kdim == 0 still runs: the epilogue writes zeros.
  gemm::dispatch_mma(dt, allow_tf32, "conv2d_backward", [&](auto tag, auto mma) {
    using T = typename decltype(tag)::type;
    constexpr gemm::Mma MMA = decltype(mma)::value;
    GradOutLoader<T> la{static_cast<const T*>(grad_y), g};
    Im2colTLoader<T> lb{static_cast<const T*>(x), g};
    ConvWeightEpi<T> epi{static_cast<T*>(grad_w), g};
    gemm::launch_gemm<MMA>(g.Kg, static_cast<int64_t>(g.Cg) * g.RS, kdim, s.groups, la, lb, epi, true,
                           as_stream(stream));
  });
}

}  // namespace cuda
}  // namespace imkern
