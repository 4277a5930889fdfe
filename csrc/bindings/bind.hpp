// The binding helpers every family's bindings use (csrc/bindings/<family>.cpp), so that a CPU or
// a CUDA binding is a line or two and the GIL is released by the helper, not by hand:
//
//   def(m, "box", [](Arr src, Arr dst, int kh, ...) { ...asserts...; IMKERN_CALL(box, ...); });
//   def_cuda(m, "cuda_box", &imkern::cuda::box_cuda);
//
// * Arguments arrive as plain C++ values: NumPy arrays as `Arr` (pointer, dtype, shape, strides,
//   flags: read by the caster below while the GIL is held), taps and small tables as `HostVec`
//   (a copy), descriptors and enums as the shared C++ types (csrc/bindings/types.cpp), device
//   pointers and streams as integers. The body then runs with the GIL released: it never
//   touches a Python object (pybind11 #4748, #2528). Return values (numbers) are converted
//   after the GIL is taken back.
// * def_cuda binds a CUDA launcher directly: its pointer parameters (device arrays, the
//   stream) come from Python as integers, everything else through pybind11's casters.
// * User-facing validation happens in Python; the checks here only assert the kernels'
//   assumptions (TypeError / ValueError for a caller that reaches _core directly, never a crash).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "imkern/common.hpp"
#include "imkern/dispatch.hpp"

namespace imkern_py {
namespace py = pybind11;
using imkern::DType;
using imkern::ImageDesc;

// An array's shape or strides: up to kInline extents in place, more on the heap. The caster
// below fills two of these for every array argument of every call; as std::vector they were
// four to six heap allocations per array, a fifth of a small image's binding call.
class Dims {
 public:
  static constexpr int kInline = 8;
  void assign(const ssize_t* p, int n) {
    n_ = n;
    if (n > kInline) {
      heap_.assign(p, p + n);
    } else {
      for (int i = 0; i < n; ++i) in_[i] = static_cast<int64_t>(p[i]);
    }
  }
  size_t size() const { return static_cast<size_t>(n_); }
  const int64_t* begin() const { return n_ > kInline ? heap_.data() : in_; }
  const int64_t* end() const { return begin() + n_; }
  int64_t operator[](size_t i) const { return begin()[i]; }
  friend bool operator==(const Dims& a, const Dims& b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }
  friend bool operator!=(const Dims& a, const Dims& b) { return !(a == b); }

 private:
  int n_ = 0;
  int64_t in_[kInline] = {};
  std::vector<int64_t> heap_;
};

// A NumPy array (or None) as the CPU kernels see it: the interface of py::array that the
// bindings use, without the Python object.
struct Arr {
  bool none = true;
  void* ptr = nullptr;
  Dims shp, str;  // shape; strides in bytes
  int64_t items = 0;
  int item = 0;
  char knd = 0;                   // NumPy's dtype kind: 'f', 'u', 'i', ...
  bool native = true;             // native byte order
  bool wr = false, cc = false;    // writeable, C-contiguous
  std::string other_name;         // str(dtype) of a non-numeric dtype (numeric names: dname())

  bool is_none() const { return none; }
  const void* data() const { return ptr; }
  int ndim() const { return static_cast<int>(shp.size()); }
  int64_t shape(int i) const { return shp[static_cast<size_t>(i)]; }
  int64_t strides(int i) const { return str[static_cast<size_t>(i)]; }
  int64_t size() const { return items; }
  int itemsize() const { return item; }
  char kind() const { return knd; }
  bool writeable() const { return wr; }
  bool c_contiguous() const { return cc; }
  std::string dname() const;  // the dtype's name, for messages
};

// A host copy of a small array (filter taps, footprints, per-channel vectors), converted to T.
template <typename T>
struct HostVec {
  std::vector<T> v;
  std::vector<int64_t> shp;
  const T* data() const { return v.data(); }
  int64_t size() const { return static_cast<int64_t>(v.size()); }
  int ndim() const { return static_cast<int>(shp.size()); }
  int64_t shape(int i) const { return shp[static_cast<size_t>(i)]; }
};
using Taps = HostVec<double>;

// NumPy's name of a bool/int/uint/float/complex dtype ("float32", and ">f4" style names for
// the non-native byte order as str(dtype) gives them); "" for the other kinds.
inline std::string numeric_dtype_name(char kind, int itemsize, bool native) {
  const char* base = nullptr;
  switch (kind) {
    case 'b': return "bool";
    case 'i': base = "int"; break;
    case 'u': base = "uint"; break;
    case 'f': base = "float"; break;
    case 'c': base = "complex"; break;
    default: return "";
  }
  if (!native || itemsize <= 0) {
    if (itemsize <= 1) return std::string("|") + kind + std::to_string(itemsize);
    return std::string(PY_LITTLE_ENDIAN ? ">" : "<") + kind + std::to_string(itemsize);
  }
  return std::string(base) + std::to_string(8 * itemsize);
}

inline std::string Arr::dname() const {
  std::string n = numeric_dtype_name(knd, item, native);
  return n.empty() ? other_name : n;
}

}  // namespace imkern_py

