/*
 * addon.c - the Node-API face of libfairsem.
 *
 * Thin: lib/index.js gives it its idiomatic shape.  What lives here is what
 * must be native:
 *
 *  - waiting: fairsem_request_start() queues a request and returns at once;
 *    the handle's fairsem_event_fd() is watched with uv_poll on the Node
 *    event loop, and when it is readable fairsem_events() collects the
 *    completed requests, whose outcome (fairsem_request_result) is handed
 *    to one JS dispatch function.  No thread-pool thread is used, whatever
 *    the number of waiters; the library's one waker thread per handle does
 *    the waiting.
 *  - memory safety: a tenant handle is freed here with fairsem_tenant_free()
 *    once its registration has ended and it holds nothing (at unregister, or
 *    when the last slot comes back), or by fairsem_close().  Every C pointer
 *    handed to JS sits in a box that knows whether the pointer is still
 *    valid, so no JS call can reach freed memory, whatever order JS calls
 *    things in.
 *
 * Every box is type-tagged, so a JS caller cannot pass one kind for another.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fairsem.h"

#define EVENTS_BATCH 64

typedef struct sem_box sem_box;
typedef struct tenant_box tenant_box;
typedef struct req_box req_box;

struct sem_box {
    fairsem_t *sem; /* NULL once closed */
    napi_env env;
    uv_poll_t *poll;   /* NULL until the first request waits */
    napi_ref dispatch; /* JS function(ids, codes, tags); strong while waiting */
    napi_async_context actx;
    uint32_t waiting;    /* requests queued, not yet completed nor freed */
    tenant_box *tenants; /* live tenant boxes (list) */
    req_box *reqs;       /* live request boxes (list) */
    bool cleanup_hook;
};

struct tenant_box {
    fairsem_tenant_t *t; /* NULL once the C library may have freed it */
    sem_box *owner;      /* NULL once the semaphore is gone */
    uint32_t busy;       /* slots held + requests not yet freed, through it */
    bool unregistered;
    tenant_box *prev, *next;
};

struct req_box {
    fairsem_request_t *req; /* NULL once freed */
    tenant_box *tenant;
    sem_box *owner;
    double id;
    bool queued; /* counted in owner->waiting */
    req_box *prev, *next;
};

static const napi_type_tag SEM_TAG = {0x6661697273656d31ull, 0x73656d2d626f7831ull};
static const napi_type_tag TENANT_TAG = {0x6661697273656d31ull, 0x74656e616e743031ull};
static const napi_type_tag REQ_TAG = {0x6661697273656d31ull, 0x7265717565737431ull};

/* ------------------------------------------------------------- errors */

/* Stable JS codes for the library's own errors; errno values keep their
 * usual names (ETIMEDOUT, EEXIST, ...), as Node's own errors do. */
static const char *js_code(int err)
{
    switch (err) {
    case FAIRSEM_ENOTREG: return "FAIRSEM_NOT_REGISTERED";
    case FAIRSEM_ETENANTS: return "FAIRSEM_TOO_MANY_TENANTS";
    case FAIRSEM_EWAITERS: return "FAIRSEM_QUEUE_FULL";
    case FAIRSEM_EPROCS: return "FAIRSEM_TOO_MANY_PROCESSES";
    case FAIRSEM_EMAGIC: return "FAIRSEM_BAD_MAGIC";
    case FAIRSEM_EVERSION: return "FAIRSEM_VERSION_MISMATCH";
    case FAIRSEM_ECORRUPT: return "FAIRSEM_CORRUPT";
    case FAIRSEM_EUNLINKED: return "FAIRSEM_UNLINKED";
    case FAIRSEM_ERULE: return "FAIRSEM_RULE_MISMATCH";
    case FAIRSEM_ESLOT: return "FAIRSEM_BAD_SLOT";
    case FAIRSEM_EINIT: return "FAIRSEM_INITIALIZING";
    case FAIRSEM_EATTACHED: return "FAIRSEM_IN_USE";
    default: return fairsem_err_name(err);
    }
}

static napi_value make_error(napi_env env, int err, const char *what)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s: %s (%s)", what, fairsem_strerror(err), fairsem_err_name(err));
    napi_value code, text, error, num, cname;
    napi_create_string_utf8(env, js_code(err), NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, code, text, &error);
    napi_create_int32(env, err, &num);
    napi_set_named_property(env, error, "errno", num);
    napi_create_string_utf8(env, fairsem_err_name(err), NAPI_AUTO_LENGTH, &cname);
    napi_set_named_property(env, error, "cName", cname);
    return error;
}

static napi_value throw_fs(napi_env env, int err, const char *what)
{
    napi_throw(env, make_error(env, err, what));
    return NULL;
}

static napi_value throw_type(napi_env env, const char *msg)
{
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return NULL;
}

/* ------------------------------------------------------------- helpers */

#define ARGS(n)                                                          \
    size_t argc = (n);                                                   \
    napi_value argv[(n) > 0 ? (n) : 1];                                  \
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) \
        return NULL;

static void *unbox(napi_env env, napi_value v, const napi_type_tag *tag)
{
    bool ok = false;
    napi_valuetype type;
    if (napi_typeof(env, v, &type) != napi_ok || type != napi_external ||
        napi_check_object_type_tag(env, v, tag, &ok) != napi_ok || !ok)
        return NULL;
    void *p = NULL;
    napi_get_value_external(env, v, &p);
    return p;
}

