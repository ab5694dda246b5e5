// Example 02: C++ put/get and one-round-trip inference with insitu::Client.
//   02_cpp_put_get_infer ADDRESS [MODEL.onnx]
#include "insitu.hpp"

#include <cmath>
#include <iostream>

int main(int argc, char **argv) {
  std::string address = argc > 1 ? argv[1] : "inproc";
  insitu::Client c(address);

  std::vector<float> field(6);
  for (int i = 0; i < 6; i++) field[i] = 0.5f * i;
  std::vector<std::size_t> dims{2, 3};
  c.put_tensor<float>("field", field, dims);
  insitu::Tensor back = c.get_tensor("field");
  if (back.dims != dims || back.values<float>() != field) {
    std::cerr << "round trip differs\n";
    return 1;
  }
  try {
    c.get_tensor("missing");
    return 1;
  } catch (const insitu::Error &e) {
    std::cout << "as expected: status " << e.status() << ": " << e.what() << "\n";
    if (e.status() != 2) return 1;
  }
  if (argc > 2) {
    c.set_model_from_file("mlp", argv[2]);
    std::vector<float> x(16);
    for (int i = 0; i < 16; i++) x[i] = 0.1f * i;
    auto outs = c.infer("mlp", {insitu::Tensor::from<float>(x, {1, 16})});
    if (outs.size() != 1 || outs[0].dims != std::vector<std::size_t>{1, 4}) return 1;
    for (float y : outs[0].values<float>())
      if (!std::isfinite(y)) return 1;
    std::cout << "infer: 1x16 -> 1x4 OK\n";
  }
  std::cout << "example 02: C++ put/get/infer OK at " << address << "\n";
  return 0;
}
