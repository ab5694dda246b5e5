# insitu's version, read from the workspace's Cargo.toml (its one definition):
# sets INSITU_VERSION for project(... VERSION ${INSITU_VERSION}).
file(STRINGS "${CMAKE_CURRENT_LIST_DIR}/../../Cargo.toml" _insitu_version_line
     REGEX "^version = \"[0-9]+\\.[0-9]+\\.[0-9]+\"" LIMIT_COUNT 1)
string(REGEX MATCH "[0-9]+\\.[0-9]+\\.[0-9]+" INSITU_VERSION "${_insitu_version_line}")
if(NOT INSITU_VERSION)
  message(FATAL_ERROR "no version = \"x.y.z\" line in ${CMAKE_CURRENT_LIST_DIR}/../../Cargo.toml")
endif()