static sem_box *get_sem(napi_env env, napi_value v, bool open)
{
    sem_box *s = unbox(env, v, &SEM_TAG);
    if (!s) {
        throw_type(env, "expected a fairsem semaphore handle");
        return NULL;
    }
    if (open && !s->sem) {
        napi_value code, msg, err;
        napi_create_string_utf8(env, "FAIRSEM_CLOSED", NAPI_AUTO_LENGTH, &code);
        napi_create_string_utf8(env, "the semaphore is closed", NAPI_AUTO_LENGTH, &msg);
        napi_create_error(env, code, msg, &err);
        napi_throw(env, err);
        return NULL;
    }
    return s;
}

static tenant_box *get_tenant(napi_env env, napi_value v)
{
    tenant_box *t = unbox(env, v, &TENANT_TAG);
    if (!t)
        throw_type(env, "expected a fairsem tenant handle");
    return t;
}

static req_box *get_req(napi_env env, napi_value v)
{
    req_box *r = unbox(env, v, &REQ_TAG);
    if (!r)
        throw_type(env, "expected a fairsem request handle");
    return r;
}

static bool get_uint(napi_env env, napi_value v, uint32_t *out)
{
    napi_valuetype type;
    napi_typeof(env, v, &type);
    if (type == napi_undefined || type == napi_null) {
        *out = 0;
        return true;
    }
    double d;
    if (type != napi_number || napi_get_value_double(env, v, &d) != napi_ok || d < 0 || d > 4294967295.0 ||
        d != (double)(uint32_t)d) {
        throw_type(env, "expected a non-negative integer");
        return false;
    }
    *out = (uint32_t)d;
    return true;
}

/* A UTF-8 string argument, at most cap-1 bytes (longer: ENAMETOOLONG). */
static bool get_str(napi_env env, napi_value v, char *buf, size_t cap, const char *what)
{
    napi_valuetype type;
    napi_typeof(env, v, &type);
    if (type != napi_string) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s must be a string", what);
        throw_type(env, msg);
        return false;
    }
    size_t len = 0;
    napi_get_value_string_utf8(env, v, NULL, 0, &len);
    if (len >= cap) {
        throw_fs(env, -ENAMETOOLONG, what);
        return false;
    }
    napi_get_value_string_utf8(env, v, buf, cap, &len);
    if (strlen(buf) != len) { /* embedded NUL */
        throw_fs(env, -EINVAL, what);
        return false;
    }
    return true;
}

static napi_value u32(napi_env env, uint32_t v)
{
    napi_value r;
    napi_create_uint32(env, v, &r);
    return r;
}

static void set_u32(napi_env env, napi_value obj, const char *key, uint32_t v)
{
    napi_set_named_property(env, obj, key, u32(env, v));
}

static napi_value bigint_tag(napi_env env, fairsem_slot_t slot)
{
    napi_value r;
    napi_create_bigint_uint64(env, slot.tag, &r);
    return r;
}

static bool get_tag(napi_env env, napi_value v, fairsem_slot_t *slot)
{
    bool lossless;
    if (napi_get_value_bigint_uint64(env, v, &slot->tag, &lossless) != napi_ok || !lossless) {
        throw_type(env, "expected a slot tag (bigint)");
        return false;
    }
    return true;
}

static napi_value undefined(napi_env env)
{
    napi_value u;
    napi_get_undefined(env, &u);
    return u;
}

/* ------------------------------------------------------------- boxes */

/* Free the C handle of an unregistered, idle tenant (fairsem_close frees
 * it instead once the pool is closed). */
static void tenant_drop_handle(tenant_box *t)
{
    if (t->t && t->owner && t->owner->sem)
        fairsem_tenant_free(t->t);
    t->t = NULL;
}

static void tenant_busy_put(tenant_box *t)
{
    if (t->busy)
        t->busy--;
    /* An unregistration deferred while busy has ended now. */
    if (t->unregistered && t->busy == 0)
        tenant_drop_handle(t);
}

static void req_unlink(req_box *r)
{
    sem_box *s = r->owner;
    if (!s)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        s->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    r->owner = NULL;
}

static void tenant_unlink(tenant_box *t)
{
    sem_box *s = t->owner;
    if (!s)
        return;
    if (t->prev)
        t->prev->next = t->next;
    else
        s->tenants = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
    t->owner = NULL;
}

/* Keep the loop alive and the dispatcher reachable exactly while requests wait. */
static void set_waiting(sem_box *s, int delta)
{
    uint32_t before = s->waiting;
    s->waiting += delta;
    if (!s->poll)
        return;
    if (before == 0 && s->waiting > 0) {
        uv_ref((uv_handle_t *)s->poll);
        if (s->dispatch)
            napi_reference_ref(s->env, s->dispatch, NULL);
    } else if (before > 0 && s->waiting == 0) {
        uv_unref((uv_handle_t *)s->poll);
        if (s->dispatch)
            napi_reference_unref(s->env, s->dispatch, NULL);
    }
}

/* Free a request (cancelling it if still queued: a slot granted in a race
 * is given back by the library). */
static void req_release(req_box *r, bool slot_taken)
{
    if (!r->req)
        return;
    fairsem_request_free(r->req);
    r->req = NULL;
    if (r->queued && r->owner) {
        r->queued = false;
        set_waiting(r->owner, -1);
    }
    if (r->tenant) {
        if (slot_taken)
            r->tenant->busy++; /* the slot now held keeps the handle */
        tenant_busy_put(r->tenant);
    }
    req_unlink(r);
}

