// uint8 Gaussian blur on CUDA as cv2.GaussianBlur computes it (its fixed-point "bit-exact"
// path): the integer arithmetic of csrc/cpu/filters/gaussian_u8.cpp, so the same bits as the
// CPU kernels and OpenCV.
//
// Algorithm: the taps are integers in 8 fractional bits summing to 256 (passed by value).
// A block of 256 threads owns an output tile of TH rows x 256 row elements (a row of an
// (N, H, W, C) image is W*C packed elements; a horizontal tap is a shift of C elements).
//   1. Horizontal pass, global -> shared: for each of the TH + kh - 1 source rows the tile
//      needs (rows mapped by the border rule), each thread computes the 16-bit sum
//      h = sum_j kx[j] * src(x + j - kw/2) of its column (exact: at most 255 * 256), reading
//      its kw source bytes (consecutive threads read consecutive bytes: coalesced, the
//      overlapping reads hit L1), and stores h to shared memory.
//   2. Vertical pass, shared -> global: out = (sum_i ky[i] h_i + 2^15) >> 16 in 32 bits (exact:
//      at most 255 * 65536), one output element per thread and row, coalesced stores.
// Cost per output element: 1 byte read (plus the (kh - 1) / TH halo rows and kw - 1 overlapping
// reads from L1), 1 byte written; (TH + kh - 1) / TH * kw + kh integer multiply-adds;
// shared memory: (TH + kh - 1) / TH writes and kh reads of 16 bits.
// uint16 (cv2's 16-bit fixed point, csrc/cpu/filters/gaussian_u16.cpp): the same kernel with
// taps in 16 fractional bits, h in 32 bits (shared rows of 32 bits) and the vertical sums in 64
// bits, out = (v + 2^31) >> 32.
// Not yet run on a GPU (written and compiled without one; the tests compare it with the CPU
// kernels bit for bit when a GPU is present).
// Variants: uint8 (kh, kw <= kMaxGaussU8Taps, 63) and uint16 (<= kMaxGaussU16Taps, 33); TH = 16.
#include <string>

#include "common/common.cuh"
#include "imkern/filters.hpp"

