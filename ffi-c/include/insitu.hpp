// The C++ API of insitu: insitu::Client with RAII, exceptions carrying the status and the
// message, std::span / std::vector in and out. Built on the cxx bridge in ffi-c/src/cpp.rs
// (its generated header lives under <cargo target>/cxxbridge/).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "insitu-ffi/src/cpp.rs.h"
#include "insitu.h"

namespace insitu {

/// Element types: insitu_dtype's values from insitu.h (generated from the Rust enum).
enum class DType : std::uint8_t {
  Float = INSITU_DTYPE_FLOAT, Double = INSITU_DTYPE_DOUBLE, Int8 = INSITU_DTYPE_INT8,
  Int16 = INSITU_DTYPE_INT16, Int32 = INSITU_DTYPE_INT32, Int64 = INSITU_DTYPE_INT64,
  Uint8 = INSITU_DTYPE_UINT8, Uint16 = INSITU_DTYPE_UINT16, Bool = INSITU_DTYPE_BOOL,
  Float16 = INSITU_DTYPE_FLOAT16, Bfloat16 = INSITU_DTYPE_BFLOAT16,
  Uint32 = INSITU_DTYPE_UINT32, Uint64 = INSITU_DTYPE_UINT64,
};

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float; }
template <> constexpr DType dtype_of<double>() { return DType::Double; }
template <> constexpr DType dtype_of<std::int8_t>() { return DType::Int8; }
template <> constexpr DType dtype_of<std::int16_t>() { return DType::Int16; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::Int32; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::Int64; }
template <> constexpr DType dtype_of<std::uint8_t>() { return DType::Uint8; }
template <> constexpr DType dtype_of<std::uint16_t>() { return DType::Uint16; }
template <> constexpr DType dtype_of<std::uint32_t>() { return DType::Uint32; }
template <> constexpr DType dtype_of<std::uint64_t>() { return DType::Uint64; }

/// A failed call: the status (insitu_status values) and insitu's message.
class Error : public std::runtime_error {
 public:
  Error(int status, const std::string &message) : std::runtime_error(message), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

/// A tensor owned by the caller: dtype, dims and row-major bytes.
struct Tensor {
  DType dtype = DType::Float;
  std::vector<std::size_t> dims;
  std::vector<std::uint8_t> data;

  template <class T> static Tensor from(std::span<const T> values, std::vector<std::size_t> dims) {
    Tensor t{dtype_of<T>(), std::move(dims), {}};
    t.data.resize(values.size_bytes());
    std::memcpy(t.data.data(), values.data(), values.size_bytes());
    return t;
  }

  /// The elements as `T` (which must be the tensor's type).
  template <class T> std::vector<T> values() const {
    if (dtype_of<T>() != dtype) throw Error(1, "tensor holds another dtype");
    std::vector<T> out(data.size() / sizeof(T));
    std::memcpy(out.data(), data.data(), out.size() * sizeof(T));
    return out;
  }
};

/// A client of insitu: "inproc", "unix:///path", "tcp://host:port" or "host:port".
class Client {
 public:
  explicit Client(std::string_view address) : inner_(detail::new_client()) {
    check(inner_->connect(str(address)));
  }

  template <class T>
  void put_tensor(std::string_view name, std::span<const T> values, std::span<const std::size_t> dims) {
    check(inner_->put_tensor(str(name), static_cast<std::uint8_t>(dtype_of<T>()), slice(dims),
                             bytes(values.data(), values.size_bytes())));
  }

  void put_tensor(std::string_view name, const Tensor &t) {
    check(inner_->put_tensor(str(name), static_cast<std::uint8_t>(t.dtype), slice(std::span(t.dims)),
                             bytes(t.data.data(), t.data.size())));
  }

  Tensor get_tensor(std::string_view name) {
    std::uint8_t dtype = 0;
    rust::Vec<std::size_t> dims;
    rust::Vec<std::uint8_t> data;
    check(inner_->get_tensor(str(name), dtype, dims, data));
    Tensor t{static_cast<DType>(dtype), {dims.begin(), dims.end()}, {data.begin(), data.end()}};
    return t;
  }

  void delete_tensor(std::string_view name) { check(inner_->delete_tensor(str(name))); }

  bool tensor_exists(std::string_view name) {
    bool out = false;
    check(inner_->tensor_exists(str(name), out));
    return out;
  }

  void set_model_from_file(std::string_view name, std::string_view path, std::string_view device = "CPU",
                           std::size_t batch_size = 0) {
    check(inner_->set_model_from_file(str(name), str(path), str(device), batch_size));
  }

  /// Run a model on `inputs` and return its outputs in one round trip (nothing stored).
  std::vector<Tensor> infer(std::string_view model, const std::vector<Tensor> &inputs) {
    std::vector<std::uint8_t> dtypes, data;
    std::vector<std::size_t> ranks, dims;
    for (const auto &t : inputs) {
      dtypes.push_back(static_cast<std::uint8_t>(t.dtype));
      ranks.push_back(t.dims.size());
      dims.insert(dims.end(), t.dims.begin(), t.dims.end());
      data.insert(data.end(), t.data.begin(), t.data.end());
    }
    rust::Vec<std::uint8_t> out_dtypes, out_data;
    rust::Vec<std::size_t> out_ranks, out_dims;
    check(inner_->infer(str(model), bytes(dtypes.data(), dtypes.size()), slice(std::span(ranks)),
                        slice(std::span(dims)), bytes(data.data(), data.size()), out_dtypes, out_ranks,
                        out_dims, out_data));
    std::vector<Tensor> outs;
    std::size_t d = 0, b = 0;
    for (std::size_t i = 0; i < out_dtypes.size(); i++) {
      Tensor t;
      t.dtype = static_cast<DType>(out_dtypes[i]);
      t.dims.assign(out_dims.begin() + d, out_dims.begin() + d + out_ranks[i]);
      d += out_ranks[i];
      std::size_t n = 1;
      for (auto x : t.dims) n *= x;
      n *= element_size(t.dtype);
      t.data.assign(out_data.begin() + b, out_data.begin() + b + n);
      b += n;
      outs.push_back(std::move(t));
    }
    return outs;
  }

 private:
  rust::Box<detail::RClient> inner_;

  static void check(const detail::Outcome &o) {
    if (o.status != 0) throw Error(o.status, std::string(o.message));
  }
  static rust::Str str(std::string_view s) { return rust::Str(s.data(), s.size()); }
  static rust::Slice<const std::uint8_t> bytes(const void *p, std::size_t n) {
    return rust::Slice<const std::uint8_t>(static_cast<const std::uint8_t *>(p), n);
  }
  static rust::Slice<const std::size_t> slice(std::span<const std::size_t> s) {
    return rust::Slice<const std::size_t>(s.data(), s.size());
  }
  static std::size_t element_size(DType t) {
    switch (t) {
      case DType::Int8: case DType::Uint8: case DType::Bool: return 1;
      case DType::Int16: case DType::Uint16: case DType::Float16: case DType::Bfloat16: return 2;
      case DType::Float: case DType::Int32: case DType::Uint32: return 4;
      default: return 8;
    }
  }
};

}  // namespace insitu
