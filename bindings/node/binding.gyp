{
  # Links libfairsem statically: CMake compiles libfairsem.a from the same
  # position-independent objects (-fPIC) as libfairsem.so, so it can go into
  # a shared object, and the addon then depends on no library path at run
  # time.  scripts/libfairsem.js finds the build directory
  # ($FAIRSEM_BUILD_DIR, relative to the repository root when relative;
  # default <repo>/build-node) and checks it.
  "targets": [
    {
      "target_name": "fairsem",
      "sources": ["src/addon.c"],
      "include_dirs": ["<!(node scripts/libfairsem.js include)"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "libraries": ["<!(node scripts/libfairsem.js archive)", "-lpthread"],
      "ldflags": ["-Wl,--exclude-libs,ALL"]
    }
  ]
}