namespace pybind11 {
namespace detail {

template <>
struct type_caster<imkern_py::Arr> {
  PYBIND11_TYPE_CASTER(imkern_py::Arr, const_name("numpy.ndarray | None"));
  bool load(handle src, bool) {
    value = imkern_py::Arr{};
    if (src.is_none()) return true;
    if (!isinstance<array>(src)) return false;
    auto a = reinterpret_borrow<array>(src);
    value.none = false;
    value.ptr = const_cast<void*>(a.data());
    const int nd = static_cast<int>(a.ndim());
    value.shp.assign(a.shape(), nd);
    value.str.assign(a.strides(), nd);
    value.items = static_cast<int64_t>(a.size());
    const dtype dt = a.dtype();
    value.item = static_cast<int>(dt.itemsize());
    value.knd = dt.kind();
    value.native = dt.byteorder() != (PY_LITTLE_ENDIAN ? '>' : '<');
    value.wr = a.writeable();
    value.cc = (a.flags() & array::c_style) != 0;
    // NumPy 2 forms str(dtype) in Python (~8 us a call): the numeric names are built in C++
    // (Arr::dname, only for a message), the others read here, while the GIL is held.
    const char k = value.knd;
    if (k != 'b' && k != 'i' && k != 'u' && k != 'f' && k != 'c') value.other_name = std::string(str(dt));
    return true;
  }
};

template <typename T>
struct type_caster<imkern_py::HostVec<T>> {
  PYBIND11_TYPE_CASTER(imkern_py::HostVec<T>, const_name("numpy.ndarray"));
  bool load(handle src, bool convert) {
    if (array_t<T, array::c_style>::check_(src)) {
      // already a C-contiguous array of T in native byte order (the taps and tables Python
      // builds): read in place, without ensure's conversion call
      auto a = reinterpret_borrow<array_t<T, array::c_style>>(src);
      value.v.assign(a.data(), a.data() + a.size());
      value.shp.assign(a.shape(), a.shape() + a.ndim());
      return true;
    }
    if (!convert && !isinstance<array>(src)) return false;
    auto a = array_t<T, array::c_style | array::forcecast>::ensure(src);
    if (!a) {
      PyErr_Clear();
      return false;
    }
    value.v.assign(a.data(), a.data() + a.size());
    value.shp.assign(a.shape(), a.shape() + a.ndim());
    return true;
  }
  // A result computed without the GIL, returned as a new NumPy array (the GIL is held here).
  static handle cast(const imkern_py::HostVec<T>& src, return_value_policy, handle) {
    array_t<T> a(std::vector<ssize_t>(src.shp.begin(), src.shp.end()));
    std::copy(src.v.begin(), src.v.end(), a.mutable_data());
    return a.release();
  }
};

}  // namespace detail
}  // namespace pybind11