static void poll_closed(uv_handle_t *h) { free(h); }

/* Everything close does without calling into JS (also used at env teardown). */
static void sem_shutdown(sem_box *s, bool js_alive)
{
    if (!s->sem)
        return;
    while (s->reqs)
        req_release(s->reqs, false);
    for (tenant_box *t = s->tenants, *next; t; t = next) {
        next = t->next;
        t->t = NULL;
        t->prev = t->next = NULL;
        t->owner = NULL;
    }
    s->tenants = NULL;
    if (s->poll) {
        uv_poll_stop(s->poll);
        uv_close((uv_handle_t *)s->poll, poll_closed);
        s->poll = NULL;
    }
    fairsem_close(s->sem);
    s->sem = NULL;
    if (js_alive) {
        if (s->dispatch) {
            napi_delete_reference(s->env, s->dispatch);
            s->dispatch = NULL;
        }
        if (s->actx) {
            napi_async_destroy(s->env, s->actx);
            s->actx = NULL;
        }
    }
}

static void sem_cleanup_hook(void *arg)
{
    sem_box *s = arg;
    s->cleanup_hook = false;
    sem_shutdown(s, false);
}

static void sem_finalize(napi_env env, void *data, void *hint)
{
    (void)hint;
    sem_box *s = data;
    if (s->cleanup_hook)
        napi_remove_env_cleanup_hook(env, sem_cleanup_hook, s);
    sem_shutdown(s, true);
    if (s->dispatch)
        napi_delete_reference(env, s->dispatch);
    free(s);
}

static void tenant_finalize(napi_env env, void *data, void *hint)
{
    (void)env;
    (void)hint;
    tenant_box *t = data;
    if (t->owner)
        for (req_box *r = t->owner->reqs; r; r = r->next)
            if (r->tenant == t)
                r->tenant = NULL;
    /* Nothing in JS can reach it any more: end an idle registration.  (A
     * busy one is unreachable only if its slots were dropped unreleased;
     * fairsem_close gives those back.) */
    if (t->t && !t->unregistered && t->busy == 0 && t->owner && t->owner->sem)
        fairsem_tenant_free(t->t);
    tenant_unlink(t);
    free(t);
}

static void req_finalize(napi_env env, void *data, void *hint)
{
    (void)env;
    (void)hint;
    req_box *r = data;
    req_release(r, false);
    free(r);
}

static napi_value wrap(napi_env env, void *p, napi_finalize fin, const napi_type_tag *tag)
{
    napi_value v;
    if (napi_create_external(env, p, fin, NULL, &v) != napi_ok)
        return NULL;
    napi_type_tag_object(env, v, tag);
    return v;
}

static napi_value wrap_sem(napi_env env, fairsem_t *sem)
{
    sem_box *s = calloc(1, sizeof *s);
    if (!s) {
        fairsem_close(sem);
        return throw_fs(env, -ENOMEM, "fairsem");
    }
    s->sem = sem;
    s->env = env;
    napi_value v = wrap(env, s, sem_finalize, &SEM_TAG);
    if (!v) {
        fairsem_close(sem);
        free(s);
        return NULL;
    }
    if (napi_add_env_cleanup_hook(env, sem_cleanup_hook, s) == napi_ok)
        s->cleanup_hook = true;
    return v;
}

/* ------------------------------------------------------------- segments */

/* create(name, {maxSlots, minShare, maxTenants, maxWaiters, maxProcs, flags, mode}) */
static bool read_options(napi_env env, napi_value obj, fairsem_options_t *o)
{
    static const char *keys[] = {"maxSlots", "minShare", "maxTenants", "maxWaiters", "maxProcs", "flags", "mode"};
    unsigned *fields[] = {&o->max_slots, &o->min_share, &o->max_tenants, &o->max_waiters,
                          &o->max_procs, &o->flags,     &o->mode};
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        napi_value v;
        if (napi_get_named_property(env, obj, keys[i], &v) != napi_ok)
            return false;
        uint32_t u;
        if (!get_uint(env, v, &u))
            return false;
        *fields[i] = u;
    }
    return true;
}

/* A custom share rule, as lib/index.js evaluated it: the JS function's
 * share for every number of demanding tenants the library can ask about.
 * The library calls share_fn only inside fairsem_create()/fairsem_open(),
 * on this (the JS) thread, so the table need live only for that call. */
struct rule_table {
    char name[FAIRSEM_RULE_NAME_MAX + 1];
    uint32_t shares[FAIRSEM_MAX_TENANTS_LIMIT + 1];
};

static unsigned rule_table_share(unsigned max_slots, unsigned demanding, void *arg)
{
    (void)max_slots;
    const struct rule_table *rt = arg;
    return rt->shares[demanding <= FAIRSEM_MAX_TENANTS_LIMIT ? demanding : FAIRSEM_MAX_TENANTS_LIMIT];
}

