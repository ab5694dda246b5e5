//! Builds the C++ side of the cxx bridge (src/cpp.rs) into libinsitu. cxx-build also
//! links the generated headers under <target>/cxxbridge/, where include/insitu.hpp and
//! CMake find them.
//!
//! Lua (for EVAL scripts) is built here too and bundled into libinsitu.a: mlua links the
//! copy it builds without bundling it (`static:-bundle`), which leaves a static
//! libinsitu.a with undefined `lua_*` symbols for the C, C++ and Fortran programs that
//! link it. The shared library is unaffected (the linker takes each symbol once).
fn main() {
    let lua = lua_src::Build::new().build(lua_src::Version::Lua51);
    println!("cargo:rustc-link-search=native={}", lua.lib_dir().display());
    for lib in lua.libs() {
        println!("cargo:rustc-link-lib=static:+bundle={lib}");
    }
    cxx_build::bridge("src/cpp.rs")
        .std("c++17")
        .compile("insitu-cxx");
    println!("cargo:rerun-if-changed=src/cpp.rs");
    println!("cargo:rerun-if-changed=include/insitu.hpp");
}
