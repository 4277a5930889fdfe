// imkern from C++: a Gaussian blur of a float32 RGB image and a conv2d forward pass on plain
// buffers, each checked against a plain loop written here. Exit status 0 when both match.
//
// The API (csrc/include/imkern/*.hpp) takes raw pointers, shapes and strides (in elements);
// IMKERN_CALL(op, ...) runs the op's variant for the best instruction set the CPU has (the
// IMKERN_CPU_ISA environment variable caps it: baseline, avx2, avx512).
#include <imkern/filters.hpp>
#include <imkern/nn.hpp>
#include <imkern/parallel.hpp>
#include <imkern/version.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

namespace {

// Normalized Gaussian taps as cv2.getGaussianKernel(ksize, sigma).
std::vector<double> gaussian_taps(int ksize, double sigma) {
  std::vector<double> k(ksize);
  double sum = 0;
  for (int i = 0; i < ksize; ++i) {
    const double x = i - (ksize - 1) / 2.0;
    k[i] = std::exp(-x * x / (2 * sigma * sigma));
    sum += k[i];
  }
  for (double& v : k) v /= sum;
  return k;
}

bool check(const char* what, double max_err, double tol) {
  std::printf("%-28s max |imkern - loop| = %.3g (tolerance %.1g): %s\n", what, max_err, tol,
              max_err <= tol ? "ok" : "MISMATCH");
  return max_err <= tol;
}

bool blur_example(std::mt19937& rng) {
  // One 37 x 53 RGB image, rows padded to 180 floats (a stride that is not w * c).
  const int64_t h = 37, w = 53, c = 3, row_stride = 180;
  std::vector<float> src(h * row_stride), dst(h * row_stride, -1.f);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (float& v : src) v = u(rng);
  imkern::ImageDesc desc;
  desc.n = 1, desc.h = h, desc.w = w, desc.c = c, desc.batch_stride = h * row_stride, desc.row_stride = row_stride;

  const int ksize = 7;
  const double sigma = 1.5;
  const std::vector<double> k = gaussian_taps(ksize, sigma);
  const int anchor = ksize / 2;
  const auto border = imkern::Border::reflect101;  // cv2.BORDER_DEFAULT
  IMKERN_CALL(sep_filter, imkern::DType::f32, src.data(), desc, imkern::DType::f32, dst.data(), desc,
              k.data(), ksize, anchor, k.data(), ksize, anchor, border, 0.0);

  double max_err = 0;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t ch = 0; ch < c; ++ch) {
        double acc = 0;
        for (int i = 0; i < ksize; ++i)
          for (int j = 0; j < ksize; ++j) {
            const int64_t sy = imkern::border_index(y + i - anchor, h, border);
            const int64_t sx = imkern::border_index(x + j - anchor, w, border);
            acc += k[i] * k[j] * src[sy * row_stride + sx * c + ch];
          }
        max_err = std::fmax(max_err, std::fabs(acc - dst[y * row_stride + x * c + ch]));
      }
  return check("gaussian blur 7x7, sigma 1.5", max_err, 1e-5);
}

bool conv2d_example(std::mt19937& rng) {
  imkern::Conv2dShape s;
  s.n = 2, s.c = 16, s.h = 19, s.w = 23;
  s.k = 24, s.r = 3, s.s = 3;
  s.pt = s.pb = s.pl = s.pr = 1;
  s.oh = (s.h + s.pt + s.pb - s.dh * (s.r - 1) - 1) / s.sh + 1;
  s.ow = (s.w + s.pl + s.pr - s.dw * (s.s - 1) - 1) / s.sw + 1;
  std::vector<float> x(s.n * s.c * s.h * s.w), wt(s.k * s.c * s.r * s.s), bias(s.k);
  std::vector<float> out(s.n * s.k * s.oh * s.ow, -1.f);
  std::normal_distribution<float> g(0.f, 1.f);
  for (float& v : x) v = g(rng);
  for (float& v : wt) v = g(rng) * 0.1f;
  for (float& v : bias) v = g(rng);
  IMKERN_CALL(conv2d_forward, imkern::DType::f32, x.data(), wt.data(), bias.data(), out.data(), s,
              /*relu=*/false, imkern::ConvWinograd::auto_select);

  double max_err = 0;
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t k = 0; k < s.k; ++k)
      for (int64_t oy = 0; oy < s.oh; ++oy)
        for (int64_t ox = 0; ox < s.ow; ++ox) {
          double acc = bias[k];
          for (int64_t ci = 0; ci < s.c; ++ci)
            for (int64_t r = 0; r < s.r; ++r)
              for (int64_t q = 0; q < s.s; ++q) {
                const int64_t iy = oy * s.sh - s.pt + r * s.dh, ix = ox * s.sw - s.pl + q * s.dw;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                acc += double(wt[((k * s.c + ci) * s.r + r) * s.s + q]) * x[((n * s.c + ci) * s.h + iy) * s.w + ix];
              }
          max_err = std::fmax(max_err, std::fabs(acc - out[((n * s.k + k) * s.oh + oy) * s.ow + ox]));
        }
  // float32 sums of C * R * S = 144 products of magnitude ~0.1 (Winograd adds a few ulps).
  return check("conv2d 16->24, 3x3, pad 1", max_err, 1e-4);
}

}  // namespace

int main() {
  std::printf("imkern %s, CPU kernels: %s, threads: %d\n", IMKERN_VERSION_STRING,
              imkern::isa_name(imkern::isa_active()), imkern::get_num_threads());
  std::mt19937 rng(20261204);
  const bool ok_blur = blur_example(rng);
  const bool ok_conv = conv2d_example(rng);
  return ok_blur && ok_conv ? 0 : 1;
}