/* rule: undefined/null (none), or {name, shares: number[MAX_TENANTS_LIMIT + 1]}. */
static bool read_rule(napi_env env, napi_value rule, struct rule_table *rt, fairsem_options_t *o)
{
    napi_valuetype type;
    if (napi_typeof(env, rule, &type) != napi_ok)
        return false;
    if (type == napi_undefined || type == napi_null)
        return true;
    napi_value name, shares;
    if (napi_get_named_property(env, rule, "name", &name) != napi_ok ||
        !get_str(env, name, rt->name, sizeof rt->name, "share rule name") ||
        napi_get_named_property(env, rule, "shares", &shares) != napi_ok)
        return false;
    for (uint32_t d = 0; d <= FAIRSEM_MAX_TENANTS_LIMIT; d++) {
        napi_value v;
        if (napi_get_element(env, shares, d, &v) != napi_ok || !get_uint(env, v, &rt->shares[d]))
            return false;
    }
    o->share_fn_name = rt->name;
    o->share_fn = rule_table_share;
    o->share_fn_arg = rt;
    return true;
}

static napi_value js_create(napi_env env, napi_callback_info info)
{
    ARGS(3);
    char name[FAIRSEM_NAME_MAX + 1];
    fairsem_options_t opts;
    struct rule_table *rt = malloc(sizeof *rt);
    if (!rt)
        return throw_fs(env, -ENOMEM, "fairsem_create");
    napi_value result = NULL;
    if (get_str(env, argv[0], name, sizeof name, "name") && read_options(env, argv[1], &opts) &&
        read_rule(env, argv[2], rt, &opts)) {
        fairsem_t *sem;
        int rc = fairsem_create(name, &opts, &sem);
        result = rc < 0 ? throw_fs(env, rc, "fairsem_create") : wrap_sem(env, sem);
    }
    free(rt);
    return result;
}

/* open(name, rule): with a rule, the pool must store that one. */
static napi_value js_open(napi_env env, napi_callback_info info)
{
    ARGS(2);
    char name[FAIRSEM_NAME_MAX + 1];
    fairsem_options_t local = {0};
    struct rule_table *rt = malloc(sizeof *rt);
    if (!rt)
        return throw_fs(env, -ENOMEM, "fairsem_open");
    napi_value result = NULL;
    if (get_str(env, argv[0], name, sizeof name, "name") && read_rule(env, argv[1], rt, &local)) {
        fairsem_t *sem;
        int rc = fairsem_open(name, &local, &sem);
        result = rc < 0 ? throw_fs(env, rc, "fairsem_open") : wrap_sem(env, sem);
    }
    free(rt);
    return result;
}

static napi_value js_open_anonymous(napi_env env, napi_callback_info info)
{
    ARGS(2);
    fairsem_options_t opts;
    struct rule_table *rt = malloc(sizeof *rt);
    if (!rt)
        return throw_fs(env, -ENOMEM, "fairsem_open_anonymous");
    napi_value result = NULL;
    if (read_options(env, argv[0], &opts) && read_rule(env, argv[1], rt, &opts)) {
        fairsem_t *sem;
        int rc = fairsem_open_anonymous(&opts, &sem);
        result = rc < 0 ? throw_fs(env, rc, "fairsem_open_anonymous") : wrap_sem(env, sem);
    }
    free(rt);
    return result;
}

static napi_value js_unlink(napi_env env, napi_callback_info info)
{
    ARGS(2);
    char name[FAIRSEM_NAME_MAX + 1];
    uint32_t flags;
    if (!get_str(env, argv[0], name, sizeof name, "name") || !get_uint(env, argv[1], &flags))
        return NULL;
    int rc = fairsem_unlink(name, flags);
    if (rc < 0)
        return throw_fs(env, rc, "fairsem_unlink");
    return undefined(env);
}

static napi_value js_close(napi_env env, napi_callback_info info)
{
    ARGS(1);
    sem_box *s = get_sem(env, argv[0], false);
    if (!s)
        return NULL;
    if (s->cleanup_hook) {
        napi_remove_env_cleanup_hook(env, sem_cleanup_hook, s);
        s->cleanup_hook = false;
    }
    sem_shutdown(s, true);
    return undefined(env);
}

static napi_value js_check_linked(napi_env env, napi_callback_info info)
{
    ARGS(1);
    sem_box *s = get_sem(env, argv[0], true);
    if (!s)
        return NULL;
    int rc = fairsem_check_linked(s->sem);
    napi_value r;
    napi_get_boolean(env, rc == 0, &r);
    return r;
}

static napi_value js_info(napi_env env, napi_callback_info info)
{
    ARGS(1);
    sem_box *s = get_sem(env, argv[0], true);
    if (!s)
        return NULL;
    fairsem_info_t in;
    int rc = fairsem_info(s->sem, &in);
    if (rc < 0)
        return throw_fs(env, rc, "fairsem_info");
    napi_value o, v;
    napi_create_object(env, &o);
    set_u32(env, o, "layoutVersion", in.layout_version);
    set_u32(env, o, "maxSlots", in.max_slots);
    set_u32(env, o, "minShare", in.min_share);
    set_u32(env, o, "maxTenants", in.max_tenants);
    set_u32(env, o, "maxWaiters", in.max_waiters);
    set_u32(env, o, "maxProcs", in.max_procs);
    set_u32(env, o, "flags", in.flags);
    napi_create_string_utf8(env, in.rule_name, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, o, "ruleName", v);
    napi_create_double(env, (double)in.size, &v);
    napi_set_named_property(env, o, "size", v);
    napi_create_double(env, (double)in.created_ns / 1e6, &v);
    napi_set_named_property(env, o, "createdMs", v);
    return o;
}