namespace imkern {
namespace cuda {

namespace {

constexpr int kTileW = kThreads;  // row elements per tile: one column per thread
constexpr int kTileH = 16;        // output rows per tile

struct GaussTaps {
  int32_t ky[kMaxGaussU8Taps];
  int32_t kx[kMaxGaussU8Taps];
  int kh, kw;
};

// The integer types of each image type: H, the horizontal sums (exact: at most max * 2^Bits);
// V, the vertical sums (at most max * 2^(2 Bits)).
template <typename T>
struct Fixed;
template <>
struct Fixed<uint8_t> {
  using H = uint16_t;
  using V = uint32_t;
  static constexpr int kBits = 8;
};
template <>
struct Fixed<uint16_t> {
  using H = uint32_t;
  using V = uint64_t;
  static constexpr int kBits = 16;
};

template <typename T>
__global__ void __launch_bounds__(kThreads) gaussian_fixed_kernel(const T* __restrict__ src, T* __restrict__ dst,
                                                                  Geom g, GaussTaps t, Border border, int cval,
                                                                  int64_t tiles_x, int64_t tiles_y) {
  using H = typename Fixed<T>::H;
  using V = typename Fixed<T>::V;
  constexpr int kBits = Fixed<T>::kBits;
  extern __shared__ __align__(16) unsigned char smem[];
  H* const hs = reinterpret_cast<H*>(smem);  // (kTileH + kh - 1) rows x kTileW
  const int tid = threadIdx.x;
  const int ay = t.kh / 2, ax = t.kw / 2;
  const int rows_in = kTileH + t.kh - 1;
  // one block per tile; the tiles of all images in one flat index (grid-stride for huge images)
  for (int64_t tile = blockIdx.x; tile < tiles_x * tiles_y * g.n; tile += gridDim.x) {
    const int64_t b = tile / (tiles_x * tiles_y);
    const int64_t rem = tile - b * tiles_x * tiles_y;
    const int64_t y0 = (rem / tiles_x) * kTileH;
    const int64_t e = (rem % tiles_x) * kTileW + tid;  // this thread's row element
    const T* sb = src + b * g.s_bs;
    const bool live = e < g.wc;
    // 1. horizontal pass of the source rows y0 - ay ... y0 + kTileH - 1 + (kh - 1 - ay)
    for (int r = 0; r < rows_in; ++r) {
      const int64_t sy = border_index_dev(y0 - ay + r, g.h, border);
      uint32_t h = 0;
      if (live) {
        if (sy < 0) {
          h = static_cast<uint32_t>(cval) << kBits;  // a whole constant row: the taps sum to 2^kBits
        } else {
          const T* row = sb + sy * g.s_rs;
          const int64_t base = e - static_cast<int64_t>(ax) * g.c;
          for (int j = 0; j < t.kw; ++j) {
            const int64_t xo = src_col(base + j * g.c, g, border);
            const uint32_t v = xo < 0 ? static_cast<uint32_t>(cval) : static_cast<uint32_t>(row[xo]);
            h += static_cast<uint32_t>(t.kx[j]) * v;
          }
        }
      }
      hs[r * kTileW + tid] = static_cast<H>(h);
    }
    __syncthreads();
    // 2. vertical pass
    if (live) {
      T* db = dst + b * g.d_bs;
      for (int r = 0; r < kTileH && y0 + r < g.h; ++r) {
        V v = V(1) << (2 * kBits - 1);
        for (int i = 0; i < t.kh; ++i) v += static_cast<V>(t.ky[i]) * hs[(r + i) * kTileW + tid];
        db[(y0 + r) * g.d_rs + e] = static_cast<T>(v >> (2 * kBits));
      }
    }
    __syncthreads();  // the next tile reuses the shared rows
  }
}

}  // namespace

namespace {
template <typename T>
void launch_fixed(const T* src, const ImageDesc& s, T* dst, const ImageDesc& d, const int32_t* ky, int kh,
                  const int32_t* kx, int kw, Border border, int cval, int max_taps, void* stream) {
  constexpr int kMaxValue = (1 << (8 * sizeof(T))) - 1;
  if (kh < 1 || kw < 1 || kh % 2 == 0 || kw % 2 == 0 || kh > max_taps || kw > max_taps)
    throw std::invalid_argument("imkern: gaussian kernel sizes must be odd, 1 to " + std::to_string(max_taps));
  if (cval < 0 || cval > kMaxValue) throw std::invalid_argument("imkern: gaussian cval out of the image type's range");
  if (!check_images(src, s, dst, d, kh, kw, kh / 2, kw / 2)) return;
  const Geom g = make_geom(s, d);
  GaussTaps t{};
  for (int i = 0; i < kh; ++i) t.ky[i] = ky[i];
  for (int j = 0; j < kw; ++j) t.kx[j] = kx[j];
  t.kh = kh, t.kw = kw;
  const int64_t tiles_x = ceil_div<int64_t>(g.wc, kTileW), tiles_y = ceil_div<int64_t>(g.h, kTileH);
  const int64_t tiles = checked_mul(checked_mul(tiles_x, tiles_y), g.n);
  // <= 39 KiB (uint8, 63 taps) or 48 KiB (uint16, 33 taps)
  const size_t smem = static_cast<size_t>(kTileH + kh - 1) * kTileW * sizeof(typename Fixed<T>::H);
  gaussian_fixed_kernel<T><<<grid_blocks(tiles, 65535LL * 64), kThreads, smem, as_stream(stream)>>>(
      src, dst, g, t, border, cval, tiles_x, tiles_y);
  IMKERN_CUDA_CHECK_LAUNCH();
}
}  // namespace

void gaussian_u8_cuda(const uint8_t* src, const ImageDesc& s, uint8_t* dst, const ImageDesc& d, const int32_t* ky,
                      int kh, const int32_t* kx, int kw, Border border, int cval, void* stream) {
  launch_fixed<uint8_t>(src, s, dst, d, ky, kh, kx, kw, border, cval, kMaxGaussU8Taps, stream);
}

void gaussian_u16_cuda(const uint16_t* src, const ImageDesc& s, uint16_t* dst, const ImageDesc& d, const int32_t* ky,
                       int kh, const int32_t* kx, int kw, Border border, int cval, void* stream) {
  launch_fixed<uint16_t>(src, s, dst, d, ky, kh, kx, kw, border, cval, kMaxGaussU16Taps, stream);
}

}  // namespace cuda
}  // namespace imkern