namespace imkern_py {

// ---- registration ------------------------------------------------------------------------------
// The GIL is released around every binding's body (never around the argument conversion).
template <typename F, typename... Extra>
void def(py::module_& m, const char* name, F&& f, const Extra&... extra) {
  m.def(name, std::forward<F>(f), py::call_guard<py::gil_scoped_release>(), extra...);
}

// A CUDA launcher bound as it is: pointer parameters (device arrays, the stream) arrive as
// integers (0 is a null pointer), every other parameter through pybind11's casters.
template <typename T, typename = void>
struct CudaArg {
  using type = T;
  static T get(T v) { return v; }
};
template <typename T>
struct CudaArg<T*, void> {
  using type = uintptr_t;
  static T* get(uintptr_t v) { return reinterpret_cast<T*>(v); }
};
template <typename T>
struct CudaArg<const T&, void> {
  using type = const T&;
  static const T& get(const T& v) { return v; }
};
// Enums (DType, Border, ThreshKind, ...) by their integer code: the Python tables of codes are
// read from the exported enums (types.cpp); the launchers assert the values.
template <typename T>
struct CudaArg<T, std::enable_if_t<std::is_enum<T>::value>> {
  using type = std::underlying_type_t<T>;
  static T get(type v) { return static_cast<T>(v); }
};

template <typename R, typename... A>
void def_cuda(py::module_& m, const char* name, R (*f)(A...)) {
  def(m, name, [f](typename CudaArg<A>::type... a) -> R { return f(CudaArg<A>::get(a)...); });
}

// ---- asserts on arguments (no Python object touched: safe without the GIL) --------------------
inline imkern::Border border_of(int b) {
  if (b < 0 || b > 4) throw std::invalid_argument("border: unknown border code");
  return static_cast<imkern::Border>(b);
}

// ---- asserts on arrays (no Python object touched: safe without the GIL) -----------------------
inline std::string shape_str(const Arr& a) {
  std::string s = "(";
  for (int i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

inline void not_none(const Arr& a, const char* name) {
  if (a.is_none()) throw std::invalid_argument(std::string(name) + ": required");
}

// uint8, uint16, float32, float64 (the image dtypes on the CPU).
inline DType dtype_of(const Arr& a, const char* name) {
  not_none(a, name);
  if (a.native) {
    if (a.kind() == 'u' && a.itemsize() == 1) return DType::u8;
    if (a.kind() == 'u' && a.itemsize() == 2) return DType::u16;
    if (a.kind() == 'f' && a.itemsize() == 4) return DType::f32;
    if (a.kind() == 'f' && a.itemsize() == 8) return DType::f64;
  }
  throw py::type_error(std::string(name) + ": expected uint8, uint16, float32 or float64 (native byte order), got " +
                       a.dname());
}

// float32 / float64 only (the nn kernels on the CPU).
inline DType float_dtype(const Arr& a, const char* name) {
  not_none(a, name);
  if (a.native && a.kind() == 'f' && a.itemsize() == 4) return DType::f32;
  if (a.native && a.kind() == 'f' && a.itemsize() == 8) return DType::f64;
  throw py::type_error(std::string(name) + ": expected float32 or float64 (native byte order), got " + a.dname());
}

inline int64_t elem_stride(const Arr& a, int axis, const char* name) {
  const int64_t st = a.strides(axis), it = a.itemsize();
  if (st % it != 0)
    throw std::invalid_argument(std::string(name) + ": strides must be multiples of the item size");
  return st / it;
}

// (H, W), (H, W, C) or (N, H, W, C) with packed pixels (C contiguous, W stride C).
inline ImageDesc image_desc(const Arr& a, const char* name) {
  const int nd = a.ndim();
  if (nd < 2 || nd > 4) throw std::invalid_argument(std::string(name) + ": expected 2, 3 or 4 dimensions");
  ImageDesc d;
  const int o = nd == 4 ? 1 : 0;
  d.n = nd == 4 ? a.shape(0) : 1;
  d.h = a.shape(o);
  d.w = a.shape(o + 1);
  d.c = nd >= 3 ? a.shape(nd - 1) : 1;
  const int64_t sw = d.w > 1 ? elem_stride(a, o + 1, name) : d.c;
  const int64_t sc = (nd >= 3 && d.c > 1) ? elem_stride(a, nd - 1, name) : 1;
  if (sc != 1 || sw != d.c)
    throw std::invalid_argument(std::string(name) + ": pixels of a row must be packed (internal layout error)");
  d.row_stride = elem_stride(a, o, name);
  d.batch_stride = nd == 4 ? elem_stride(a, 0, name) : 0;
  return d;
}

inline void same_shape(const Arr& a, const Arr& b, const char* an, const char* bn) {
  if (a.shp != b.shp) throw std::invalid_argument(std::string(bn) + ": shape differs from " + an);
}

inline void* writable_data(const Arr& a, const char* name) {
  not_none(a, name);
  if (!a.writeable()) throw std::invalid_argument(std::string(name) + ": array is read-only");
  return a.ptr;
}

inline void check_contig(const Arr& a, const char* name) {
  if (!a.c_contiguous())
    throw std::invalid_argument(std::string(name) + ": must be C-contiguous (internal layout error)");
}

inline void expect_size(const Arr& a, int64_t n, const char* name) {
  if (a.size() != n)
    throw std::invalid_argument(std::string(name) + ": has " + std::to_string(a.size()) + " elements, expected " +
                                std::to_string(n));
}

// A C-contiguous input of dtype dt (the nn ops).
inline const void* in_ptr(const Arr& a, const char* name, DType dt) {
  if (float_dtype(a, name) != dt) throw py::type_error(std::string(name) + ": dtype differs from the input");
  check_contig(a, name);
  return a.data();
}

// A C-contiguous, writeable output of dtype dt.
inline void* out_ptr(const Arr& a, const char* name, DType dt) {
  in_ptr(a, name, dt);
  return writable_data(a, name);
}

// An optional (None -> null) C-contiguous float vector of dtype dt and n elements.
inline const void* opt_ptr(const Arr& a, DType dt, int64_t n, const char* name) {
  if (a.is_none()) return nullptr;
  expect_size(a, n, name);
  return in_ptr(a, name, dt);
}

inline const int64_t* index_ptr(const Arr& a, const char* name) {
  not_none(a, name);
  if (a.kind() != 'i' || a.itemsize() != 8 || !a.native) throw py::type_error(std::string(name) + ": expected int64");
  check_contig(a, name);
  return static_cast<const int64_t*>(a.data());
}

}  // namespace imkern_py