/* A 64-bit count as a JS number: exact up to 2^53 (ns: 104 days). */
static void set_u64(napi_env env, napi_value obj, const char *key, uint64_t v)
{
    napi_value r;
    napi_create_double(env, (double)v, &r);
    napi_set_named_property(env, obj, key, r);
}

static napi_value counters_object(napi_env env, const fairsem_counters_t *c)
{
    napi_value o, buckets;
    napi_create_object(env, &o);
    set_u64(env, o, "grantsImmediate", c->grants_immediate);
    set_u64(env, o, "grantsWaited", c->grants_waited);
    set_u64(env, o, "timeouts", c->timeouts);
    set_u64(env, o, "cancels", c->cancels);
    set_u64(env, o, "reclaimedSlots", c->reclaimed_slots);
    set_u64(env, o, "reclaimedRequests", c->reclaimed_requests);
    set_u64(env, o, "heldNs", c->held_ns);
    set_u64(env, o, "waitNs", c->wait_ns);
    napi_create_array_with_length(env, FAIRSEM_WAIT_BUCKETS, &buckets);
    for (uint32_t k = 0; k < FAIRSEM_WAIT_BUCKETS; k++) {
        napi_value n;
        napi_create_double(env, (double)c->wait_buckets[k], &n);
        napi_set_element(env, buckets, k, n);
    }
    napi_set_named_property(env, o, "waitBuckets", buckets);
    return o;
}

/* bsearch: the id `key` against a tenant's counters. */
static int id_vs_counters(const void *key, const void *elem)
{
    return strcmp(key, ((const fairsem_tenant_counters_t *)elem)->id);
}

/* qsort: tenants' counters by id. */
static int counters_by_id(const void *a, const void *b)
{
    return id_vs_counters(((const fairsem_tenant_counters_t *)a)->id, b);
}

/* Every tenant entry's counters, sorted by id (for bsearch), into *out
 * (the caller frees it); the pool's into *pool.  0 or a negative error. */
static int read_counters(fairsem_t *sem, fairsem_counters_t *pool, uint64_t *oldest,
                         fairsem_tenant_counters_t **out, size_t *count)
{
    size_t cap = 64;
    fairsem_tenant_counters_t *tc = NULL;
    for (;;) {
        fairsem_tenant_counters_t *grown = realloc(tc, cap * sizeof *tc);
        if (!grown) {
            free(tc);
            return -ENOMEM;
        }
        tc = grown;
        int rc = fairsem_counters(sem, pool, oldest, tc, cap, count);
        if (rc < 0) {
            free(tc);
            return rc;
        }
        if (*count <= cap)
            break;
        cap = *count;
    }
    qsort(tc, *count, sizeof *tc, counters_by_id);
    *out = tc;
    return 0;
}

static napi_value js_stats(napi_env env, napi_callback_info info)
{
    ARGS(1);
    sem_box *s = get_sem(env, argv[0], true);
    if (!s)
        return NULL;
    fairsem_stats_t st;
    size_t cap = 64, count = 0;
    fairsem_tenant_stats_t *ts = NULL;
    for (;;) {
        fairsem_tenant_stats_t *grown = realloc(ts, cap * sizeof *ts);
        if (!grown) {
            free(ts);
            return throw_fs(env, -ENOMEM, "fairsem_stats");
        }
        ts = grown;
        int rc = fairsem_stats(s->sem, &st, ts, cap, &count);
        if (rc < 0) {
            free(ts);
            return throw_fs(env, rc, "fairsem_stats");
        }
        if (count <= cap)
            break;
        cap = count;
    }
    fairsem_counters_t pool;
    uint64_t oldest;
    fairsem_tenant_counters_t *tc;
    size_t ncounted;
    int rc = read_counters(s->sem, &pool, &oldest, &tc, &ncounted);
    if (rc < 0) {
        free(ts);
        return throw_fs(env, rc, "fairsem_counters");
    }
    napi_value o, arr, v;
    napi_create_object(env, &o);
    set_u32(env, o, "maxSlots", st.max_slots);
    set_u32(env, o, "minShare", st.min_share);
    napi_get_boolean(env, (st.flags & FAIRSEM_WORK_CONSERVING) != 0, &v);
    napi_set_named_property(env, o, "workConserving", v);
    napi_get_boolean(env, (st.flags & FAIRSEM_STRICT_FIFO) != 0, &v);
    napi_set_named_property(env, o, "strictFifo", v);
    set_u32(env, o, "registeredTenants", st.registered_tenants);
    set_u32(env, o, "demandingTenants", st.demanding_tenants);
    set_u32(env, o, "slotsInUse", st.slots_in_use);
    set_u32(env, o, "slotsAvailable", st.slots_available);
    set_u32(env, o, "waiters", st.waiters);
    set_u32(env, o, "attachedProcs", st.attached_procs);
    napi_create_array_with_length(env, count, &arr);
    for (size_t i = 0; i < count; i++) {
        napi_value t;
        napi_create_object(env, &t);
        napi_create_string_utf8(env, ts[i].id, NAPI_AUTO_LENGTH, &v);
        napi_set_named_property(env, t, "id", v);
        set_u32(env, t, "held", ts[i].held);
        set_u32(env, t, "waiting", ts[i].waiting);
        set_u32(env, t, "share", ts[i].share);
        set_u32(env, t, "weight", ts[i].weight);
        set_u32(env, t, "registrations", ts[i].registrations);
        const fairsem_tenant_counters_t *mine = bsearch(ts[i].id, tc, ncounted, sizeof *tc, id_vs_counters);
        const fairsem_counters_t none = {0};
        napi_set_named_property(env, t, "counters", counters_object(env, mine ? &mine->counters : &none));
        set_u64(env, t, "oldestWaitNs", mine ? mine->oldest_wait_ns : 0);
        napi_set_element(env, arr, (uint32_t)i, t);
    }
    napi_set_named_property(env, o, "tenants", arr);
    napi_set_named_property(env, o, "counters", counters_object(env, &pool));
    set_u64(env, o, "oldestWaitNs", oldest);
    free(ts);
    free(tc);
    return o;
}

