// A C++ program built against the installed package.
#include <insitu.hpp>

#include <iostream>

int main() {
  insitu::Client c("inproc");
  std::vector<double> v{1.5, 2.5, 3.5};
  std::vector<std::size_t> dims{3};
  c.put_tensor<double>("v", v, dims);
  if (c.get_tensor("v").values<double>() != v) return 1;
  try {
    c.get_tensor("missing");
    return 1;
  } catch (const insitu::Error &e) {
    if (e.status() != 2) return 1;
  }
  std::cout << "consumer C++ OK\n";
  return 0;
}
