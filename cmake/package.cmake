# Binary packages of what `cmake --install` installs: the library (shared
# and static), fairsem.h, fairsem.pc, the CMake package, the fairsem command
# and its man page.  From the repository root:
#
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=Release \
#     -DFAIRSEM_BUILD_TESTS=OFF -DFAIRSEM_BUILD_EXAMPLES=OFF
#   cmake --build build-deb -j2 && (cd build-deb && cpack -G DEB)
#
# The package installs under the prefix the build was configured with (give
# /usr, so GNUInstallDirs picks Debian's multiarch libdir).  Its dependencies
# come from dpkg-shlibdeps (dpkg-dev, and `file`): libc6, and libmicrohttpd12
# for the command's exporter (fairsem serve); liburcu is used header-only and
# nothing of it is linked.
set(CPACK_PACKAGE_NAME fairsem)
set(CPACK_PACKAGE_VENDOR fairsem)
set(CPACK_PACKAGE_CONTACT "fairsem maintainers <fairsem@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "fair-share semaphore shared by processes through POSIX shared memory")
set(CPACK_PACKAGE_DESCRIPTION
  "A fixed pool of slots in POSIX shared memory, divided fairly among the tenants that want slots, lock-free and crash-safe, with no daemon. Library, header, pkg-config and CMake files, and the fairsem command.")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The command links the library this package ships; shlibdeps resolves it
# through the shlibs file the package declares for it.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY "=")
include(CPack)