/* The wait histogram's upper bounds in ns; Infinity for the last bucket. */
static napi_value js_wait_bucket_bounds(napi_env env, napi_callback_info info)
{
    (void)info;
    napi_value arr;
    napi_create_array_with_length(env, FAIRSEM_WAIT_BUCKETS, &arr);
    for (uint32_t k = 0; k < FAIRSEM_WAIT_BUCKETS; k++) {
        uint64_t bound = fairsem_wait_bucket_bound_ns(k);
        napi_value n;
        napi_create_double(env, bound == UINT64_MAX ? 1.0 / 0.0 : (double)bound, &n);
        napi_set_element(env, arr, k, n);
    }
    return arr;
}

static napi_value js_reap(napi_env env, napi_callback_info info)
{
    ARGS(1);
    sem_box *s = get_sem(env, argv[0], true);
    if (!s)
        return NULL;
    fairsem_reap_report_t rep;
    int rc = fairsem_reap(s->sem, &rep);
    if (rc < 0)
        return throw_fs(env, rc, "fairsem_reap");
    napi_value o;
    napi_create_object(env, &o);
    set_u32(env, o, "procs", rep.procs);
    set_u32(env, o, "slots", rep.slots);
    set_u32(env, o, "requests", rep.tickets);
    set_u32(env, o, "registrations", rep.registrations);
    set_u32(env, o, "repaired", rep.repaired);
    return o;
}

/* ------------------------------------------------------------- tenants */

static napi_value js_register(napi_env env, napi_callback_info info)
{
    ARGS(3);
    sem_box *s = get_sem(env, argv[0], true);
    if (!s)
        return NULL;
    char id[FAIRSEM_TENANT_ID_MAX + 1];
    uint32_t weight;
    if (!get_str(env, argv[1], id, sizeof id, "tenant id") || !get_uint(env, argv[2], &weight))
        return NULL;
    tenant_box *t = calloc(1, sizeof *t);
    if (!t)
        return throw_fs(env, -ENOMEM, "fairsem_tenant_register");
    int rc = fairsem_tenant_register(s->sem, id, weight, &t->t);
    if (rc < 0) {
        free(t);
        return throw_fs(env, rc, "fairsem_tenant_register");
    }
    napi_value v = wrap(env, t, tenant_finalize, &TENANT_TAG);
    if (!v) {
        fairsem_tenant_free(t->t);
        free(t);
        return NULL;
    }
    t->owner = s;
    t->next = s->tenants;
    if (s->tenants)
        s->tenants->prev = t;
    s->tenants = t;
    return v;
}

/* unregister(tenant, flags): the registration ends now, or when the last
 * slot held through it comes back. */
static napi_value js_unregister(napi_env env, napi_callback_info info)
{
    ARGS(2);
    tenant_box *t = get_tenant(env, argv[0]);
    uint32_t flags;
    if (!t || !get_uint(env, argv[1], &flags))
        return NULL;
    if (!t->t || t->unregistered)
        return throw_fs(env, FAIRSEM_ENOTREG, "fairsem_tenant_unregister");
    int rc = fairsem_tenant_unregister(t->t, flags);
    if (rc < 0)
        return throw_fs(env, rc, "fairsem_tenant_unregister");
    t->unregistered = true;
    if (t->busy == 0)
        tenant_drop_handle(t);
    return undefined(env);
}

static napi_value js_try_acquire(napi_env env, napi_callback_info info)
{
    ARGS(1);
    tenant_box *t = get_tenant(env, argv[0]);
    if (!t)
        return NULL;
    if (!t->t || t->unregistered)
        return throw_fs(env, FAIRSEM_ENOTREG, "fairsem_try_acquire");
    fairsem_slot_t slot;
    int rc = fairsem_try_acquire(t->t, &slot);
    if (rc == -EAGAIN) {
        napi_value n;
        napi_get_null(env, &n);
        return n;
    }
    if (rc < 0)
        return throw_fs(env, rc, "fairsem_try_acquire");
    t->busy++;
    return bigint_tag(env, slot);
}

static napi_value js_release(napi_env env, napi_callback_info info)
{
    ARGS(2);
    tenant_box *t = get_tenant(env, argv[0]);
    fairsem_slot_t slot;
    if (!t || !get_tag(env, argv[1], &slot))
        return NULL;
    if (!t->t) /* the semaphore was closed (which gave it back), or nothing is held */
        return throw_fs(env, FAIRSEM_ESLOT, "fairsem_release");
    int rc = fairsem_release(t->t, slot);
    if (rc < 0)
        return throw_fs(env, rc, "fairsem_release");
    tenant_busy_put(t);
    return undefined(env);
}

static napi_value js_slot_index(napi_env env, napi_callback_info info)
{
    ARGS(1);
    fairsem_slot_t slot;
    if (!get_tag(env, argv[0], &slot))
        return NULL;
    return u32(env, fairsem_slot_index(slot));
}

