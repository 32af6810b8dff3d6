/*
 * error.c - text and names for every value the API returns.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

const char *fairsem_strerror(int err)
{
    if (err == INT_MIN)
        return "unknown error";
    switch (err) {
#define FAIRSEM_ERRNO_TEXT(name, value, text) \
    case value: return text;
        FAIRSEM_ERRNO_MAP(FAIRSEM_ERRNO_TEXT)
#undef FAIRSEM_ERRNO_TEXT
    case 0: return "success";
    default: return err < 0 ? strerror(-err) : "unknown error";
    }
}

const char *fairsem_err_name(int err)
{
    if (err == INT_MIN)
        return "UNKNOWN";
    switch (err) {
#define FAIRSEM_ERRNO_NAME(name, value, text) \
    case value: return "FAIRSEM_" #name;
        FAIRSEM_ERRNO_MAP(FAIRSEM_ERRNO_NAME)
#undef FAIRSEM_ERRNO_NAME
    case 0: return "OK";
    default: {
        const char *n = err < 0 ? strerrorname_np(-err) : NULL;
        return n ? n : "UNKNOWN";
    }
    }
}

#define FS_STR2(x) #x
#define FS_STR(x) FS_STR2(x)
const char *fairsem_version(void)
{
    return FS_STR(FAIRSEM_VERSION_MAJOR) "." FS_STR(FAIRSEM_VERSION_MINOR) "." FS_STR(FAIRSEM_VERSION_PATCH);
}
