{
  # libfairsem is compiled from the C sources the package carries (csrc/;
  # scripts/libfairsem.js lists them) into a static archive of
  # position-independent objects, and linked into the addon with its symbols
  # hidden (--exclude-libs): the .node file depends on no library path at run
  # time, exports only its Node-API entry points, and cannot pick up another
  # libfairsem loaded in the same process.  scripts/build.js runs node-gyp.
  "target_defaults": {
    "include_dirs": ["<!@(node scripts/libfairsem.js include)"],
    "cflags_c": ["-std=gnu11", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wextra",
                 "-Wno-unused-parameter"]
  },
  "targets": [
    {
      "target_name": "libfairsem",
      "type": "static_library",
      "sources": ["<!@(node scripts/libfairsem.js sources)"]
    },
    {
      "target_name": "fairsem",
      "dependencies": ["libfairsem"],
      "sources": ["src/addon.c"],
      "libraries": ["-lpthread"],
      "ldflags": ["-Wl,--exclude-libs,ALL"]
    }
  ]
}