/* ------------------------------------------------------------- event loop */

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    sem_box *s = h->data;
    napi_env env = s->env;
    if (!s->sem)
        return;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok)
        return;
    /* Take the dispatcher first: releasing the last waiting request below
     * makes our reference to it weak. */
    napi_value fn = NULL;
    if (s->dispatch)
        napi_get_reference_value(env, s->dispatch, &fn);
    napi_value ids, codes, tags;
    napi_create_array(env, &ids);
    napi_create_array(env, &codes);
    napi_create_array(env, &tags);
    uint32_t n = 0;
    fairsem_request_t *done[EVENTS_BATCH];
    size_t got;
    do {
        got = fairsem_events(s->sem, done, EVENTS_BATCH);
        for (size_t i = 0; i < got; i++) {
            req_box *r = fairsem_request_user(done[i]);
            if (!r || r->req != done[i])
                continue;
            fairsem_slot_t slot;
            int rc = fairsem_request_result(r->req, &slot);
            if (rc == -EAGAIN) /* not complete after all: keep waiting */
                continue;
            napi_value v;
            napi_create_double(env, r->id, &v);
            napi_set_element(env, ids, n, v);
            napi_create_int32(env, rc, &v);
            napi_set_element(env, codes, n, v);
            napi_set_element(env, tags, n, rc == 0 ? bigint_tag(env, slot) : undefined(env));
            n++;
            req_release(r, rc == 0);
        }
    } while (got == EVENTS_BATCH);
    if (n && fn) {
        napi_value argv[3] = {ids, codes, tags}, recv, result;
        napi_get_global(env, &recv);
        napi_status st = napi_make_callback(env, s->actx, recv, fn, 3, argv, &result);
        if (st == napi_pending_exception) {
            napi_value exc;
            napi_get_and_clear_last_exception(env, &exc);
            napi_fatal_exception(env, exc);
        }
    }
    napi_close_handle_scope(env, scope);
}

static napi_value js_set_dispatch(napi_env env, napi_callback_info info)
{
    ARGS(2);
    sem_box *s = get_sem(env, argv[0], true);
    if (!s)
        return NULL;
    napi_valuetype type;
    napi_typeof(env, argv[1], &type);
    if (type != napi_function)
        return throw_type(env, "dispatch must be a function");
    if (s->dispatch)
        napi_delete_reference(env, s->dispatch);
    napi_create_reference(env, argv[1], s->waiting ? 1 : 0, &s->dispatch);
    if (!s->actx) {
        napi_value resource, name;
        napi_create_object(env, &resource);
        napi_create_string_utf8(env, "fairsem:acquire", NAPI_AUTO_LENGTH, &name);
        napi_async_init(env, resource, name, &s->actx);
    }
    return undefined(env);
}

static int start_poll(napi_env env, sem_box *s)
{
    if (s->poll)
        return 0;
    int fd = fairsem_event_fd(s->sem);
    if (fd < 0)
        return fd;
    uv_loop_t *loop;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok)
        return -EIO;
    uv_poll_t *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    int rc = uv_poll_init(loop, p, fd);
    if (rc < 0) {
        free(p);
        return rc;
    }
    p->data = s;
    rc = uv_poll_start(p, UV_READABLE, on_poll);
    if (rc < 0) {
        uv_close((uv_handle_t *)p, poll_closed);
        return rc;
    }
    uv_unref((uv_handle_t *)p); /* set_waiting refs it while requests wait */
    s->poll = p;
    return 0;
}

/* requestStart(sem, tenant, id): a bigint slot tag when granted at once, else
 * a request handle whose completion reaches the dispatch function. */
static napi_value js_request_start(napi_env env, napi_callback_info info)
{
    ARGS(3);
    sem_box *s = get_sem(env, argv[0], true);
    if (!s)
        return NULL;
    tenant_box *t = get_tenant(env, argv[1]);
    if (!t)
        return NULL;
    double id;
    if (napi_get_value_double(env, argv[2], &id) != napi_ok)
        return throw_type(env, "id must be a number");
    if (t->owner != s)
        return throw_type(env, "tenant belongs to another semaphore");
    if (!t->t || t->unregistered)
        return throw_fs(env, FAIRSEM_ENOTREG, "fairsem_request_start");
    if (!s->dispatch)
        return throw_type(env, "no dispatch function set");
    req_box *r = calloc(1, sizeof *r);
    if (!r)
        return throw_fs(env, -ENOMEM, "fairsem_request_start");
    int rc = fairsem_request_start(t->t, r, &r->req);
    if (rc < 0) {
        free(r);
        return throw_fs(env, rc, "fairsem_request_start");
    }
    fairsem_slot_t slot;
    rc = fairsem_request_result(r->req, &slot);
    if (rc != -EAGAIN) {
        fairsem_request_free(r->req);
        free(r);
        if (rc < 0)
            return throw_fs(env, rc, "fairsem_request_start");
        t->busy++;
        return bigint_tag(env, slot);
    }
    /* Queued: watch the event descriptor (first time: start watching). */
    int prc = start_poll(env, s);
    if (prc < 0) {
        fairsem_request_free(r->req);
        free(r);
        return throw_fs(env, prc, "fairsem_event_fd");
    }
    napi_value v = wrap(env, r, req_finalize, &REQ_TAG);
    if (!v) {
        fairsem_request_free(r->req);
        free(r);
        return NULL;
    }
    r->id = id;
    r->tenant = t;
    t->busy++;
    r->owner = s;
    r->next = s->reqs;
    if (s->reqs)
        s->reqs->prev = r;
    s->reqs = r;
    r->queued = true;
    set_waiting(s, +1);
    return v;
}

