//! Builds the C++ side of the cxx bridge (src/cpp.rs) into libinsitu. cxx-build also
//! links the generated headers under <target>/cxxbridge/, where include/insitu.hpp and
//! CMake find them.
fn main() {
    cxx_build::bridge("src/cpp.rs")
        .std("c++17")
        .compile("insitu-cxx");
    println!("cargo:rerun-if-changed=src/cpp.rs");
    println!("cargo:rerun-if-changed=include/insitu.hpp");
}