/* requestCancel(req): give up a queued request.  If a grant raced the
 * cancel, the library gives the slot back.  Idempotent. */
static napi_value js_request_cancel(napi_env env, napi_callback_info info)
{
    ARGS(1);
    req_box *r = get_req(env, argv[0]);
    if (!r)
        return NULL;
    req_release(r, false);
    return undefined(env);
}

/* requestTake(req): the slot if the request was granted (a grant racing a
 * timeout is kept, as fairsem_acquire_timeout does), else give it up as
 * timed out and return null. */
static napi_value js_request_take(napi_env env, napi_callback_info info)
{
    ARGS(1);
    req_box *r = get_req(env, argv[0]);
    if (!r)
        return NULL;
    napi_value result;
    napi_get_null(env, &result);
    if (!r->req)
        return result;
    fairsem_slot_t slot;
    int rc = fairsem_request_result(r->req, &slot);
    if (rc == 0)
        result = bigint_tag(env, slot);
    else
        fairsem_request_expire(r->req); /* counted as a timeout, not a cancel */
    req_release(r, rc == 0);
    return result;
}

static napi_value js_waiting(napi_env env, napi_callback_info info)
{
    ARGS(1);
    sem_box *s = get_sem(env, argv[0], false);
    if (!s)
        return NULL;
    return u32(env, s->waiting);
}

/* ------------------------------------------------------------- misc */

static napi_value js_version(napi_env env, napi_callback_info info)
{
    (void)info;
    napi_value v;
    napi_create_string_utf8(env, fairsem_version(), NAPI_AUTO_LENGTH, &v);
    return v;
}

static napi_value js_error(napi_env env, napi_callback_info info)
{
    ARGS(2);
    int32_t code;
    if (napi_get_value_int32(env, argv[0], &code) != napi_ok)
        return throw_type(env, "code must be a number");
    char what[128] = "fairsem";
    napi_valuetype type;
    napi_typeof(env, argv[1], &type);
    if (type == napi_string) {
        size_t len;
        napi_get_value_string_utf8(env, argv[1], what, sizeof what, &len);
    }
    return make_error(env, code, what);
}

static napi_value init(napi_env env, napi_value exports)
{
    static const struct {
        const char *name;
        napi_callback cb;
    } fns[] = {
        {"create", js_create},
        {"open", js_open},
        {"openAnonymous", js_open_anonymous},
        {"unlink", js_unlink},
        {"close", js_close},
        {"checkLinked", js_check_linked},
        {"info", js_info},
        {"stats", js_stats},
        {"waitBucketBounds", js_wait_bucket_bounds},
        {"reap", js_reap},
        {"register", js_register},
        {"unregister", js_unregister},
        {"tryAcquire", js_try_acquire},
        {"release", js_release},
        {"slotIndex", js_slot_index},
        {"setDispatch", js_set_dispatch},
        {"requestStart", js_request_start},
        {"requestCancel", js_request_cancel},
        {"requestTake", js_request_take},
        {"waiting", js_waiting},
        {"version", js_version},
        {"error", js_error},
    };
    for (size_t i = 0; i < sizeof fns / sizeof *fns; i++) {
        napi_value f;
        napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &f);
        napi_set_named_property(env, exports, fns[i].name, f);
    }
    static const struct {
        const char *name;
        int value;
    } consts[] = {
        {"WORK_CONSERVING", FAIRSEM_WORK_CONSERVING},
        {"STRICT_FIFO", FAIRSEM_STRICT_FIFO},
        {"FORCE", FAIRSEM_FORCE},
        {"IF_IDLE", FAIRSEM_IF_IDLE},
        {"TENANT_ID_MAX", FAIRSEM_TENANT_ID_MAX},
        {"NAME_MAX", FAIRSEM_NAME_MAX},
        {"RULE_NAME_MAX", FAIRSEM_RULE_NAME_MAX},
        {"MAX_SLOTS_LIMIT", FAIRSEM_MAX_SLOTS_LIMIT},
        {"MAX_WAITERS_LIMIT", FAIRSEM_MAX_WAITERS_LIMIT},
        {"MAX_TENANTS_LIMIT", FAIRSEM_MAX_TENANTS_LIMIT},
        {"MAX_PROCS_LIMIT", FAIRSEM_MAX_PROCS_LIMIT},
        {"EAGAIN", -EAGAIN},
        {"EEXIST", -EEXIST},
        {"ENOENT", -ENOENT},
        {"EBUSY", -EBUSY},
        {"ECANCELED", -ECANCELED},
        {"ETIMEDOUT", -ETIMEDOUT},
        {"ENOTREG", FAIRSEM_ENOTREG},
        {"EINIT", FAIRSEM_EINIT},
        {"EATTACHED", FAIRSEM_EATTACHED},
        {"UNLINK_FORCE", FAIRSEM_UNLINK_FORCE},
    };
    for (size_t i = 0; i < sizeof consts / sizeof *consts; i++) {
        napi_value v;
        napi_create_int32(env, consts[i].value, &v);
        napi_set_named_property(env, exports, consts[i].name, v);
    }
    return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
